// RMSNorm's row pieces on the device (rmsnorm.cu's forward kernels and the sums its backward
// shares): a warp per row when dim <= kWarpRowMaxDim, a kThreads block per row above; sums of
// squares are butterfly warp sums then warp partials added in warp order. Here so that the
// kernels' emulator in the tests (cpp/tests/emu) runs the forward kernels. Inside .cu files only.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/cuda_dtype.cuh"
#include "core/dynamic_shared.cuh"

namespace npr::rmsnorm_rows {

constexpr int kThreads = 256;
constexpr int kWarpRowMaxDim = 256;  // dims up to this use a warp per row
constexpr int kRowsPerBlockWarp = kThreads / 32;

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum of v over the block (blockDim.x == kThreads), the same value in every thread.
__device__ __forceinline__ float block_sum(float v, float* smem /* (kThreads / 32) */) {
  v = warp_sum(v);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  float s = 0.0f;
#pragma unroll
  for (int k = 0; k < kThreads / 32; ++k) s += smem[k];
  return s;
}

// One row: ss = sum x^2, then y = x * rstd * w. Threads `lane` of `nlanes` stride the row.
// Every read of x precedes the reduction, so y may alias x.
template <typename Tx, typename Ty>
__device__ __forceinline__ void forward_row(Ty* y, float* rstd, const Tx* x, const float* w,
                                            int64_t row, int64_t dim, float eps, float ss, int lane,
                                            int nlanes) {
  const float s = 1.0f / sqrtf(ss / static_cast<float>(dim) + eps);
  if (lane == 0) rstd[row] = s;
  const Tx* xr = x + row * dim;
  Ty* yr = y + row * dim;
  for (int64_t i = lane; i < dim; i += nlanes) yr[i] = from_f32<Ty>(to_f32(xr[i]) * s * w[i]);
}

template <typename Tx>
__device__ __forceinline__ float row_sum_squares(const Tx* xr, int64_t dim, int lane, int nlanes) {
  float ss = 0.0f;
  for (int64_t i = lane; i < dim; i += nlanes) {
    const float v = to_f32(xr[i]);
    ss += v * v;
  }
  return ss;
}

template <typename Tx, typename Ty>
__global__ void rmsnorm_forward_warp_kernel(Ty* y, float* rstd, const Tx* x, const float* w,
                                            int64_t rows, int64_t dim, float eps) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlockWarp + threadIdx.x / 32;
  if (row >= rows) return;  // whole warps leave together
  const int lane = threadIdx.x % 32;
  const float ss = warp_sum(row_sum_squares(x + row * dim, dim, lane, 32));
  forward_row(y, rstd, x, w, row, dim, eps, ss, lane, 32);
}

template <typename Tx, typename Ty>
__global__ void rmsnorm_forward_block_kernel(Ty* y, float* rstd, const Tx* x, const float* w,
                                             int64_t rows, int64_t dim, float eps) {
  NPR_STATIC_SHARED(float, smem, [kThreads / 32]);
  const int64_t row = blockIdx.x;
  if (row >= rows) return;  // whole block
  const float ss = block_sum(row_sum_squares(x + row * dim, dim, threadIdx.x, kThreads), smem);
  forward_row(y, rstd, x, w, row, dim, eps, ss, threadIdx.x, kThreads);
}

}  // namespace npr::rmsnorm_rows
