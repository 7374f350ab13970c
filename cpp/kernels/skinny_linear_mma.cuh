// Device core of the tensor-core forms of the decode-sized linear kernels (skinny_linear.cu,
// skinny_linear_rmsnorm.cu take it when asked: SkinnyLaunch::tensor_cores); inside .cu files only.
//
// Why: at M = 8 batch rows the CUDA-core core (skinny_linear_core.cuh) does 8 fp32 FMAs and
// their conversions per weight element, which costs the step ~1.6x its 1-row time where the
// weight stream alone would cost the same; one mma.sync m16n8k16 folds 8 weight rows x 16 k
// against all 8 batch rows (A = x padded to 16 rows with zeros, B = W^T), so the batch rides
// along for free and every row count takes the same instructions.
//
// Work split. A CTA tile is 8 weight rows (one mma n8 tile); k is cut into S slices (4, or 16
// for layers of few tiles: slices_for), slice s folding the 32-element steps t = s, s + S, ...;
// the unfused forms run one warp a slice, the fused forms' 4 warps S / 4 slices each. In a step,
// lane (g = lane / 4, q = lane % 4) loads 16 bytes of weight row g (elements 32 t + 8 q .. + 7) and
// the same 16 bytes of x row g (zero for g >= M), and feeds them to two mmas: elements 8q + 0..3 as
// the fragment's k pairs (2q, 2q + 1) and (2q + 8, 2q + 9), then 8q + 4..7 the same way. A and B
// use the same permutation of k, so each mma is a dot over 16 k, and the weight loads are whole
// 16-byte chunks. The C fragment's rows g < M, columns 2q, 2q + 1 are (x row g, weight rows 2q, 2q
// + 1).
//
// Sum order. Each (x row, weight row) result is: per slice, its steps in increasing order (two
// mmas a step, the tensor core's own fixed reduction inside each), then the slices' sums added
// in slice order through shared memory. An output depends only on its own x row, weight row and k,
// not on M or the other rows (the padded rows are zeros in separate mma rows), so the forms are
// batch invariant, and the fused forms (x from shared memory) give the unfused ones' bits. The
// bits differ from the CUDA-core core's. Only the 16-byte path (in % 8 == 0, aligned rows).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "core/cuda_dtype.cuh"
#include "kernels/mma_bf16.cuh"
#include "kernels/pdl.cuh"
#include "kernels/skinny_linear_core.cuh"

namespace npr::skinny_tc {

constexpr int kTileRows = 8;  // weight rows per CTA tile (one mma n8 tile)
constexpr int kLinearTileCols = kTileRows;
constexpr int kSwigluTileCols = kTileRows / 2;  // 4 gate rows + their 4 up rows
constexpr int kUnroll = 4;                      // steps a warp has in flight

// Slices a tile's k is cut into. A narrow layer (few tiles: the 0.6B o-proj and down have 128)
// takes 16, so that its CTAs still keep ~32 KB of weight loads in flight per SM; a wide one 4.
// A function of the tile count alone: the fused and unfused forms of a shape, whatever their
// CTA size, sum in the same order.
constexpr int kSlicesWide = 4, kSlicesNarrow = 16;
constexpr int64_t kNarrowBelowTiles = 512;
__host__ __device__ constexpr int slices_for(int64_t tiles) {
  return tiles < kNarrowBelowTiles ? kSlicesNarrow : kSlicesWide;
}

// Calls f(std::integral_constant<int, S>) with S = slices_for(tiles) (host side).
template <typename F>
auto with_slices(int64_t tiles, F&& f) {
  if (slices_for(tiles) == kSlicesNarrow) return f(std::integral_constant<int, kSlicesNarrow>{});
  return f(std::integral_constant<int, kSlicesWide>{});
}

// Shared floats of a CTA's slice sums: (S, M, kTileRows).
template <int M, int S>
constexpr int kPartFloats = S * M * kTileRows;

// Lane (g, q)'s two sums of slice `slice` (its mma accumulator's first row: c[0], c[1]) into
// part (S, M, kTileRows), for x row g < M.
template <int M>
__device__ __forceinline__ void store_slice_sums(float* part, int slice, int g, int q,
                                                 const float (&c)[4]) {
  float* p = part + (slice * M + g) * kTileRows + 2 * q;
  p[0] = c[0];
  p[1] = c[1];
}

// What lane (g, q) of warp `warp` reads in tile_dots / tile_dots_deep: its tile row's weight
// chunks pw and x row g's chunks px (row 0 where g >= M: loaded, then zeroed), `steps` steps of
// 4 chunks each.
template <int M>
struct LaneChunks {
  int warp, g, q;
  int64_t chunks, steps;
  const uint4 *pw, *px;
  bool has_x;
  __device__ __forceinline__ LaneChunks(const uint16_t* x, const uint16_t* wrow, int64_t k)
      : warp(static_cast<int>(threadIdx.x >> 5)),
        g(static_cast<int>((threadIdx.x & 31) >> 2)),
        q(static_cast<int>(threadIdx.x & 3)),
        chunks(k / 8),
        steps((k / 8 + 3) / 4),
        pw(reinterpret_cast<const uint4*>(wrow)),
        px(reinterpret_cast<const uint4*>(x) + (g < M ? g : 0) * (k / 8)),
        has_x(g < M) {}
  // The slice sums of the lane's row g into part (S, M, kTileRows): c of slice `slice`.
  __device__ __forceinline__ void store(float* part, int slice, const float (&c)[4]) const {
    if (has_x) store_slice_sums<M>(part, slice, g, q, c);
  }
};

// c += one step's chunk: x elements 0..3 against weight elements 0..3 as the fragment's k pairs,
// then 4..7 (two m16n8k16; A's rows 8..15 are zeros).
__device__ __forceinline__ void mma_chunk(float (&c)[4], const uint4& xv, const uint4& wv) {
  const uint32_t a0[4] = {xv.x, 0u, xv.y, 0u}, b0[2] = {wv.x, wv.y};
  mma_bf16_16816(c, a0, b0);
  const uint32_t a1[4] = {xv.z, 0u, xv.w, 0u}, b1[2] = {wv.z, wv.w};
  mma_bf16_16816(c, a1, b1);
}

// x rows . the tile's weight rows, k cut into S slices over the CTA's W warps (S / W slices a
// warp, one after another): lane (g, q) passes its weight row wrow (row g of the tile); the slice
// sums are left in part as (S, M, kTileRows), then the CTA syncs. x (M, k) bf16 (shared memory
// when SX), k % 8 == 0, 16-byte aligned rows.
template <int M, bool SX, int S, int W>
__device__ __forceinline__ void tile_dots(float* part, const uint16_t* x, const uint16_t* wrow,
                                          int64_t k) {
  static_assert(S % W == 0, "a warp folds whole slices");
  constexpr int V = S / W;
  const LaneChunks<M> L(x, wrow, k);
  const uint4 zero = make_uint4(0u, 0u, 0u, 0u);
  for (int v = 0; v < V; ++v) {
    const int slice = L.warp + v * W;
    float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int64_t t0 = slice; t0 < L.steps; t0 += S * kUnroll) {
      uint4 wv[kUnroll], xv[kUnroll];
      bool ok[kUnroll];
      // Every lane loads (past the end: the last chunk again) and zeroes what it must not use:
      // loads under branches kept ptxas from having them all in flight at once.
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t ch = (t0 + u * S) * 4 + L.q;
        ok[u] = ch < L.chunks;
        const int64_t at = ok[u] ? ch : L.chunks - 1;
        wv[u] = skinny::load_stream(L.pw + at);
        xv[u] = skinny::x_chunk<SX>(L.px, 0, 0, at);
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        if (!ok[u]) wv[u] = zero;
        if (!ok[u] || !L.has_x) xv[u] = zero;
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) mma_chunk(c, xv[u], wv[u]);
    }
    L.store(part, slice, c);
  }
  __syncthreads();
}

// Weight chunks a lane has in flight per round in tile_dots_deep.
constexpr int kDeepLoads = 12;

// tile_dots with all of a warp's S / W slices in flight together, kDeepLoads / (S / W) steps of
// each a round: a warp that folds 4 slices in turn waits for 4 rounds of loads where this waits
// for one. Each slice still folds its steps in increasing order into its own accumulators, so the
// sums, and the bits, are tile_dots'. Its weight loads take registers: for kernels whose register
// budget is set by something bigger anyway (the one-kernel decode step's attention).
template <int M, bool SX, int S, int W>
__device__ __forceinline__ void tile_dots_deep(float* part, const uint16_t* x, const uint16_t* wrow,
                                               int64_t k) {
  static_assert(S % W == 0, "a warp folds whole slices");
  constexpr int V = S / W;
  constexpr int U = kDeepLoads / V;  // steps of each slice a round
  static_assert(U >= 1, "at most kDeepLoads slices a warp");
  const LaneChunks<M> L(x, wrow, k);
  const uint4 zero = make_uint4(0u, 0u, 0u, 0u);
  float c[V][4];
#pragma unroll
  for (int v = 0; v < V; ++v) c[v][0] = c[v][1] = c[v][2] = c[v][3] = 0.0f;
  // Round j0: steps j0 .. j0 + U - 1 of every slice; slice warp + v W has step t = its index +
  // j S. The warp's first slice has the most steps: the rounds end with its.
  for (int64_t j0 = 0; L.warp + j0 * S < L.steps; j0 += U) {
    uint4 wv[V][U];
#pragma unroll
    for (int v = 0; v < V; ++v)
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int64_t ch = (L.warp + v * W + (j0 + u) * S) * 4 + L.q;
        wv[v][u] = skinny::load_stream(L.pw + (ch < L.chunks ? ch : L.chunks - 1));
      }
#pragma unroll
    for (int v = 0; v < V; ++v)
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int64_t ch = (L.warp + v * W + (j0 + u) * S) * 4 + L.q;
        const bool ok = ch < L.chunks;
        uint4 xv = skinny::x_chunk<SX>(L.px, 0, 0, ok ? ch : L.chunks - 1);
        if (!ok) wv[v][u] = zero;
        if (!ok || !L.has_x) xv = zero;
        mma_chunk(c[v], xv, wv[v][u]);
      }
  }
#pragma unroll
  for (int v = 0; v < V; ++v) L.store(part, L.warp + v * W, c[v]);
  __syncthreads();
}

// x row r . tile weight row i: the slice sums in slice order.
template <int M, int S>
__device__ __forceinline__ float tile_sum(const float* part, int r, int i) {
  float v = part[r * kTileRows + i];
#pragma unroll
  for (int s = 1; s < S; ++s) v += part[(s * M + r) * kTileRows + i];
  return v;
}

// Tile b of y (M, n) of type CT from the slice sums in part (kPartFloats<M, S>): columns 8 b ..
// 8 b + 7, y = the sums or y += them, by threads 0 .. 8 M - 1 (no sync: part is still read when
// they return).
template <int M, int S, typename CT>
__device__ __forceinline__ void write_linear_tile(CT* y, int64_t n, bool accumulate, int64_t b,
                                                  const float* part) {
  const int t = threadIdx.x;
  if (t < M * kTileRows) {
    const int r = t / kTileRows, i = t % kTileRows;
    const int64_t j = b * kTileRows + i;
    if (j < n) {
      const float v = tile_sum<M, S>(part, r, i);
      CT* yj = y + r * n + j;
      *yj = from_f32<CT>(accumulate ? to_f32(*yj) + v : v);
    }
  }
}

// write_linear_tile, then the CTA syncs. Every thread of the CTA must call it.
template <int M, int S, typename CT>
__device__ __forceinline__ void store_linear_tile(CT* y, int64_t n, bool accumulate, int64_t b,
                                                  const float* part) {
  write_linear_tile<M, S>(y, n, accumulate, b, part);
  __syncthreads();  // part is read before the next tile writes it
}

// Tile b of y (M, n) of type CT = x (M, k) . W (n, k)^T, or y += it: columns 8 b .. 8 b + 7.
// S = slices_for(tiles), W = the CTA's warps; DEEP: tile_dots_deep (same bits). Every thread of
// the CTA must call it.
template <int M, bool SX, int S, int W, typename CT, bool DEEP = false>
__device__ __forceinline__ void linear_tile(CT* y, const uint16_t* x, const uint16_t* Wt, int64_t k,
                                            int64_t n, bool accumulate, int64_t b,
                                            float* part /* kPartFloats<M, S> shared */) {
  const int64_t jl = b * kTileRows + ((threadIdx.x & 31) >> 2);
  // Past n: read, not written.
  if constexpr (DEEP)
    tile_dots_deep<M, SX, S, W>(part, x, Wt + (jl < n ? jl : n - 1) * k, k);
  else
    tile_dots<M, SX, S, W>(part, x, Wt + (jl < n ? jl : n - 1) * k, k);
  store_linear_tile<M, S>(y, n, accumulate, b, part);
}

// Tile b of act (M, inter) bf16 from the slice sums in part (kPartFloats<M, S>) of its rows: 0..3
// the gate rows of SwiGLU columns 4 b .. 4 b + 3, 4..7 their up rows. g and u are rounded to
// bf16 first (where separate GEMMs would round them), then swiglu.cu's formula (as
// skinny::swiglu_tile), by threads 0 .. 4 M - 1 (no sync: part is still read when they return).
template <int M, int S>
__device__ __forceinline__ void write_swiglu_tile(__nv_bfloat16* act, int64_t inter, int64_t b,
                                                  const float* part) {
  constexpr int C = kSwigluTileCols;
  const int t = threadIdx.x;
  if (t < M * C) {
    const int r = t / C, i = t % C;
    const int64_t j = b * C + i;
    if (j < inter) {
      const float gr = skinny::round_bf16(tile_sum<M, S>(part, r, i));
      const float ur = skinny::round_bf16(tile_sum<M, S>(part, r, C + i));
      act[r * inter + j] = __float2bfloat16_rn(gr / (1.0f + expf(-gr)) * ur);
    }
  }
}

// write_swiglu_tile, then the CTA syncs. Every thread of the CTA must call it.
template <int M, int S>
__device__ __forceinline__ void store_swiglu_tile(__nv_bfloat16* act, int64_t inter, int64_t b,
                                                  const float* part) {
  write_swiglu_tile<M, S>(act, inter, b, part);
  __syncthreads();
}

// The weight row lane (g, q) of a SwiGLU tile b folds: tile row g < 4 is gate row 4 b + g, row
// g >= 4 up row 4 b + g - 4 (past inter: the last one, read, not written).
__host__ __device__ inline int64_t swiglu_tile_row(int64_t inter, int64_t b, int g) {
  constexpr int C = kSwigluTileCols;
  const int64_t jc = b * C + g % C, jl = jc < inter ? jc : inter - 1;
  return g < C ? jl : inter + jl;
}

// Tile b of act (M, inter) bf16 = silu(g) * u over Wt = gate rows then up rows (2 inter, k):
// SwiGLU columns 4 b .. 4 b + 3 (store_swiglu_tile). DEEP: tile_dots_deep (same bits).
template <int M, bool SX, int S, int W, bool DEEP = false>
__device__ __forceinline__ void swiglu_tile(__nv_bfloat16* act, const uint16_t* x,
                                            const uint16_t* Wt, int64_t k, int64_t inter, int64_t b,
                                            float* part /* kPartFloats<M, S> */) {
  const uint16_t* wrow = Wt + swiglu_tile_row(inter, b, (threadIdx.x & 31) >> 2) * k;
  if constexpr (DEEP)
    tile_dots_deep<M, SX, S, W>(part, x, wrow, k);
  else
    tile_dots<M, SX, S, W>(part, x, wrow, k);
  store_swiglu_tile<M, S>(act, inter, b, part);
}

// The weight rows tile b reads, prefetched into L2 (PDL forms).
__device__ __forceinline__ void prefetch_linear_tile(const uint16_t* Wt, int64_t k, int64_t n,
                                                     int64_t b) {
  skinny::prefetch_rows(Wt, k, n, b * kLinearTileCols, (b + 1) * kLinearTileCols);
}
__device__ __forceinline__ void prefetch_swiglu_tile(const uint16_t* Wt, int64_t k, int64_t inter,
                                                     int64_t b) {
  skinny::prefetch_rows(Wt, k, inter, b * kSwigluTileCols, (b + 1) * kSwigluTileCols);
  skinny::prefetch_rows(Wt + inter * k, k, inter, b * kSwigluTileCols, (b + 1) * kSwigluTileCols);
}

}  // namespace npr::skinny_tc
