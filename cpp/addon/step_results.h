// What the engine takes from a decode step's logits without moving them: log-probabilities of
// given tokens, sampled tokens, or copies of whole rows. The logits stay where the step left
// them (host memory for a CPU model, device memory for a CUDA one), so a CUDA step sends back
// a few bytes per row instead of rows x vocab floats.
#pragma once

#include <cstdint>
#include <vector>

#include "core/cpu_info.h"
#include "core/status.h"
#include "sampler/sampler.h"
#include "sampler/token_logprob.h"

namespace npr {

class CudaContext;

struct StepLogits {
  const float* data = nullptr;  // (rows, vocab) fp32
  int64_t rows = 0, vocab = 0;
  CudaContext* device = nullptr;  // where data lives; null: host memory
};

// out (n) <- log_softmax(row)[token] per query.
Status step_logprobs(const CpuContext& cpu, const StepLogits& l, const TokenQuery* queries,
                     int64_t n, float* out);
// results (rows.size()): row r sampled from logits row logit_rows[r] (rows' logits pointers
// are set here).
Status step_sample(const CpuContext& cpu, const StepLogits& l, const int32_t* logit_rows,
                   std::vector<SampleRow>& rows, const SamplingParams& params,
                   std::vector<SampleResult>* results);
// out (n, vocab) <- logits rows logit_rows[0 .. n).
Status step_copy_rows(const StepLogits& l, const int32_t* logit_rows, int64_t n, float* out);

}  // namespace npr
