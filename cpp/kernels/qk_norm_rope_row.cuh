// One row of the fused q/k norm + RoPE + KV write of the decode step (qk_norm_rope_cuda.h), by a
// warp: row `row` of the stacked projection qkv (tokens, heads + 2 kv_heads, D). q and k rows are
// normalised (sum of squares in rmsnorm.cu's order: lanes stride the row, then a butterfly),
// rounded to the element type, staged in the warp's D floats of shared memory so that each lane
// can pair element i with i + D / 2, rotated (rope.cu's formulas) and stored; v rows are copied
// into their slots as they are. Shared by qk_norm_rope.cu (write_kernel, below) and the
// one-kernel decode step (qwen3_step_kernel.cuh). Inside .cu files only.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/cuda_dtype.cuh"
#include "core/dynamic_shared.cuh"
#include "kernels/pdl.cuh"

namespace npr::qk_rope {

constexpr int kMaxPer = 8;  // head_dim <= 32 x kMaxPer: a lane holds its elements in registers

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// dst (D) = the row src (D) normalised with weights w, rounded to T, rotated by the token's
// cos_t, sin_t (D / 2) and rounded again; dst in global or shared memory. y: the warp's (D) fp32
// of shared memory (reused by the next call only after a __syncwarp). Every lane of the warp
// must call it.
template <typename T>
__device__ __forceinline__ void norm_rope(T* dst, const T* src, const float* w, const float* cos_t,
                                          const float* sin_t, float* y, int D, float eps) {
  const int lane = threadIdx.x & 31;
  const int half = D / 2;
  if (D <= 32 * kMaxPer) {
    // Every load of the row first (its elements, the norm weights, the rotation), so they are in
    // flight together instead of one round trip after another; the same sums and roundings as
    // the loop below.
    float xv[kMaxPer], wv[kMaxPer], cv[kMaxPer / 2], sv[kMaxPer / 2];
#pragma unroll
    for (int j = 0; j < kMaxPer; ++j) {
      const int e = lane + 32 * j;
      xv[j] = e < D ? to_f32(src[e]) : 0.0f;
      wv[j] = e < D ? w[e] : 0.0f;
    }
#pragma unroll
    for (int j = 0; j < kMaxPer / 2; ++j) {
      const int i = lane + 32 * j;
      cv[j] = i < half ? cos_t[i] : 0.0f;
      sv[j] = i < half ? sin_t[i] : 0.0f;
    }
    float ss = 0.0f;
#pragma unroll
    for (int j = 0; j < kMaxPer; ++j)
      if (lane + 32 * j < D) ss += xv[j] * xv[j];
    ss = warp_sum(ss);
    const float sc = 1.0f / sqrtf(ss / static_cast<float>(D) + eps);
#pragma unroll
    for (int j = 0; j < kMaxPer; ++j) {
      const int e = lane + 32 * j;
      if (e < D) y[e] = to_f32(from_f32<T>(xv[j] * sc * wv[j]));
    }
    __syncwarp();
#pragma unroll
    for (int j = 0; j < kMaxPer / 2; ++j) {
      const int i = lane + 32 * j;
      if (i >= half) continue;
      const float a = y[i], b = y[i + half];
      dst[i] = from_f32<T>(a * cv[j] - b * sv[j]);
      dst[i + half] = from_f32<T>(b * cv[j] + a * sv[j]);
    }
    return;
  }
  float ss = 0.0f;
  for (int e = lane; e < D; e += 32) {
    const float v = to_f32(src[e]);
    ss += v * v;
  }
  ss = warp_sum(ss);
  const float s = 1.0f / sqrtf(ss / static_cast<float>(D) + eps);
  for (int e = lane; e < D; e += 32) y[e] = to_f32(from_f32<T>(to_f32(src[e]) * s * w[e]));
  __syncwarp();
  for (int i = lane; i < half; i += 32) {
    const float c = cos_t[i], sn = sin_t[i];
    const float a = y[i], b = y[i + half];
    dst[i] = from_f32<T>(a * c - b * sn);
    dst[i + half] = from_f32<T>(b * c + a * sn);
  }
}

// Row `row` of the stacked projection: q rows to q_out (tokens, heads, D), k rows into their
// slots in k_pages, v rows copied into v_pages. y as for norm_rope. Every lane of the warp must
// call it.
template <typename T>
__device__ __forceinline__ void norm_rope_write_row(int64_t row, float* y, T* q_out, T* k_pages,
                                                    T* v_pages, const T* qkv, const float* q_norm,
                                                    const float* k_norm, const float* cos,
                                                    const float* sin, const int32_t* slots,
                                                    int heads, int kv_heads, int D, float eps) {
  const int lane = threadIdx.x & 31;
  const int per_token = heads + 2 * kv_heads;
  const int64_t t = row / per_token;
  const int r = static_cast<int>(row % per_token);
  const T* src = qkv + row * D;
  const int64_t slot = slots[t];
  if (r >= heads + kv_heads) {  // v: into its slot unchanged
    T* dst = v_pages + (slot * kv_heads + (r - heads - kv_heads)) * D;
    for (int e = lane; e < D; e += 32) dst[e] = src[e];
    return;
  }
  const bool is_q = r < heads;
  T* dst = is_q ? q_out + (t * heads + r) * D : k_pages + (slot * kv_heads + (r - heads)) * D;
  const int64_t half = D / 2;
  norm_rope(dst, src, is_q ? q_norm : k_norm, cos + t * half, sin + t * half, y, D, eps);
}

// The layer path's kernel (qk_norm_rope.cu launches it): a warp per row, grid rows / kWarps.
constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;

// Dynamic shared memory: (kWarps, D) fp32. PDL: a programmatic dependent launch (pdl.cuh),
// waiting for the kernels before it first thing.
template <typename T, bool PDL>
__global__ void __launch_bounds__(kThreads)
    write_kernel(T* q_out, T* k_pages, T* v_pages, const T* qkv, const float* q_norm,
                 const float* k_norm, const float* cos, const float* sin, const int32_t* slots,
                 int64_t tokens, int heads, int kv_heads, int D, float eps) {
  NPR_DYNAMIC_SHARED_AS(float, staged);
  if constexpr (PDL) {
    pdl::launch_dependents();
    pdl::wait();
  }
  const int warp = threadIdx.x >> 5;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + warp;
  if (row >= tokens * (heads + 2 * kv_heads)) return;  // whole warps leave together
  norm_rope_write_row<T>(row, staged + warp * D, q_out, k_pages, v_pages, qkv, q_norm, k_norm, cos,
                         sin, slots, heads, kv_heads, D, eps);
}

}  // namespace npr::qk_rope
