#include "addon/step_results.h"

#include <algorithm>
#include <string>

#if defined(NPR_WITH_CUDA)
#include "core/cuda_context.h"
#include "sampler/sampler_cuda.h"
#include "sampler/token_logprob_cuda.h"
#endif

namespace npr {

namespace {

Status check_rows(const StepLogits& l, const int32_t* logit_rows, int64_t n, const char* what) {
  if (l.rows <= 0)
    return Status::invalid(std::string(what) + ": no decode step has left logits to read");
  for (int64_t i = 0; i < n; ++i)
    if (logit_rows[i] < 0 || logit_rows[i] >= l.rows)
      return Status::out_of_range(std::string(what) + ": entry " + std::to_string(i) +
                                  " names logits row " + std::to_string(logit_rows[i]) +
                                  " but the step has " + std::to_string(l.rows));
  return Status::ok();
}

}  // namespace

Status step_logprobs(const CpuContext& cpu, const StepLogits& l, const TokenQuery* queries,
                     int64_t n, float* out) {
  if (l.rows <= 0) return Status::invalid("logprobs: no decode step has left logits to read");
#if defined(NPR_WITH_CUDA)
  if (l.device) return token_logprobs_cuda(*l.device, out, l.data, l.rows, l.vocab, queries, n);
#endif
  return token_logprobs(cpu, out, l.data, l.rows, l.vocab, queries, n);
}

Status step_sample(const CpuContext& cpu, const StepLogits& l, const int32_t* logit_rows,
                   std::vector<SampleRow>& rows, const SamplingParams& params,
                   std::vector<SampleResult>* results) {
  const int64_t n = static_cast<int64_t>(rows.size());
  NPR_TRY(check_rows(l, logit_rows, n, "sample"));
  results->assign(rows.size(), SampleResult{});
#if defined(NPR_WITH_CUDA)
  if (l.device)
    return sample_rows_cuda(*l.device, results->data(), l.data, rows.data(), n, l.vocab, params,
                            logit_rows, l.rows);
#endif
  for (int64_t r = 0; r < n; ++r) rows[r].logits = l.data + logit_rows[r] * l.vocab;
  return sample_rows(cpu, results->data(), rows.data(), n, l.vocab, params);
}

Status step_copy_rows(const StepLogits& l, const int32_t* logit_rows, int64_t n, float* out) {
  NPR_TRY(check_rows(l, logit_rows, n, "logitsRows"));
  for (int64_t i = 0; i < n; ++i) {
    const float* src = l.data + static_cast<int64_t>(logit_rows[i]) * l.vocab;
#if defined(NPR_WITH_CUDA)
    if (l.device) {
      NPR_TRY(l.device->download(out + i * l.vocab, src, 4 * l.vocab, "logitsRows: copy"));
      continue;
    }
#endif
    std::copy(src, src + l.vocab, out + i * l.vocab);
  }
  return Status::ok();
}

}  // namespace npr
