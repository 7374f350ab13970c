// The sampler on a CUDA device: the twin of sampler.h, one thread block per logits row, over
// logits already on the device (the decode step's output), so only tokens and logprobs come
// back. Same processing in the same order (step-local repetition penalty, temperature, top-k,
// top-p, min-p, greedy), the same counter-based draw keyed by (seed, request, branch, index),
// the same inverse CDF in token-id order: given the same logits it draws the same tokens as
// the CPU sampler. The truncations find their cut by a bit-by-bit search on the order-preserving
// integer key of the processed logit (no sort); ties at the cut are taken in token-id order as
// the CPU's (value desc, id asc) order does. Sums run in a different order than on the CPU, so
// logprobs agree to rounding (~1e-7) and a draw could differ only where u falls within ~1e-16
// of a boundary of the cumulative distribution.
#pragma once

#include <cstdint>

#include "core/cuda_context.h"
#include "core/status.h"
#include "sampler/sampler.h"

namespace npr {

// results (n_rows); logits (logit_rows_total, vocab) fp32 on the device; rows on the host (their
// logits pointers are ignored: row r reads logits + logit_rows[r] * vocab, or logits + r * vocab
// when logit_rows is null). Same refusals as sample_rows, and a logit row out of range.
// kernel: kAuto takes the many-block kernels (sampler_plain_cuda.h) for the plain case (no
// truncation), the one-block kernel otherwise; kOneBlock takes the one-block kernel for every
// case (the many-block kernels' second reference in the tests, beside the CPU sampler).
enum class DeviceSamplerKernel { kAuto, kOneBlock };
Status sample_rows_cuda(CudaContext& ctx, SampleResult* results, const float* logits,
                        const SampleRow* rows, int64_t n_rows, int64_t vocab,
                        const SamplingParams& params, const int32_t* logit_rows = nullptr,
                        int64_t logit_rows_total = 0,
                        DeviceSamplerKernel kernel = DeviceSamplerKernel::kAuto);

// The rows' refusals (penalty > 0 and its tokens in the vocabulary, logit rows in range).
Status check_device_sample_rows(const SampleRow* rows, int64_t n_rows, int64_t vocab,
                                const int32_t* logit_rows, int64_t logit_rows_total);

}  // namespace npr
