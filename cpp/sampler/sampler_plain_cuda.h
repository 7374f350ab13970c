// The device sampler's plain case on many thread blocks: temperature > 0 and no truncation
// (top-k off or >= vocab, top-p 1, min-p 0), the step-local repetition penalty allowed: what RL
// rollouts sample with. sampler.cu runs every case in one 1024-thread block per row, so a
// 151,936-token row is read and rewritten several times by one SM: ncu put it at 359 us a
// step on an H200, a fifth of a batch-1 decode step. Here each row is cut into chunks of
// kPlainSamplerChunk tokens, one block each, in two launches: each chunk read once, for its
// maxima, refusal flags and sums of exp (double) under its own maxima; then one block per row
// rescales the chunks' sums to the row's maxima, finds the chunk (a scan in chunk order) and then
// the token where the cumulative mass passes u x total, in token-id order as the CPU does. Same
// u, same processed logits, same refusals; sums in another order, so draws agree with the CPU
// sampler's except within ~1e-16 of a cumulative-mass boundary, and logprobs to rounding.
// sample_rows_cuda takes it for plain params (first run on an H200 on 2026-11-26, as three
// launches reading each row twice: a batch-1 decode + sample step went from 1.85 to 1.52 ms
// with it, device time of the decode alone unchanged). At Qwen3's vocabulary a row is 75 chunks.
#pragma once

#include <cstdint>

#include "core/cuda_context.h"
#include "core/status.h"
#include "sampler/sampler.h"

namespace npr {

// Tokens of a row a block of the first launch reads.
constexpr int64_t kPlainSamplerChunk = 2048;

// Whether params leave nothing to truncate (the plain kernels apply).
bool plain_sampling(const SamplingParams& params, int64_t vocab);

// As sample_rows_cuda (rows already checked by check_device_sample_rows), plain params only.
Status sample_rows_plain_cuda(CudaContext& ctx, SampleResult* results, const float* logits,
                              const SampleRow* rows, int64_t n_rows, int64_t vocab,
                              const SamplingParams& params, const int32_t* logit_rows);

}  // namespace npr
