// Inside parallel_attention.cu only: the two forward kernels of the fused block-sparse attention
// (see parallel_attention_cuda.h). One CTA per (global query tile, query head), items ordered
// head-fastest and last tile first (the long rows of a sequence start first, and the query
// heads of one kv head run side by side, sharing its K/V tiles in L2). Each CTA walks only its
// query tile's row list: SKIP tiles are never loaded, FULL tiles do no mask arithmetic, PARTIAL
// tiles apply one 64-bit mask word per query row. Online softmax in fp32 in the log2 domain
// (scale * log2 e folded into the exponent), output normalised, lse in natural log.
//
//   attn_fwd_mma<D>:     bf16, D in {64, 128}; 4 warps x 16 query rows (FlashAttention-2
//                        style) on mma.sync m16n8k16, Q fragments in registers, K/V tiles
//                        double-buffered in padded shared memory by cp.async.
//   attn_fwd_mma2<D>:    the same for an even GQA group (the bf16 path in practice): one CTA
//                        per (query tile, pair of query heads of one kv head), each warp the
//                        same 16 rows of both heads, so every K / V fragment read from shared
//                        memory feeds two m16 tiles and each K/V tile loaded serves two heads;
//                        Q of both heads in shared memory, key tiles in two halves of 32 keys.
//   attn_fwd_simt<T, DM>: any element type and head dim <= DM (32, 64, 128, 256); fp32 math on
//                        shared-memory tiles, key tiles in two chunks of 32 keys.
//
// Rows past the sequence's end compute on zero-filled Q and are never written; keys past the
// key tile's end are zero-filled and masked (only a sequence's last tile is short, and it is
// always a PARTIAL diagonal tile). Not here: split-KV, the backward, launch-time checks.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/cuda_dtype.cuh"
#include "core/dynamic_shared.cuh"
#include "kernels/attn_softmax.cuh"
#include "kernels/mma_bf16.cuh"
#include "kernels/parallel_attention.h"

namespace npr::attn_fwd {

constexpr int kT = kAttnTile;  // 64 query rows and 64 keys per tile
constexpr float kLn2 = 0.6931471805599453f;

// Everything a forward kernel reads; pointers are device pointers.
struct FwdParams {
  const int64_t* seq_start;  // (sequences)
  const int64_t* seq_len;    // (sequences)
  const int64_t* seq_tile0;  // (sequences)
  const int32_t* tile_seq;   // (tiles)
  const int64_t* row_ptr;    // (tiles + 1)
  const AttnTilePair* row_pairs;
  const uint64_t* masks;  // (partial tiles, kT)
  int64_t tiles;
  int64_t tokens;              // rows of q, k, v, out (the TMA forward's tensor maps)
  int heads, group, head_dim;  // group = heads / kv_heads
  int64_t ldq, ldk;            // heads * D, kv_heads * D (elements)
  float scale_log2;            // scale * log2 e
  void* out;                   // (tokens, heads, D) of the element type
  float* lse;                  // (tokens, heads)
  const void *q, *k, *v;       // (tokens, heads | kv_heads, D)
};

// The work item of this CTA: query tile g (global), head h, and the tile's token range.
struct Item {
  int64_t g, seq_start, seq_end, q_start;
  int h, kvh, qn;
};
// Query tile g's sequence and token range (qn live rows, 1..64).
__device__ __forceinline__ void tile_range(const FwdParams& p, int64_t g, int64_t& seq_start,
                                           int64_t& seq_end, int64_t& q_start, int& qn) {
  const int32_t seq = p.tile_seq[g];
  seq_start = p.seq_start[seq];
  seq_end = seq_start + p.seq_len[seq];
  q_start = seq_start + (g - p.seq_tile0[seq]) * kT;
  const int64_t n = seq_end - q_start;
  qn = static_cast<int>(n < kT ? n : kT);
}

__device__ __forceinline__ Item item_of(const FwdParams& p) {
  Item it;
  const int64_t x = blockIdx.x;
  it.h = static_cast<int>(x % p.heads);
  it.kvh = it.h / p.group;
  it.g = p.tiles - 1 - x / p.heads;
  tile_range(p, it.g, it.seq_start, it.seq_end, it.q_start, it.qn);
  return it;
}

// The work item of a paired-head CTA (one per query tile and pair of query heads of one kv
// head; the GQA group is even): query tile g, heads h0 and h0 + 1, the tile's token range.
struct PairItem {
  int64_t g, seq_start, seq_end, q_start;
  int h0, kvh, qn;
};
__device__ __forceinline__ PairItem pair_item_of(const FwdParams& p) {
  PairItem it;
  const int pairs = p.heads >> 1;
  const int64_t x = blockIdx.x;
  it.h0 = static_cast<int>(x % pairs) * 2;
  it.kvh = it.h0 / p.group;
  it.g = p.tiles - 1 - x / pairs;
  tile_range(p, it.g, it.seq_start, it.seq_end, it.q_start, it.qn);
  return it;
}

// A paired-head CTA's inputs: Q of head h0 (h0 + 1's follows at + D), K and V from the
// sequence's first token (local key tile t starts at t * 64), and the query tile's row list.
struct PairInputs {
  const __nv_bfloat16 *q, *k, *v;
  int64_t seq_n;  // tokens of the sequence
  const AttnTilePair* pairs;
  int npairs;
};
template <int D>
__device__ __forceinline__ PairInputs pair_inputs_of(const FwdParams& p, const PairItem& it) {
  using bf16_t = __nv_bfloat16;
  return PairInputs{static_cast<const bf16_t*>(p.q) + it.q_start * p.ldq + it.h0 * D,
                    static_cast<const bf16_t*>(p.k) + it.seq_start * p.ldk + it.kvh * D,
                    static_cast<const bf16_t*>(p.v) + it.seq_start * p.ldk + it.kvh * D,
                    it.seq_end - it.seq_start,
                    p.row_pairs + p.row_ptr[it.g],
                    static_cast<int>(p.row_ptr[it.g + 1] - p.row_ptr[it.g])};
}

// A warp's raw scores over one 64-key tile (8 n8 fragments from fragment kFrom of s, rows g8
// and g8 + 8, c4 = lane % 4) masked by the rows' mask words w0, w1 (bit k: key k visible):
// hidden keys become -inf.
template <int kFrom = 0, int N>
__device__ __forceinline__ void mask_scores(float (&s)[N][4], uint64_t w0, uint64_t w1, int c4) {
  static_assert(kFrom + 8 <= N, "a 64-key tile within s");
  const float ninf = -__int_as_float(0x7f800000);
#pragma unroll
  for (int n = 0; n < 8; ++n)
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int col = n * 8 + 2 * c4 + e;
      if (!((w0 >> col) & 1ull)) s[kFrom + n][e] = ninf;
      if (!((w1 >> col) & 1ull)) s[kFrom + n][2 + e] = ninf;
    }
}

// A thread's rows' mask words (rows r0 and r0 + 8 of the query tile) of one pair of a row list:
// all ones, and not partial, for a FULL pair. The kernels read them a step ahead of the MMAs
// whose scores they mask, so that the loads are not on the path from S to the softmax.
struct RowWords {
  uint64_t w0, w1;
  bool partial;
};
__device__ __forceinline__ RowWords row_words(const FwdParams& p, const AttnTilePair& pair,
                                              int r0) {
  const int32_t partial = pair.partial;
  return partial < 0 ? RowWords{~0ull, ~0ull, false}
                     : RowWords{p.masks[partial + r0], p.masks[partial + r0 + 8], true};
}
// The 64 scores from fragment kFrom of s masked by w (nothing for a FULL pair).
template <int kFrom = 0, int N>
__device__ __forceinline__ void mask_row_scores(float (&s)[N][4], const RowWords& w, int c4) {
  if (w.partial) mask_scores<kFrom>(s, w.w0, w.w1, c4);
}

// The end of a bf16 tensor-core kernel, for one head: a warp's accumulators o (rows r0 and r0 +
// 8 of the query tile at q_start; mma.sync C layout, c4 = lane % 4), running max (m0, m1, raw
// scores) and this thread's part of the running sums (l0, l1) become normalised out rows and
// lse (natural log; -inf where nothing was visible). Rows >= qn are not written.
template <int D>
__device__ __forceinline__ void store_head_rows(const FwdParams& p, const float (&o)[D / 8][4],
                                                float m0, float m1, float l0, float l1,
                                                int64_t q_start, int h, int r0, int qn, int c4) {
  using bf16_t = __nv_bfloat16;
  const float ninf = -__int_as_float(0x7f800000);
  const float sl2 = p.scale_log2;
#pragma unroll
  for (int x = 1; x <= 2; x <<= 1) {
    l0 += __shfl_xor_sync(0xffffffffu, l0, x);
    l1 += __shfl_xor_sync(0xffffffffu, l1, x);
  }
  const float inv0 = l0 > 0.0f ? 1.0f / l0 : 0.0f, inv1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;
  bf16_t* const og = static_cast<bf16_t*>(p.out) + q_start * p.ldq + h * D + 2 * c4;
  if (r0 < qn) {
#pragma unroll
    for (int n = 0; n < D / 8; ++n)
      *reinterpret_cast<uint32_t*>(og + r0 * p.ldq + n * 8) =
          pack_bf16x2(o[n][0] * inv0, o[n][1] * inv0);
    if (c4 == 0)
      p.lse[(q_start + r0) * p.heads + h] = l0 > 0.0f ? (m0 * sl2 + log2f(l0)) * kLn2 : ninf;
  }
  if (r0 + 8 < qn) {
#pragma unroll
    for (int n = 0; n < D / 8; ++n)
      *reinterpret_cast<uint32_t*>(og + (r0 + 8) * p.ldq + n * 8) =
          pack_bf16x2(o[n][2] * inv1, o[n][3] * inv1);
    if (c4 == 0)
      p.lse[(q_start + r0 + 8) * p.heads + h] = l1 > 0.0f ? (m1 * sl2 + log2f(l1)) * kLn2 : ninf;
  }
}

// ---------------------------------------------------------------------------------------------
// Tensor-core kernel (bf16, D = 64 or 128).

constexpr int kMmaThreads = 128;  // 4 warps x 16 query rows

template <int D>
struct MmaSmem {
  static constexpr int kStride = D + 8;  // bf16 per row: the 16-byte pad puts the 8 rows of
                                         // every ldmatrix phase on distinct banks
  static constexpr int kTileElems = kT * kStride;
  // Q (64, kStride) | K0 | V0 | K1 | V1, all (64, kStride) bf16.
  static constexpr int kBytes = 5 * kTileElems * 2;
};

// dst (64, kStride) = rows [0, n) of src (row stride ld elements), zeros for rows >= n; rows
// < n by cp.async (the caller commits), rows >= n by plain stores.
template <int D>
__device__ __forceinline__ void load_tile_async(__nv_bfloat16* dst, const __nv_bfloat16* src,
                                                int64_t ld, int n, int tid) {
  constexpr int kChunks = D / 8;  // 16-byte chunks per row
#pragma unroll
  for (int i = 0; i < kT * kChunks / kMmaThreads; ++i) {
    const int idx = tid + i * kMmaThreads, r = idx / kChunks, c = idx % kChunks;
    __nv_bfloat16* d = dst + r * MmaSmem<D>::kStride + c * 8;
    if (r < n)
      cp_async_16(d, src + r * ld + c * 8);
    else
      *reinterpret_cast<uint4*>(d) = make_uint4(0u, 0u, 0u, 0u);
  }
}

template <int D>
__global__ void __launch_bounds__(kMmaThreads, D == 64 ? 3 : 2) attn_fwd_mma(FwdParams p) {
  using bf16_t = __nv_bfloat16;
  using S = MmaSmem<D>;
  constexpr int kStride = S::kStride;
  constexpr int KD = D / 16;  // k-steps of Q K^T
  constexpr int ND = D / 8;   // n-tiles of the output
  NPR_DYNAMIC_SHARED(smem_raw);
  bf16_t* const qs = reinterpret_cast<bf16_t*>(smem_raw);
  const auto k_buf = [&](int b) { return qs + (1 + 2 * b) * S::kTileElems; };
  const auto v_buf = [&](int b) { return qs + (2 + 2 * b) * S::kTileElems; };

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g8 = lane >> 2, c4 = lane & 3;  // fragment row group and column pair
  const Item it = item_of(p);
  const bf16_t* const qg = static_cast<const bf16_t*>(p.q) + it.q_start * p.ldq + it.h * D;
  const bf16_t* const kg = static_cast<const bf16_t*>(p.k) + it.kvh * D;
  const bf16_t* const vg = static_cast<const bf16_t*>(p.v) + it.kvh * D;
  const int64_t pb = p.row_ptr[it.g], pe = p.row_ptr[it.g + 1];

  // Issues the loads of row-list entry j's K and V tiles into buffer b.
  const auto load_kv = [&](int64_t j, int b) {
    const int64_t ks = it.seq_start + static_cast<int64_t>(p.row_pairs[j].other) * kT;
    const int64_t kn64 = it.seq_end - ks;
    const int kn = static_cast<int>(kn64 < kT ? kn64 : kT);
    load_tile_async<D>(k_buf(b), kg + ks * p.ldk, p.ldk, kn, tid);
    load_tile_async<D>(v_buf(b), vg + ks * p.ldk, p.ldk, kn, tid);
  };

  load_tile_async<D>(qs, qg, p.ldq, it.qn, tid);
  cp_async_commit();
  if (pb < pe) load_kv(pb, 0);
  cp_async_commit();
  cp_async_wait<1>();  // Q landed (K/V of the first tile may still be in flight)
  __syncthreads();

  // Q fragments (A operand, 16 x 16 per k-step) of this warp's 16 rows.
  uint32_t qf[KD][4];
  {
    const bf16_t* base =
        qs + (warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * kStride + (lane >> 4) * 8;
#pragma unroll
    for (int kk = 0; kk < KD; ++kk) ldmatrix_x4(qf[kk], base + kk * 16);
  }

  float o[ND][4];  // rows (g8, g8 + 8) x dims (8 n + 2 c4, + 1)
#pragma unroll
  for (int n = 0; n < ND; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  const float ninf = -__int_as_float(0x7f800000);
  float m0 = ninf, m1 = ninf;  // running max of the raw scores, rows g8 and g8 + 8
  float l0 = 0.0f, l1 = 0.0f;  // this thread's part of the running sums
  const float sl2 = p.scale_log2;
  const int r0 = warp * 16 + g8;  // query row (within the tile) of fragment rows 0..1

  for (int64_t j = pb; j < pe; ++j) {
    const int b = static_cast<int>((j - pb) & 1);
    if (j + 1 < pe) load_kv(j + 1, b ^ 1);
    cp_async_commit();  // possibly empty: keeps the group count uniform
    const int32_t partial = p.row_pairs[j].partial;
    uint64_t w0 = ~0ull, w1 = ~0ull;
    if (partial >= 0) {
      w0 = p.masks[partial + r0];
      w1 = p.masks[partial + r0 + 8];
    }
    cp_async_wait<1>();  // tile j landed
    __syncthreads();

    // S (16 x 64 per warp) = Q K^T, raw scores.
    float s[8][4];
#pragma unroll
    for (int n = 0; n < 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
    {
      const bf16_t* kb =
          k_buf(b) + ((lane & 7) + (lane >> 4) * 8) * kStride + ((lane >> 3) & 1) * 8;
#pragma unroll
      for (int kk = 0; kk < KD; ++kk)
#pragma unroll
        for (int np = 0; np < 4; ++np) {
          uint32_t kf[4];
          ldmatrix_x4(kf, kb + np * 16 * kStride + kk * 16);
          mma_bf16_16816(s[2 * np], qf[kk], kf);
          mma_bf16_16816(s[2 * np + 1], qf[kk], kf + 2);
        }
    }
    if (partial >= 0) mask_scores(s, w0, w1, c4);

    online_softmax_step(s, o, m0, m1, l0, l1, sl2);

    // O += P V: P (bf16) straight from the S fragments, V by ldmatrix.trans.
    {
      const bf16_t* vb =
          v_buf(b) + ((lane & 7) + ((lane >> 3) & 1) * 8) * kStride + (lane >> 4) * 8;
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) {
        uint32_t a[4];
        a[0] = pack_bf16x2(s[2 * kk][0], s[2 * kk][1]);
        a[1] = pack_bf16x2(s[2 * kk][2], s[2 * kk][3]);
        a[2] = pack_bf16x2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
        a[3] = pack_bf16x2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
        for (int dp = 0; dp < D / 16; ++dp) {
          uint32_t vf[4];
          ldmatrix_x4_trans(vf, vb + kk * 16 * kStride + dp * 16);
          mma_bf16_16816(o[2 * dp], a, vf);
          mma_bf16_16816(o[2 * dp + 1], a, vf + 2);
        }
      }
    }
    __syncthreads();  // buffer b is refilled by the next iteration's prefetch
  }
  cp_async_wait<0>();

  store_head_rows<D>(p, o, m0, m1, l0, l1, it.q_start, it.h, r0, it.qn, c4);
}

}  // namespace npr::attn_fwd
