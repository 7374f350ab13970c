// Device core shared by the decode-sized linear kernels (skinny_linear.cu) and their fused
// RMSNorm forms (skinny_linear_rmsnorm.cu); inside .cu files only.
//
// Work split. A CTA is kWarps warps in kGroups groups of kSplit warps. A group owns R weight rows
// (R = 4 when the batch has M >= 4 rows, else 2) and all M batch rows; its kSplit warps share k:
// lane l of slice s walks the 16-byte chunks (8 bf16) c = (t kSplit + s) 32 + l, t = 0, 1, ...,
// reads each chunk of its R weight rows once and the same chunk of every x row, and keeps R x M
// fp32 dot products. So every x chunk load feeds R dot products: at M = 8 half the x traffic of
// the former two-rows-a-warp kernel, which was L1 bound there. A butterfly sums the lanes, the
// slices' sums go through shared memory and are added in slice order.
//
// Sum order. Each (batch row, weight row) sum is: per lane, its chunks in increasing order
// (dot8's element order inside a chunk); the butterfly (offsets 16, 8, 4, 2, 1); then slice 0 +
// slice 1. None of it depends on M, R, the tile or where x lives, so a row's result does not
// depend on the batch (batch invariance) and the fused forms, which read x from shared memory,
// give the bits of the unfused ones. The element path (in % 8 != 0 or unaligned rows) walks
// single elements the same way and so differs in order from the 16-byte path.
//
// PDL variants (a kernel template flag, launched through pdl::launch): the CTA lets the next
// kernel launch, prefetches its tiles' weight rows into L2 and only then waits for the kernels
// before it (pdl.cuh), so the weight traffic overlaps the previous kernel; the sums are the
// same, so are the bits.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/cuda_dtype.cuh"
#include "kernels/pdl.cuh"

namespace npr::skinny {

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kSplit = 2;  // warps sharing one group's k: fixed, it sets the sum order
constexpr int kGroups = kWarps / kSplit;  // weight-row groups per CTA

// Weight rows a group owns for an M-row batch.
template <int M>
constexpr int kGroupRows = M >= 4 ? 4 : 2;

// Shared floats a CTA needs for the slice sums: (kWarps, R * M).
template <int M>
constexpr int kPartFloats = kWarps * kGroupRows<M> * M;

__device__ __forceinline__ uint4 load_stream(const uint4* p) {
#if defined(NPR_EMU)
  uint4 v;
  emu::ptx::load_global_nc(&v, p, sizeof(v));
  return v;
#else
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
#endif
}

__device__ __forceinline__ float bf16_lo(uint32_t v) {
  return __uint_as_float(v << 16);
}
__device__ __forceinline__ float bf16_hi(uint32_t v) {
  return __uint_as_float(v & 0xffff0000u);
}
__device__ __forceinline__ float bf16_bits(uint16_t v) {
  return __uint_as_float(static_cast<uint32_t>(v) << 16);
}

// acc += dot of the 8 bf16 in w with the 8 in x, in element order.
__device__ __forceinline__ float dot8(float acc, const uint4& w, const uint4& x) {
  acc = fmaf(bf16_lo(w.x), bf16_lo(x.x), acc);
  acc = fmaf(bf16_hi(w.x), bf16_hi(x.x), acc);
  acc = fmaf(bf16_lo(w.y), bf16_lo(x.y), acc);
  acc = fmaf(bf16_hi(w.y), bf16_hi(x.y), acc);
  acc = fmaf(bf16_lo(w.z), bf16_lo(x.z), acc);
  acc = fmaf(bf16_hi(w.z), bf16_hi(x.z), acc);
  acc = fmaf(bf16_lo(w.w), bf16_lo(x.w), acc);
  acc = fmaf(bf16_hi(w.w), bf16_hi(x.w), acc);
  return acc;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float round_bf16(float v) {
  return __bfloat162float(__float2bfloat16_rn(v));
}

// x chunk c of row r (chunks per row `chunks`): from shared memory (SX) or through the read-only
// cache.
template <bool SX>
__device__ __forceinline__ uint4 x_chunk(const uint4* px, int64_t chunks, int r, int64_t c) {
  if (SX) return px[r * chunks + c];
  return __ldg(px + r * chunks + c);
}

// acc[i][r] = slice s's share of x row r . weight row w[i] (length k), summed over the warp:
// every lane holds every sum. x (M, k) bf16 (shared memory when SX).
template <int M, int R, bool VEC, bool SX>
__device__ __forceinline__ void slice_dots(float (&acc)[R][M], const uint16_t* x,
                                           const uint16_t* const (&w)[R], int64_t k, int s,
                                           int lane) {
#pragma unroll
  for (int i = 0; i < R; ++i)
#pragma unroll
    for (int r = 0; r < M; ++r) acc[i][r] = 0.0f;
  constexpr int64_t kStride = 32 * kSplit;
  if (VEC) {
    const int64_t chunks = k / 8;
    const uint4* px = reinterpret_cast<const uint4*>(x);
    // Read by the pragma alone (which host compilers, the emulator build's, skip).
    [[maybe_unused]] constexpr int kUnroll = 4 / R;  // 4 weight chunks in flight per lane
#pragma unroll kUnroll
    for (int64_t c = s * 32 + lane; c < chunks; c += kStride) {
      uint4 u[R];
#pragma unroll
      for (int i = 0; i < R; ++i) u[i] = load_stream(reinterpret_cast<const uint4*>(w[i]) + c);
#pragma unroll
      for (int r = 0; r < M; ++r) {
        const uint4 xv = x_chunk<SX>(px, chunks, r, c);
#pragma unroll
        for (int i = 0; i < R; ++i) acc[i][r] = dot8(acc[i][r], u[i], xv);
      }
    }
  } else {
    for (int64_t e = s * 32 + lane; e < k; e += kStride) {
      float u[R];
#pragma unroll
      for (int i = 0; i < R; ++i) u[i] = bf16_bits(w[i][e]);
#pragma unroll
      for (int r = 0; r < M; ++r) {
        const float xv = bf16_bits(x[r * k + e]);
#pragma unroll
        for (int i = 0; i < R; ++i) acc[i][r] = fmaf(u[i], xv, acc[i][r]);
      }
    }
  }
#pragma unroll
  for (int i = 0; i < R; ++i)
#pragma unroll
    for (int r = 0; r < M; ++r) acc[i][r] = warp_sum(acc[i][r]);
}

// The R x M dot products of the calling thread's group for the weight rows w, left in
// part (kWarps, R * M) as slice sums; the caller reads them after the barrier with group_sum.
// Every thread of the CTA must call it.
template <int M, bool VEC, bool SX>
__device__ __forceinline__ void group_dots(float* part, const uint16_t* x,
                                           const uint16_t* const (&w)[kGroupRows<M>], int64_t k) {
  constexpr int R = kGroupRows<M>;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  float acc[R][M];
  slice_dots<M, R, VEC, SX>(acc, x, w, k, warp % kSplit, lane);
  if (lane == 0) {
#pragma unroll
    for (int i = 0; i < R; ++i)
#pragma unroll
      for (int r = 0; r < M; ++r) part[warp * R * M + i * M + r] = acc[i][r];
  }
  __syncthreads();
}

// Group g's dot product of x row r with its weight row i: the slice sums in slice order.
template <int M>
__device__ __forceinline__ float group_sum(const float* part, int g, int i, int r) {
  constexpr int R = kGroupRows<M>;
  float v = part[(g * kSplit) * R * M + i * M + r];
#pragma unroll
  for (int s = 1; s < kSplit; ++s) v += part[(g * kSplit + s) * R * M + i * M + r];
  return v;
}

// Tiles of per_tile columns that cover n.
__host__ __device__ inline int64_t tiles(int64_t n, int64_t per_tile) {
  return (n + per_tile - 1) / per_tile;
}

// Output columns per CTA tile.
template <int M>
constexpr int kLinearTileCols = kGroups * kGroupRows<M>;
template <int M>
constexpr int kSwigluTileCols = kGroups * kGroupRows<M> / 2;

// Rows [j0, min(j1, n)) of W (n, k) bf16, prefetched into L2 by the CTA.
__device__ __forceinline__ void prefetch_rows(const uint16_t* W, int64_t k, int64_t n, int64_t j0,
                                              int64_t j1) {
  pdl::prefetch_l2(W + j0 * k, 2 * k * ((j1 < n ? j1 : n) - j0));
}

// The weight rows tile b of a linear layer reads (W (n, k)).
template <int M>
__device__ __forceinline__ void prefetch_linear_tile(const uint16_t* W, int64_t k, int64_t n,
                                                     int64_t b) {
  prefetch_rows(W, k, n, b * kLinearTileCols<M>, (b + 1) * kLinearTileCols<M>);
}

// The gate and up rows tile b of a SwiGLU layer reads (W (2 inter, k)).
template <int M>
__device__ __forceinline__ void prefetch_swiglu_tile(const uint16_t* W, int64_t k, int64_t inter,
                                                     int64_t b) {
  prefetch_rows(W, k, inter, b * kSwigluTileCols<M>, (b + 1) * kSwigluTileCols<M>);
  prefetch_rows(W + inter * k, k, inter, b * kSwigluTileCols<M>, (b + 1) * kSwigluTileCols<M>);
}

// Tile b of y (M, n) of type CT = x (M, k) . W (n, k)^T, or y += it: group g owns columns
// (b kGroups + g) R + i, i < R. Every thread of the CTA must call it.
template <int M, bool VEC, bool SX, typename CT>
__device__ __forceinline__ void linear_tile(CT* y, const uint16_t* x, const uint16_t* W, int64_t k,
                                            int64_t n, bool accumulate, int64_t b,
                                            float* part /* (kWarps, R * M) shared */) {
  constexpr int R = kGroupRows<M>;
  const int g = (threadIdx.x >> 5) / kSplit;
  const int64_t j0 = (b * kGroups + g) * R;
  const uint16_t* w[R];
#pragma unroll
  for (int i = 0; i < R; ++i)
    w[i] = W + (j0 + i < n ? j0 + i : n - 1) * k;  // past n: read, not written
  group_dots<M, VEC, SX>(part, x, w, k);
  const int t = threadIdx.x;
  if (t < kGroups * R * M) {
    const int tg = t / (R * M), r = (t % (R * M)) / R, i = t % R;
    const int64_t j = (b * kGroups + tg) * R + i;
    if (j < n) {
      const float v = group_sum<M>(part, tg, i, r);
      CT* yj = y + r * n + j;
      *yj = from_f32<CT>(accumulate ? to_f32(*yj) + v : v);
    }
  }
  __syncthreads();  // part is read before the next tile writes it
}

// Tile b of act (M, inter) bf16 = silu(g) * u over W = gate rows then up rows (2 inter, k): group
// g owns SwiGLU columns (b kGroups + g) R / 2 + i, i < R / 2, with gate row j and up row inter + j.
// g and u are rounded to bf16 first (where separate GEMMs would round them), then swiglu.cu's
// formula. Every thread of the CTA must call it.
template <int M, bool VEC, bool SX>
__device__ __forceinline__ void swiglu_tile(__nv_bfloat16* act, const uint16_t* x,
                                            const uint16_t* W, int64_t k, int64_t inter, int64_t b,
                                            float* part /* (kWarps, R * M) shared */) {
  constexpr int R = kGroupRows<M>, C = R / 2;
  const int g = (threadIdx.x >> 5) / kSplit;
  const int64_t j0 = (b * kGroups + g) * C;
  const uint16_t* w[R];
#pragma unroll
  for (int i = 0; i < C; ++i) {
    const int64_t j = j0 + i < inter ? j0 + i : inter - 1;
    w[i] = W + j * k;
    w[C + i] = W + (inter + j) * k;
  }
  group_dots<M, VEC, SX>(part, x, w, k);
  const int t = threadIdx.x;
  if (t < kGroups * C * M) {
    const int tg = t / (C * M), r = (t % (C * M)) / C, i = t % C;
    const int64_t j = (b * kGroups + tg) * C + i;
    if (j < inter) {
      const float gr = round_bf16(group_sum<M>(part, tg, i, r));
      const float ur = round_bf16(group_sum<M>(part, tg, C + i, r));
      act[r * inter + j] = __float2bfloat16_rn(gr / (1.0f + expf(-gr)) * ur);
    }
  }
  __syncthreads();
}

}  // namespace npr::skinny
