// Block-wide reductions for kernels of kWarps full warps, the same bits from run to run. Inside
// .cu files only.
//
// block_all_reduce: a butterfly inside each warp, then the warps' values combined in warp order
// by every thread, so the result is the same bits in every thread. sh: kWarps elements of shared
// memory; every thread must call it.
#pragma once

#include <cuda_runtime.h>

namespace npr {

template <int kWarps, typename T, typename Op>
__device__ __forceinline__ T block_all_reduce(T v, Op op, T* sh) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();  // sh may still be read from the last call
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = v;
  __syncthreads();
  T r = sh[0];
  for (int w = 1; w < kWarps; ++w) r = op(r, sh[w]);
  return r;
}

// block_exclusive_sum: each thread's sum of the values of the threads before it (thread order)
// and the block's total: a shuffle scan inside each warp, then the totals of the warps before
// the caller's, added in warp order. sh: kWarps elements of shared memory; every thread must
// call it.
template <typename T>
struct BlockSum {
  T before, total;
};
template <int kWarps, typename T>
__device__ __forceinline__ BlockSum<T> block_exclusive_sum(T v, T* sh) {
  const int lane = static_cast<int>(threadIdx.x & 31), warp = static_cast<int>(threadIdx.x >> 5);
  T inclusive = v;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const T y = __shfl_sync(0xffffffffu, inclusive, lane >= o ? lane - o : lane);
    if (lane >= o) inclusive += y;
  }
  const T up = __shfl_sync(0xffffffffu, inclusive, lane > 0 ? lane - 1 : 0);
  __syncthreads();  // sh may still be read from the last call
  if (lane == 31) sh[warp] = inclusive;
  __syncthreads();
  T base = T(0), total = T(0);
  for (int w = 0; w < kWarps; ++w) {
    if (w == warp) base = total;
    total += sh[w];
  }
  return BlockSum<T>{lane > 0 ? base + up : base, total};
}

}  // namespace npr
