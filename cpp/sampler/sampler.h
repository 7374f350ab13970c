// Token sampling from logits rows: repetition penalty over a given token set (the engine passes
// the current step's tokens, so the penalty is step-local as in NPR), temperature, top-k,
// top-p, min-p, greedy; the draw comes from the counter-based RNG keyed by (seed, request,
// branch, token index). Each result carries the token's logprob under the UNMODIFIED
// distribution (log-softmax of the raw logits: what RL needs) and under the sampling one.
// Deterministic: the kept tokens are walked in token-id order for the inverse CDF, so neither
// sort order nor threads change a draw. Not here: logits processors beyond these, beam search.
#pragma once

#include <cstdint>

#include "core/cpu_info.h"
#include "core/status.h"

namespace npr {

struct SamplingParams {
  float temperature = 1.0f;  // 0: greedy
  int32_t top_k = 0;         // 0: off
  float top_p = 1.0f;        // 1: off
  float min_p = 0.0f;        // 0: off
  uint64_t seed = 0;
};

struct SampleRow {
  const float* logits = nullptr;  // (vocab)
  int64_t request = 0, branch = 0, index = 0;
  const int32_t* penalty_tokens = nullptr;  // tokens the repetition penalty applies to
  int32_t penalty_count = 0;
  float repetition_penalty = 1.0f;  // 1: off; > 1 discourages repeating those tokens
};

struct SampleResult {
  int32_t token = -1;
  float logprob = 0.0f;           // under log-softmax of the raw logits
  float logprob_sampling = 0.0f;  // under the processed, truncated, renormalised distribution
};

Status check_sampling_params(const SamplingParams& p);
// results (rows); rows are independent and spread over the pool.
Status sample_rows(const CpuContext& ctx, SampleResult* results, const SampleRow* rows,
                   int64_t n_rows, int64_t vocab, const SamplingParams& params);

}  // namespace npr
