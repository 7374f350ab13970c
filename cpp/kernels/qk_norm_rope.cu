// The fused q/k norm + RoPE + KV write of the decode step (see qk_norm_rope_cuda.h). A warp per
// (token, head row) of the stacked projection: q and k rows are normalised (sum of squares in
// rmsnorm.cu's order: lanes stride the row, then a butterfly), rounded to the element type,
// staged in shared memory so that each lane can pair element i with i + head_dim / 2, rotated
// (rope.cu's formulas) and stored; v rows are copied into their slots as they are.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <string>

#include "core/cuda_check.cuh"
#include "core/cuda_dtype.cuh"
#include "kernels/pdl.cuh"
#include "kernels/qk_norm_rope_cuda.h"

namespace npr {

namespace {

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kMaxPer = 8;  // head_dim <= 32 x kMaxPer: a lane holds its elements in registers

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Dynamic shared memory: (kWarps, D) fp32. PDL: a programmatic dependent launch (pdl.cuh),
// waiting for the kernels before it first thing.
template <typename T, bool PDL>
__global__ void __launch_bounds__(kThreads)
    qk_norm_rope_write_kernel(T* q_out, T* k_pages, T* v_pages, const T* qkv, const float* q_norm,
                              const float* k_norm, const float* cos, const float* sin,
                              const int32_t* slots, int64_t tokens, int heads, int kv_heads, int D,
                              float eps) {
  extern __shared__ float staged[];
  if constexpr (PDL) {
    pdl::launch_dependents();
    pdl::wait();
  }
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int per_token = heads + 2 * kv_heads;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + warp;
  if (row >= tokens * per_token) return;  // whole warps leave together
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
  const float* w = is_q ? q_norm : k_norm;
  T* dst = is_q ? q_out + (t * heads + r) * D : k_pages + (slot * kv_heads + (r - heads)) * D;
  const int half = D / 2;
  float* y = staged + warp * D;
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
      cv[j] = i < half ? cos[t * half + i] : 0.0f;
      sv[j] = i < half ? sin[t * half + i] : 0.0f;
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
    const float c = cos[t * half + i], sn = sin[t * half + i];
    const float a = y[i], b = y[i + half];
    dst[i] = from_f32<T>(a * c - b * sn);
    dst[i + half] = from_f32<T>(b * c + a * sn);
  }
}

}  // namespace

Status qk_norm_rope_write_cuda(CudaContext& ctx, DevDType t, void* q_out, void* k_pages,
                               void* v_pages, const void* qkv, const float* q_norm,
                               const float* k_norm, const float* cos, const float* sin,
                               const int32_t* slots, int64_t tokens, int64_t heads,
                               int64_t kv_heads, int64_t head_dim, float eps, bool pdl) {
  if (tokens < 0 || heads <= 0 || kv_heads <= 0 || head_dim <= 0 || head_dim % 2 != 0 ||
      head_dim > 1024)
    return Status::invalid(
        "qk_norm_rope_write_cuda: expected tokens >= 0, heads and kv_heads > 0 and an even "
        "head_dim in [2, 1024], got tokens " +
        std::to_string(tokens) + ", heads " + std::to_string(heads) + ", kv_heads " +
        std::to_string(kv_heads) + ", head_dim " + std::to_string(head_dim));
  if (tokens == 0) return Status::ok();
  if (!q_out || !k_pages || !v_pages || !qkv || !q_norm || !k_norm || !cos || !sin || !slots)
    return Status::invalid("qk_norm_rope_write_cuda: null device pointer");
  const int64_t rows = tokens * (heads + 2 * kv_heads);
  const unsigned grid = static_cast<unsigned>((rows + kWarps - 1) / kWarps);
  const size_t smem = sizeof(float) * kWarps * static_cast<size_t>(head_dim);
  cudaStream_t st = static_cast<cudaStream_t>(ctx.stream());
  const int h = static_cast<int>(heads), kvh = static_cast<int>(kv_heads),
            D = static_cast<int>(head_dim);
  auto run = [&](auto tag) -> Status {
    using T = decltype(tag);
    auto* qo = static_cast<T*>(q_out);
    auto* kp = static_cast<T*>(k_pages);
    auto* vp = static_cast<T*>(v_pages);
    const auto* in = static_cast<const T*>(qkv);
    if (pdl)
      NPR_CUDA_TRY(
          pdl::launch(true, qk_norm_rope_write_kernel<T, true>, grid, dim3(kThreads), smem, st, qo,
                      kp, vp, in, q_norm, k_norm, cos, sin, slots, tokens, h, kvh, D, eps),
          "qk_norm_rope_write_cuda: launch (pdl)");
    else
      qk_norm_rope_write_kernel<T, false><<<grid, kThreads, smem, st>>>(
          qo, kp, vp, in, q_norm, k_norm, cos, sin, slots, tokens, h, kvh, D, eps);
    return cuda_launch_status("qk_norm_rope_write_cuda");
  };
  if (t == DevDType::kF32) return run(float{});
  return run(__nv_bfloat16{});
}

}  // namespace npr
