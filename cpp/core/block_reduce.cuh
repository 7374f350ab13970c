// A block-wide all-reduce for kernels of kWarps full warps: a butterfly inside each warp, then
// the warps' values combined in warp order by every thread, so the result is the same bits in
// every thread and from run to run. sh: kWarps elements of shared memory; every thread must
// call it. Inside .cu files only.
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

}  // namespace npr
