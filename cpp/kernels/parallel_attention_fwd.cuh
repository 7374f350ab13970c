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
__device__ __forceinline__ Item item_of(const FwdParams& p) {
  Item it;
  const int64_t x = blockIdx.x;
  it.h = static_cast<int>(x % p.heads);
  it.kvh = it.h / p.group;
  it.g = p.tiles - 1 - x / p.heads;
  const int32_t seq = p.tile_seq[it.g];
  it.seq_start = p.seq_start[seq];
  it.seq_end = it.seq_start + p.seq_len[seq];
  it.q_start = it.seq_start + (it.g - p.seq_tile0[seq]) * kT;
  const int64_t n = it.seq_end - it.q_start;
  it.qn = static_cast<int>(n < kT ? n : kT);
  return it;
}

__device__ __forceinline__ float fast_exp2(float x) {  // ex2.approx: exp2(-inf) = +0
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
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
  extern __shared__ __align__(16) unsigned char smem_raw[];
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
    if (partial >= 0) {
#pragma unroll
      for (int n = 0; n < 8; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int col = n * 8 + 2 * c4 + e;
          if (!((w0 >> col) & 1ull)) s[n][e] = ninf;
          if (!((w1 >> col) & 1ull)) s[n][2 + e] = ninf;
        }
    }

    // Online softmax (scale > 0, so the max of the raw scores is the max of the scaled ones).
    float mx0 = m0, mx1 = m1;
#pragma unroll
    for (int n = 0; n < 8; ++n) {
      mx0 = fmaxf(mx0, fmaxf(s[n][0], s[n][1]));
      mx1 = fmaxf(mx1, fmaxf(s[n][2], s[n][3]));
    }
#pragma unroll
    for (int x = 1; x <= 2; x <<= 1) {
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, x));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, x));
    }
    // Nothing visible yet in a row: subtract 0 so exp2(-inf) stays 0 instead of NaN.
    const float b0 = mx0 == ninf ? 0.0f : mx0 * sl2, b1 = mx1 == ninf ? 0.0f : mx1 * sl2;
    const float a0 = fast_exp2(m0 * sl2 - b0), a1 = fast_exp2(m1 * sl2 - b1);
    m0 = mx0;
    m1 = mx1;
    float rs0 = 0.0f, rs1 = 0.0f;
#pragma unroll
    for (int n = 0; n < 8; ++n) {
      s[n][0] = fast_exp2(fmaf(s[n][0], sl2, -b0));
      s[n][1] = fast_exp2(fmaf(s[n][1], sl2, -b0));
      s[n][2] = fast_exp2(fmaf(s[n][2], sl2, -b1));
      s[n][3] = fast_exp2(fmaf(s[n][3], sl2, -b1));
      rs0 += s[n][0] + s[n][1];
      rs1 += s[n][2] + s[n][3];
    }
    l0 = l0 * a0 + rs0;
    l1 = l1 * a1 + rs1;
#pragma unroll
    for (int n = 0; n < ND; ++n) {
      o[n][0] *= a0;
      o[n][1] *= a0;
      o[n][2] *= a1;
      o[n][3] *= a1;
    }

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

  // Row sums over the quad, normalise, store.
#pragma unroll
  for (int x = 1; x <= 2; x <<= 1) {
    l0 += __shfl_xor_sync(0xffffffffu, l0, x);
    l1 += __shfl_xor_sync(0xffffffffu, l1, x);
  }
  const float inv0 = l0 > 0.0f ? 1.0f / l0 : 0.0f, inv1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;
  bf16_t* const og = static_cast<bf16_t*>(p.out) + it.q_start * p.ldq + it.h * D + 2 * c4;
  if (r0 < it.qn) {
#pragma unroll
    for (int n = 0; n < ND; ++n)
      *reinterpret_cast<uint32_t*>(og + r0 * p.ldq + n * 8) =
          pack_bf16x2(o[n][0] * inv0, o[n][1] * inv0);
    if (c4 == 0)
      p.lse[(it.q_start + r0) * p.heads + it.h] = l0 > 0.0f ? (m0 * sl2 + log2f(l0)) * kLn2 : ninf;
  }
  if (r0 + 8 < it.qn) {
#pragma unroll
    for (int n = 0; n < ND; ++n)
      *reinterpret_cast<uint32_t*>(og + (r0 + 8) * p.ldq + n * 8) =
          pack_bf16x2(o[n][2] * inv1, o[n][3] * inv1);
    if (c4 == 0)
      p.lse[(it.q_start + r0 + 8) * p.heads + it.h] =
          l1 > 0.0f ? (m1 * sl2 + log2f(l1)) * kLn2 : ninf;
  }
}

// ---------------------------------------------------------------------------------------------
// Paired-head tensor-core kernel (bf16, D = 64 or 128, even GQA group): one CTA per (global
// query tile, pair of query heads of one kv head). Each warp owns the same 16 query rows of both
// heads, so every K / V fragment read from shared memory feeds two m16 tiles (half the
// shared-memory traffic per mma of attn_fwd_mma) and each K/V tile loaded serves two heads. Q of
// both heads stays in shared memory (A fragments reloaded per k-step: registers go to the two
// accumulators). Same arithmetic per head as attn_fwd_mma (sum orders per row unchanged).

__device__ __forceinline__ void ldsm_x4(uint32_t r[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t r[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// dst (64, D + 8) at shared byte address dst <- rows [0, n) of src (stride ld), zeros past n,
// by cp.async with a zero-fill size (the caller commits). A running source pointer keeps the
// per-thread addressing to a few registers (the kernel's accumulators need the rest).
template <int D>
__device__ __forceinline__ void load_tile_async_lean(uint32_t dst, const __nv_bfloat16* src,
                                                     int64_t ld, int n, int tid) {
  constexpr int kChunks = D / 8;                   // 16-byte chunks per row
  constexpr int kRowStep = kMmaThreads / kChunks;  // rows covered per pass
  const int c = tid % kChunks;
  int r = tid / kChunks;
  const __nv_bfloat16* sp = src + r * ld + c * 8;
  uint32_t dp = dst + (r * (D + 8) + c * 8) * 2;
  const int64_t step = kRowStep * ld;
#pragma unroll 4
  for (int i = 0; i < kT / kRowStep; ++i) {
    const bool ok = r < n;
    const int bytes = ok ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dp), "l"(ok ? sp : src),
                 "r"(bytes));
    sp += step;
    dp += kRowStep * (D + 8) * 2;
    r += kRowStep;
  }
}

template <int D>
struct Mma2Smem {
  static constexpr int kStride = D + 8;
  static constexpr int kTileElems = kT * kStride;
  // Q0 | Q1 | K0 | V0 | K1 | V1, all (64, kStride) bf16.
  static constexpr int kBytes = 6 * kTileElems * 2;
};

template <int D>
__global__ void __launch_bounds__(kMmaThreads, D == 64 ? 3 : 2) attn_fwd_mma2(FwdParams p) {
  using bf16_t = __nv_bfloat16;
  using S = Mma2Smem<D>;
  constexpr int kStride = S::kStride;
  constexpr int KD = D / 16;  // k-steps of Q K^T
  constexpr int ND = D / 8;   // n-tiles of the output
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16_t* const qs = reinterpret_cast<bf16_t*>(smem_raw);  // Q0, then Q1 at + kTileElems

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g8 = lane >> 2, c4 = lane & 3;
  // Item: query tile g, heads h0 = 2 hp and h0 + 1 (same kv head: the group is even).
  const int pairs = p.heads >> 1;
  const int64_t x = blockIdx.x;
  const int h0 = static_cast<int>(x % pairs) * 2;
  const int kvh = h0 / p.group;
  const int64_t g = p.tiles - 1 - x / pairs;
  int64_t seq_start, seq_end, q_start;
  int qn;
  {
    const int32_t seq = p.tile_seq[g];
    seq_start = p.seq_start[seq];
    seq_end = seq_start + p.seq_len[seq];
    q_start = seq_start + (g - p.seq_tile0[seq]) * kT;
    const int64_t n = seq_end - q_start;
    qn = static_cast<int>(n < kT ? n : kT);
  }
  const bf16_t* const qg = static_cast<const bf16_t*>(p.q) + q_start * p.ldq + h0 * D;
  // K / V rows of the sequence's first token; keys of local tile t start at t * 64.
  const bf16_t* const kg = static_cast<const bf16_t*>(p.k) + seq_start * p.ldk + kvh * D;
  const bf16_t* const vg = static_cast<const bf16_t*>(p.v) + seq_start * p.ldk + kvh * D;
  const int64_t seq_n = seq_end - seq_start;
  const AttnTilePair* const rp = p.row_pairs + p.row_ptr[g];
  const int npairs = static_cast<int>(p.row_ptr[g + 1] - p.row_ptr[g]);
  const uint32_t sbase = static_cast<uint32_t>(__cvta_generic_to_shared(qs));

  const auto load_kv = [&](int j, int b) {
    const int64_t ks = static_cast<int64_t>(rp[j].other) * kT;
    const int64_t kn64 = seq_n - ks;
    const int kn = static_cast<int>(kn64 < kT ? kn64 : kT);
    const uint32_t kdst = sbase + (2 + 2 * b) * S::kTileElems * 2;
    load_tile_async_lean<D>(kdst, kg + ks * p.ldk, p.ldk, kn, tid);
    load_tile_async_lean<D>(kdst + S::kTileElems * 2, vg + ks * p.ldk, p.ldk, kn, tid);
  };

  load_tile_async_lean<D>(sbase, qg, p.ldq, qn, tid);
  load_tile_async_lean<D>(sbase + S::kTileElems * 2, qg + D, p.ldq, qn, tid);
  cp_async_commit();
  if (npairs > 0) load_kv(0, 0);
  cp_async_commit();

  float o[2][ND][4];  // per head: rows (g8, g8 + 8) x dims (8 n + 2 c4, + 1)
#pragma unroll
  for (int hh = 0; hh < 2; ++hh)
#pragma unroll
    for (int n = 0; n < ND; ++n) o[hh][n][0] = o[hh][n][1] = o[hh][n][2] = o[hh][n][3] = 0.0f;
  const float ninf = -__int_as_float(0x7f800000);
  float m[2][2] = {{ninf, ninf}, {ninf, ninf}};  // [head][row half] running max (raw scores)
  float l[2][2] = {{0.0f, 0.0f}, {0.0f, 0.0f}};  // this thread's part of the running sums
  const float sl2 = p.scale_log2;
  const int r0 = warp * 16 + g8;
  // 32-bit shared addresses (bytes) of this lane's ldmatrix rows.
  const uint32_t qa_base =
      sbase + ((warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * kStride + (lane >> 4) * 8) * 2;
  const uint32_t kb_off = (((lane & 7) + (lane >> 4) * 8) * kStride + ((lane >> 3) & 1) * 8) * 2;
  const uint32_t vb_off = (((lane & 7) + ((lane >> 3) & 1) * 8) * kStride + (lane >> 4) * 8) * 2;

  for (int j = 0; j < npairs; ++j) {
    const int b = j & 1;
    if (j + 1 < npairs) load_kv(j + 1, b ^ 1);
    cp_async_commit();
    cp_async_wait<1>();  // tile j (and Q, on the first pass) landed
    __syncthreads();

    const int32_t partial = rp[j].partial;
    uint64_t w0 = ~0ull, w1 = ~0ull;
    if (partial >= 0) {
      w0 = p.masks[partial + r0];
      w1 = p.masks[partial + r0 + 8];
    }
    // The key tile in two halves of 32 keys, each a step of the online softmax: half the score
    // registers (the two heads' output accumulators hold 128 of them at D 128).
#pragma unroll 1
    for (int half = 0; half < 2; ++half) {
      float s[2][4][4];
#pragma unroll
      for (int hh = 0; hh < 2; ++hh)
#pragma unroll
        for (int n = 0; n < 4; ++n) s[hh][n][0] = s[hh][n][1] = s[hh][n][2] = s[hh][n][3] = 0.0f;
      {
        const uint32_t kb =
            sbase + (2 + 2 * b) * S::kTileElems * 2 + kb_off + half * 32 * kStride * 2;
#pragma unroll
        for (int kk = 0; kk < KD; ++kk) {
          uint32_t qa0[4], qa1[4];
          ldsm_x4(qa0, qa_base + kk * 32);
          ldsm_x4(qa1, qa_base + S::kTileElems * 2 + kk * 32);
#pragma unroll
          for (int np = 0; np < 2; ++np) {
            uint32_t kf[4];
            ldsm_x4(kf, kb + (np * 16 * kStride + kk * 16) * 2);
            mma_bf16_16816(s[0][2 * np], qa0, kf);
            mma_bf16_16816(s[0][2 * np + 1], qa0, kf + 2);
            mma_bf16_16816(s[1][2 * np], qa1, kf);
            mma_bf16_16816(s[1][2 * np + 1], qa1, kf + 2);
          }
        }
      }
      if (partial >= 0) {
#pragma unroll
        for (int n = 0; n < 4; ++n)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int col = half * 32 + n * 8 + 2 * c4 + e;
            if (!((w0 >> col) & 1ull)) s[0][n][e] = s[1][n][e] = ninf;
            if (!((w1 >> col) & 1ull)) s[0][n][2 + e] = s[1][n][2 + e] = ninf;
          }
      }

      uint32_t pa[2][2][4];  // P (bf16) as A fragments: [head][k-step of 16 keys]
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        float mx0 = m[hh][0], mx1 = m[hh][1];
#pragma unroll
        for (int n = 0; n < 4; ++n) {
          mx0 = fmaxf(mx0, fmaxf(s[hh][n][0], s[hh][n][1]));
          mx1 = fmaxf(mx1, fmaxf(s[hh][n][2], s[hh][n][3]));
        }
#pragma unroll
        for (int xo = 1; xo <= 2; xo <<= 1) {
          mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, xo));
          mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, xo));
        }
        const float b0 = mx0 == ninf ? 0.0f : mx0 * sl2, b1 = mx1 == ninf ? 0.0f : mx1 * sl2;
        // The rescale is skipped (bit-exactly: the factor would be exp2(0) = 1) while no row
        // of the warp raised its max.
        const bool grow = mx0 != m[hh][0] || mx1 != m[hh][1];
        if (__any_sync(0xffffffffu, grow)) {
          const float a0 = fast_exp2(m[hh][0] * sl2 - b0), a1 = fast_exp2(m[hh][1] * sl2 - b1);
          l[hh][0] *= a0;
          l[hh][1] *= a1;
#pragma unroll
          for (int n = 0; n < ND; ++n) {
            o[hh][n][0] *= a0;
            o[hh][n][1] *= a0;
            o[hh][n][2] *= a1;
            o[hh][n][3] *= a1;
          }
        }
        m[hh][0] = mx0;
        m[hh][1] = mx1;
        float rs0 = 0.0f, rs1 = 0.0f;
#pragma unroll
        for (int n = 0; n < 4; ++n) {
          s[hh][n][0] = fast_exp2(fmaf(s[hh][n][0], sl2, -b0));
          s[hh][n][1] = fast_exp2(fmaf(s[hh][n][1], sl2, -b0));
          s[hh][n][2] = fast_exp2(fmaf(s[hh][n][2], sl2, -b1));
          s[hh][n][3] = fast_exp2(fmaf(s[hh][n][3], sl2, -b1));
          rs0 += s[hh][n][0] + s[hh][n][1];
          rs1 += s[hh][n][2] + s[hh][n][3];
        }
        l[hh][0] += rs0;
        l[hh][1] += rs1;
#pragma unroll
        for (int kk = 0; kk < 2; ++kk) {
          pa[hh][kk][0] = pack_bf16x2(s[hh][2 * kk][0], s[hh][2 * kk][1]);
          pa[hh][kk][1] = pack_bf16x2(s[hh][2 * kk][2], s[hh][2 * kk][3]);
          pa[hh][kk][2] = pack_bf16x2(s[hh][2 * kk + 1][0], s[hh][2 * kk + 1][1]);
          pa[hh][kk][3] = pack_bf16x2(s[hh][2 * kk + 1][2], s[hh][2 * kk + 1][3]);
        }
      }

      // O += P V for both heads: every V fragment feeds four mma.
      const uint32_t vb =
          sbase + (3 + 2 * b) * S::kTileElems * 2 + vb_off + half * 32 * kStride * 2;
#pragma unroll
      for (int kk = 0; kk < 2; ++kk)
#pragma unroll
        for (int dp = 0; dp < D / 16; ++dp) {
          uint32_t vf[4];
          ldsm_x4_t(vf, vb + (kk * 16 * kStride + dp * 16) * 2);
          mma_bf16_16816(o[0][2 * dp], pa[0][kk], vf);
          mma_bf16_16816(o[0][2 * dp + 1], pa[0][kk], vf + 2);
          mma_bf16_16816(o[1][2 * dp], pa[1][kk], vf);
          mma_bf16_16816(o[1][2 * dp + 1], pa[1][kk], vf + 2);
        }
    }
    __syncthreads();  // buffer b is refilled by the next iteration's prefetch
  }
  cp_async_wait<0>();

#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    float l0 = l[hh][0], l1 = l[hh][1];
#pragma unroll
    for (int xo = 1; xo <= 2; xo <<= 1) {
      l0 += __shfl_xor_sync(0xffffffffu, l0, xo);
      l1 += __shfl_xor_sync(0xffffffffu, l1, xo);
    }
    const int h = h0 + hh;
    const float inv0 = l0 > 0.0f ? 1.0f / l0 : 0.0f, inv1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;
    bf16_t* const og = static_cast<bf16_t*>(p.out) + q_start * p.ldq + h * D + 2 * c4;
    if (r0 < qn) {
#pragma unroll
      for (int n = 0; n < ND; ++n)
        *reinterpret_cast<uint32_t*>(og + r0 * p.ldq + n * 8) =
            pack_bf16x2(o[hh][n][0] * inv0, o[hh][n][1] * inv0);
      if (c4 == 0)
        p.lse[(q_start + r0) * p.heads + h] =
            l0 > 0.0f ? (m[hh][0] * sl2 + log2f(l0)) * kLn2 : ninf;
    }
    if (r0 + 8 < qn) {
#pragma unroll
      for (int n = 0; n < ND; ++n)
        *reinterpret_cast<uint32_t*>(og + (r0 + 8) * p.ldq + n * 8) =
            pack_bf16x2(o[hh][n][2] * inv1, o[hh][n][3] * inv1);
      if (c4 == 0)
        p.lse[(q_start + r0 + 8) * p.heads + h] =
            l1 > 0.0f ? (m[hh][1] * sl2 + log2f(l1)) * kLn2 : ninf;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// SIMT kernel (any element type, head dim <= DM).

constexpr int kSimtThreads = 256;  // 64 query rows x 4 threads
constexpr int kChunk = 32;         // keys per shared-memory chunk (two per key tile)

// Shared memory, floats: Q (64, D + 1) | K (32, D + 1) | V (32, DM) | P (64, 33).
inline int simt_smem_bytes(int D, int dm) {
  return 4 * (kT * (D + 1) + kChunk * (D + 1) + kChunk * dm + kT * (kChunk + 1));
}

template <typename T, int DM>
__global__ void __launch_bounds__(kSimtThreads) attn_fwd_simt(FwdParams p) {
  extern __shared__ float smf[];
  const int D = p.head_dim, ld = D + 1;
  float* const qs = smf;               // (64, D + 1)
  float* const ks = qs + kT * ld;      // (32, D + 1)
  float* const vs = ks + kChunk * ld;  // (32, DM), columns >= D stay 0
  float* const ps = vs + kChunk * DM;  // (64, 33)
  constexpr int kPer = DM / 4;         // output dims per thread: d = part + 4 i
  const int tid = threadIdx.x, r = tid >> 2, part = tid & 3;
  const Item it = item_of(p);
  const T* const qg = static_cast<const T*>(p.q) + it.q_start * p.ldq + it.h * D;
  const T* const kg = static_cast<const T*>(p.k) + it.kvh * D;
  const T* const vg = static_cast<const T*>(p.v) + it.kvh * D;

  for (int idx = tid; idx < kT * D; idx += kSimtThreads) {
    const int row = idx / D, d = idx - row * D;
    qs[row * ld + d] = row < it.qn ? to_f32(qg[row * p.ldq + d]) : 0.0f;
  }
  for (int idx = tid; idx < kChunk * DM; idx += kSimtThreads) vs[idx] = 0.0f;

  const float ninf = -__int_as_float(0x7f800000);
  const float sl2 = p.scale_log2;
  float o[kPer];
#pragma unroll
  for (int i = 0; i < kPer; ++i) o[i] = 0.0f;
  float m = ninf, l = 0.0f;  // running max (log2 domain) and this thread's part of the sum

  for (int64_t j = p.row_ptr[it.g]; j < p.row_ptr[it.g + 1]; ++j) {
    const AttnTilePair pair = p.row_pairs[j];
    const int64_t k0 = it.seq_start + static_cast<int64_t>(pair.other) * kT;
    const int kn = static_cast<int>(it.seq_end - k0 < kT ? it.seq_end - k0 : kT);
    const uint64_t word = pair.partial >= 0 ? p.masks[pair.partial + r] : ~0ull;
    for (int c0 = 0; c0 < kn; c0 += kChunk) {
      const int cn = kn - c0 < kChunk ? kn - c0 : kChunk;
      __syncthreads();  // the previous chunk's readers are done (first time: Q, V zeros)
      for (int idx = tid; idx < kChunk * D; idx += kSimtThreads) {
        const int key = idx / D, d = idx - key * D;
        const bool in = key < cn;
        const int64_t off = (k0 + c0 + key) * p.ldk + d;
        ks[key * ld + d] = in ? to_f32(kg[off]) : 0.0f;
        vs[key * DM + d] = in ? to_f32(vg[off]) : 0.0f;
      }
      __syncthreads();
      float sc[kChunk / 4];  // keys part + 4 i of this chunk
#pragma unroll
      for (int i = 0; i < kChunk / 4; ++i) sc[i] = 0.0f;
      for (int d = 0; d < D; ++d) {
        const float qv = qs[r * ld + d];
#pragma unroll
        for (int i = 0; i < kChunk / 4; ++i) sc[i] = fmaf(qv, ks[(part + 4 * i) * ld + d], sc[i]);
      }
      float mx = m;
#pragma unroll
      for (int i = 0; i < kChunk / 4; ++i) {
        const int c = part + 4 * i;
        const bool vis = c < cn && ((word >> (c0 + c)) & 1ull);
        sc[i] = vis ? sc[i] * sl2 : ninf;
        mx = fmaxf(mx, sc[i]);
      }
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float base = mx == ninf ? 0.0f : mx;
      const float alpha = exp2f(m - base);
      m = mx;
      float sum = 0.0f;
#pragma unroll
      for (int i = 0; i < kChunk / 4; ++i) {
        const float pv = exp2f(sc[i] - base);
        ps[r * (kChunk + 1) + part + 4 * i] = pv;
        sum += pv;
      }
      l = l * alpha + sum;
#pragma unroll
      for (int i = 0; i < kPer; ++i) o[i] *= alpha;
      __syncthreads();
      for (int c = 0; c < cn; ++c) {
        const float pv = ps[r * (kChunk + 1) + c];
        const float* vrow = vs + c * DM + part;
#pragma unroll
        for (int i = 0; i < kPer; ++i) o[i] = fmaf(pv, vrow[4 * i], o[i]);
      }
    }
  }

  l += __shfl_xor_sync(0xffffffffu, l, 1);
  l += __shfl_xor_sync(0xffffffffu, l, 2);
  if (r < it.qn) {
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    T* const og = static_cast<T*>(p.out) + (it.q_start + r) * p.ldq + it.h * D;
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const int d = part + 4 * i;
      if (d < D) og[d] = from_f32<T>(o[i] * inv);
    }
    if (part == 0)
      p.lse[(it.q_start + r) * p.heads + it.h] = l > 0.0f ? (m + log2f(l)) * kLn2 : ninf;
  }
}

}  // namespace npr::attn_fwd
