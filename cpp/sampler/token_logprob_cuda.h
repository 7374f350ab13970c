// token_logprobs on a CUDA device (the twin of token_logprob.h) over logits already on the
// device, the decode step's output: only the log-probabilities come back. Each distinct row is
// cut into chunks of kPlainSamplerChunk tokens read by a block each (the plain sampler's chunk
// statistics, chunk_stats.cuh), then a block a query adds its row's chunk sums: one block a
// query walking the whole row had a 151,936-token row's double exps on one SM, on every scripted
// engine step's critical path. Sums run in another order than on the CPU, so results agree to
// rounding (~1e-7).
#pragma once

#include <cstdint>

#include "core/cuda_context.h"
#include "core/status.h"
#include "sampler/token_logprob.h"

namespace npr {

// out (n) on the host; logits (rows, vocab) fp32 on the device; queries on the host.
Status token_logprobs_cuda(CudaContext& ctx, float* out, const float* logits, int64_t rows,
                           int64_t vocab, const TokenQuery* queries, int64_t n);

}  // namespace npr
