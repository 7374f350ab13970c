// The merge of each query's partial softmax states (decode_attention.cu's decode_merge_kernel)
// with its loads issued together. The serial kernel walks the partials one by one in each of
// its three passes, every step two dependent loads (the partial's row, then its value): ncu
// put it at ~10 us a layer on an H200 for a batch-1 step of 16 partials. Here the maxima are
// read by all threads at once, then chunks of up to kChunk partials are staged in shared
// memory (row offset, weight exp(m - M), l) with one load each, and the sums run over shared
// memory in key order. Every sum and rounding is the serial kernel's, term for term, so the
// results are the same bits. Inside .cu files only.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/cuda_dtype.cuh"
#include "core/dynamic_shared.cuh"
#include "kernels/pdl.cuh"

namespace npr::decode_merge {

constexpr int kChunk = 32;         // partials staged at a time
constexpr int kMaxDPerThread = 8;  // output elements a thread owns (D <= 8 x threads)

// What a merge reads of the plan: query qi's merge list [r0, r1) of merge_rows, and the calling
// thread's first entry, merge_rows[r0 + threadIdx.x] (-1 past r1). Plan data, there before the
// step's first kernel: a programmatic launch reads it before its wait.
struct MergeList {
  int r0, r1;
  int64_t first;
};
__device__ __forceinline__ MergeList merge_list(int64_t qi, const int32_t* merge_ptr,
                                                const int32_t* merge_rows) {
  MergeList m;
  m.r0 = merge_ptr[qi];
  m.r1 = merge_ptr[qi + 1];
  m.first = m.r0 + static_cast<int>(threadIdx.x) < m.r1 ? merge_rows[m.r0 + threadIdx.x] : -1;
  return m;
}

// Query qi's head `head`, by the calling CTA (32..1024 threads, a multiple of 32; every thread
// must call it); D <= DPT x blockDim; ml: merge_list(qi, ...) of the calling thread (FIRST: its
// `first` is used, else only r0 and r1, every entry read from merge_rows: the one-kernel step's
// form, at its register limit). The same bits whatever the block size (the maximum is exact,
// and each sum runs over the partials in key order in one thread). The CTA may merge another one
// afterwards once every thread is past a __syncthreads().
template <typename T, int DPT, bool FIRST = true>
__device__ __forceinline__ void merge_one(int64_t qi, int64_t head, const MergeList& ml,
                                          const int32_t* merge_rows, const float* part_m,
                                          const float* part_l, const float* part_acc, T* out,
                                          float* lse, int heads, int D) {
  NPR_STATIC_SHARED(int64_t, at_s, [kChunk]);
  NPR_STATIC_SHARED(float, w_s, [kChunk]);
  NPR_STATIC_SHARED(float, l_s, [kChunk]);
  NPR_STATIC_SHARED(float, warp_max, [32]);
  const int r0 = ml.r0, r1 = ml.r1;
  const int tid = threadIdx.x, nt = blockDim.x;
  // merge_rows[i] of this thread's i (its first one from the list).
  const auto row_of = [&](int i) -> int64_t {
    if constexpr (FIRST)
      if (i == r0 + tid) return ml.first;
    return merge_rows[i];
  };
  float M = -INFINITY;
  for (int i = r0 + tid; i < r1; i += nt)
    M = fmaxf(M, part_m[row_of(i) * static_cast<int64_t>(heads) + head]);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, o));
  if ((tid & 31) == 0) warp_max[tid >> 5] = M;
  __syncthreads();
  M = warp_max[0];
  for (int w = 1; w < nt / 32; ++w) M = fmaxf(M, warp_max[w]);
  float L = 0.0f;
  float o[DPT];
#pragma unroll
  for (int j = 0; j < DPT; ++j) o[j] = 0.0f;
  for (int c0 = r0; c0 < r1; c0 += kChunk) {
    const int n = min(kChunk, r1 - c0);
    __syncthreads();  // the last chunk has been read by every thread
    if (tid < n) {
      const int64_t at = row_of(c0 + tid) * static_cast<int64_t>(heads) + head;
      at_s[tid] = at;
      w_s[tid] = __expf(part_m[at] - M);
      l_s[tid] = part_l[at];
    }
    __syncthreads();
    for (int i = 0; i < n; ++i) L += l_s[i] * w_s[i];
#pragma unroll
    for (int j = 0; j < DPT; ++j) {
      const int d = tid + j * nt;
      if (d >= D) continue;
#pragma unroll 8
      for (int i = 0; i < n; ++i) o[j] += part_acc[at_s[i] * D + d] * w_s[i];
    }
  }
  const float inv = 1.0f / L;
#pragma unroll
  for (int j = 0; j < DPT; ++j) {
    const int d = tid + j * nt;
    if (d < D) out[(qi * heads + head) * D + d] = from_f32<T>(o[j] * inv);
  }
  if (lse && tid == 0) lse[qi * heads + head] = M + logf(L);
}

// merge_one reading its list's bounds itself.
template <typename T, int DPT>
__device__ __forceinline__ void merge_one(int64_t qi, int64_t head, const int32_t* merge_ptr,
                                          const int32_t* merge_rows, const float* part_m,
                                          const float* part_l, const float* part_acc, T* out,
                                          float* lse, int heads, int D) {
  merge_one<T, DPT, false>(qi, head, MergeList{merge_ptr[qi], merge_ptr[qi + 1], -1}, merge_rows,
                           part_m, part_l, part_acc, out, lse, heads, D);
}

// grid (queries, heads), block of 32..1024 threads (a multiple of 32); D <= DPT x blockDim.
// PDL: a programmatic dependent launch (pdl.cuh): it reads its plan entries, then waits for the
// kernels before it (whose partial states it reads).
template <typename T, int DPT, bool PDL = false>
__global__ void staged_kernel(const int32_t* merge_ptr, const int32_t* merge_rows,
                              const float* part_m, const float* part_l, const float* part_acc,
                              T* out, float* lse, int heads, int D) {
  if constexpr (PDL) pdl::launch_dependents();
  const MergeList ml = merge_list(blockIdx.x, merge_ptr, merge_rows);
  if constexpr (PDL) pdl::wait();
  merge_one<T, DPT>(blockIdx.x, blockIdx.y, ml, merge_rows, part_m, part_l, part_acc, out, lse,
                    heads, D);
}

}  // namespace npr::decode_merge
