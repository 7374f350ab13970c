// AdamW and the global gradient norm on the device (CUDA twin of adamw.h), fp32 master weights
// and moments. The step can also refresh the bf16 compute copy of the weights in the same pass.
#pragma once

#include <cstdint>

#include "core/cuda_context.h"
#include "core/status.h"
#include "kernels/adamw.h"

namespace npr {

// p, m, v (n) fp32 updated in place from g (n) fp32; compute (n) bf16 = new p when not null.
Status adamw_step_cuda(CudaContext& ctx, float* p, float* m, float* v, const float* g, int64_t n,
                       const AdamWParams& a, void* compute_bf16);
// *out = sum of g^2 (n), accumulated in double over fixed blocks in a fixed order
// (deterministic); synchronises the stream to return the value.
Status sum_squares_cuda(CudaContext& ctx, const float* g, int64_t n, double* out);

}  // namespace npr
