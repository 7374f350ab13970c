// emu_sampler.h in the emulator build: a context, the logits uploaded, sample_rows_cuda.
#include "tests/emu/emu_sampler.h"

#include <memory>
#include <vector>

#include "core/cuda_context.h"
#include "sampler/sampler_cuda.h"
#include "tests/emu/emu_status_message.h"

namespace emu {

namespace {

npr::Status sample(const float* logits, int64_t logit_rows, int64_t vocab, const SamplerRow* rows,
                   const int32_t* map, int64_t n_rows, const SamplerParams& p, bool one_block,
                   SamplerResult* out) {
  std::unique_ptr<npr::CudaContext> ctx;
  NPR_TRY(npr::CudaContext::create(&ctx));
  npr::DeviceBuffer dl;
  NPR_TRY(dl.grow(ctx->alloc(), 4 * logit_rows * vocab, "emu sampler: logits"));
  NPR_TRY(ctx->upload(dl.get(), logits, 4 * logit_rows * vocab, "emu sampler: logits"));
  std::vector<npr::SampleRow> r(static_cast<size_t>(n_rows));
  for (int64_t i = 0; i < n_rows; ++i)
    r[i] = npr::SampleRow{nullptr,
                          rows[i].request,
                          rows[i].branch,
                          rows[i].index,
                          rows[i].penalty_tokens,
                          rows[i].penalty_count,
                          rows[i].repetition_penalty};
  std::vector<npr::SampleResult> res(static_cast<size_t>(n_rows));
  for (npr::SampleResult& x : res) x.token = -1;  // a row left unwritten shows
  const npr::SamplingParams sp{p.temperature, p.top_k, p.top_p, p.min_p, p.seed};
  NPR_TRY(npr::sample_rows_cuda(
      *ctx, res.data(), dl.as<float>(), r.data(), n_rows, vocab, sp, map, map ? logit_rows : 0,
      one_block ? npr::DeviceSamplerKernel::kOneBlock : npr::DeviceSamplerKernel::kAuto));
  for (int64_t i = 0; i < n_rows; ++i)
    out[i] = SamplerResult{res[i].token, res[i].logprob, res[i].logprob_sampling};
  return npr::Status::ok();
}

}  // namespace

std::string sample_on_device(const float* logits, int64_t logit_rows, int64_t vocab,
                             const SamplerRow* rows, const int32_t* map, int64_t n_rows,
                             const SamplerParams& p, bool one_block, SamplerResult* out) {
  return status_message(sample(logits, logit_rows, vocab, rows, map, n_rows, p, one_block, out));
}

}  // namespace emu
