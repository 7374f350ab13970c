// The prologue of the fused RMSNorm + skinny linear kernels (skinny_linear_rmsnorm.cu) and of
// the one-kernel decode step (qwen3_cuda_step_kernel.cu): every batch row's rstd from the fp32
// residual in rmsnorm.cu's order (a warp per row when in <= 256; otherwise 256 virtual threads
// striding the row, butterflies over each 32, the 8 warp sums added in warp order; the CTA's 128
// threads play two virtual threads each), with rmsnorm.cu's formula and rounding point, then
// xn = bf16(x * rstd * w) staged in shared memory. Inside .cu files only.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/dynamic_shared.cuh"
#include "kernels/skinny_linear_core.cuh"

namespace npr::skinny {

constexpr int kWarpRowMaxIn = 256;  // rmsnorm.cu: a warp per row up to this dim
constexpr int kNormThreads = 256;   // rmsnorm.cu: the block per row above it

// rstd (M, shared memory) <- each row's 1 / sqrt(mean(x^2) + eps) of x (M, k) fp32, as
// rmsnorm.cu computes it (its sum order, formula and rounding). Every thread must call it; the
// CTA syncs at the end.
template <int M>
__device__ __forceinline__ void row_rstd(float* rstd, const float* x, int64_t k, float eps) {
  NPR_STATIC_SHARED(float, ss_part, [M][kNormThreads / 32]);
  const int t = threadIdx.x, warp = t >> 5, lane = t & 31;
  if (k <= kWarpRowMaxIn) {
    for (int r = warp; r < M; r += kWarps) {
      const float* xr = x + r * k;
      float ss = 0.0f;
      for (int64_t i = lane; i < k; i += 32) {
        const float v = xr[i];
        ss += v * v;
      }
      ss = warp_sum(ss);
      if (lane == 0) rstd[r] = 1.0f / sqrtf(ss / static_cast<float>(k) + eps);
    }
  } else {
    // Every row at once (rows innermost), so the loads of all M rows are in flight together
    // instead of one row's after another's; each row still sums its terms in rmsnorm.cu's order.
    float lo[M], hi[M];  // virtual threads t and t + kThreads
#pragma unroll
    for (int r = 0; r < M; ++r) lo[r] = hi[r] = 0.0f;
    for (int64_t i = t; i < k; i += kNormThreads) {
#pragma unroll
      for (int r = 0; r < M; ++r) {
        const float v = x[r * k + i];
        lo[r] += v * v;
      }
    }
    for (int64_t i = t + kThreads; i < k; i += kNormThreads) {
#pragma unroll
      for (int r = 0; r < M; ++r) {
        const float v = x[r * k + i];
        hi[r] += v * v;
      }
    }
#pragma unroll
    for (int r = 0; r < M; ++r) {
      lo[r] = warp_sum(lo[r]);
      hi[r] = warp_sum(hi[r]);
      if (lane == 0) {
        ss_part[r][warp] = lo[r];
        ss_part[r][warp + kWarps] = hi[r];
      }
    }
    __syncthreads();
    if (t < M) {
      float ss = 0.0f;
#pragma unroll
      for (int w = 0; w < kNormThreads / 32; ++w) ss += ss_part[t][w];
      rstd[t] = 1.0f / sqrtf(ss / static_cast<float>(k) + eps);
    }
  }
  __syncthreads();
}

// xn (M, k) bf16 in shared memory <- x (M, k) fp32, nw (k) fp32. Every thread must call it.
template <int M>
__device__ __forceinline__ void stage_normed(uint16_t* xn, const float* x, const float* nw,
                                             int64_t k, float eps) {
  NPR_STATIC_SHARED(float, rstd, [M]);
  row_rstd<M>(rstd, x, k, eps);
  const int t = threadIdx.x;
  auto* out = reinterpret_cast<__nv_bfloat16*>(xn);
  float s[M];
#pragma unroll
  for (int r = 0; r < M; ++r) s[r] = rstd[r];
  for (int64_t i = t; i < k; i += kThreads) {
    const float w = nw[i];
#pragma unroll
    for (int r = 0; r < M; ++r) out[r * k + i] = __float2bfloat16_rn(x[r * k + i] * s[r] * w);
  }
  __syncthreads();
}

}  // namespace npr::skinny
