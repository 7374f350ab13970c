// The log-probability of given tokens under the log-softmax of raw logits rows: what the engine
// records for a token it did not sample (a forced structure token, a scripted choice), the same
// quantity as SampleResult::logprob and computed the same way (max, then the sum of exp(x - max)
// in double). Several queries may name one row; its normaliser is computed once.
// Refused, naming the query: a row or token out of range, a row with a NaN or +inf logit or no
// finite one (the sampler's refusals). Nothing is written unless every query is valid.
#pragma once

#include <cstdint>

#include "core/cpu_info.h"
#include "core/status.h"

namespace npr {

struct TokenQuery {
  int32_t row = 0;    // logits row
  int32_t token = 0;  // token whose log-probability is wanted
};

// out (n) <- log_softmax(logits[q.row])[q.token] for each query; logits (rows, vocab) fp32.
Status token_logprobs(const CpuContext& ctx, float* out, const float* logits, int64_t rows,
                      int64_t vocab, const TokenQuery* queries, int64_t n);

// The refusals of the queries themselves (row and token ranges), shared with the device twin.
Status check_token_queries(const TokenQuery* queries, int64_t n, int64_t rows, int64_t vocab);

}  // namespace npr
