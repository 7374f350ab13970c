// Private to parallel_attention_backward.cu (and the kernel emulator's tests): the tensor-core
// (mma.sync) kernels of the fused attention backward, bf16 with head_dim 64 or 128: the dK / dV
// kernel (with the atomic dQ of the non-deterministic mode as an option, and the pass that rounds
// its fp32 sums into dq), and the deterministic dQ kernel. The file's header comment says how
// they divide the work.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "core/dynamic_shared.cuh"
#include "kernels/attn_softmax.cuh"
#include "kernels/mma_bf16.cuh"
#include "kernels/parallel_attention_bwd.cuh"
#include "kernels/parallel_attention_bwd_tc.cuh"

namespace npr::attn_bwd {

// ---- (2) dK, dV on tensor cores ---------------------------------------------------------------

// Queries per score chunk in the dK/dV kernel: 64 (one K / V A fragment per 8 mma of S^T, dP^T)
// where ptxas fits it in 255 registers without spilling (sm_90), else 32.
#if (defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900) || defined(NPR_EMU)
constexpr int kKvQChunk = 64;
#else
constexpr int kKvQChunk = 32;
#endif

// Atomic dQ for one score chunk of the dK/dV kernel: queries [qc, qc + kKvQChunk) of the stage,
// whose dS^T this warp holds for its 16 keys (dst: accumulator fragments as in the caller).
// Once every warp is past the chunk's dV / dK products, the chunk's dO rows are dead: dS goes
// there as bf16 (query, key) rows, rounded as the dQ kernel rounds it. Then dQ rows of the chunk
// = dS (queries, 64 keys) K (64 keys, D), each warp a block of 16 queries and D / (4 / blocks)
// dims, added to acc (row stride ld, fp32, rows >= nq skipped) by red.add. The caller's
// end-of-stage barrier keeps the next prefetch off these rows until every warp has read them.
template <int D>
__device__ __forceinline__ void add_dq_chunk(float* __restrict__ acc, int64_t ld, bf16_t* ds,
                                             const bf16_t* ks, const float (*dst)[4], int qc,
                                             int nq) {
  using C = Tc<D>;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int gr = lane >> 2, gc = (lane & 3) * 2;
  __syncthreads();  // every warp has read the chunk's dO rows
#pragma unroll
  for (int j = 0; j < kKvQChunk / 8; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      ds[(qc + j * 8 + gc + (e & 1)) * C::kStride + warp * 16 + gr + (e >> 1) * 8] =
          __float2bfloat16_rn(dst[j][e]);
  __syncthreads();  // dS of the chunk complete

  constexpr int kBlocks = kKvQChunk / 16;     // 16-query blocks in the chunk
  constexpr int kDims = D / (4 / kBlocks);    // dims a warp sums
  const int q0 = qc + (warp % kBlocks) * 16;  // this warp's first query
  const int d0 = (warp / kBlocks) * kDims;    // and first dim
  if (q0 >= nq) return;
#pragma unroll 1
  for (int nd = d0; nd < d0 + kDims; nd += 32) {
    float c[4][4];  // (16 queries, 32 dims): n8 tiles nd, +8, +16, +24
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) c[j][e] = 0.0f;
#pragma unroll
    for (int t = 0; t < kTile / 16; ++t) {
      uint32_t a[4], b[4];
      ldmatrix_x4(a, ds + a_off(lane, q0, 16 * t, C::kStride));
      ldmatrix_x4_trans(b, ks + bt_off(lane, 16 * t, nd, C::kStride));
      mma2(c[0], c[1], a, b);
      ldmatrix_x4_trans(b, ks + bt_off(lane, 16 * t, nd + 16, C::kStride));
      mma2(c[2], c[3], a, b);
    }
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int r = q0 + gr + half * 8;
      if (r >= nq) continue;
      float* o = acc + r * ld + nd + gc;
#pragma unroll
      for (int j = 0; j < 4; ++j) red_add2(o + j * 8, c[j][2 * half], c[j][2 * half + 1]);
    }
  }
}

template <int D>
constexpr int dkdv_tc_smem() {
  // K, V (64, D); Q, dO (2 buffers each); lse2, delta (2 x 64 fp32 each); masks (2 x 64 u64).
  return 6 * Tc<D>::kMatBytes + 2 * 2 * kTile * 4 + 2 * kTile * 8;
}

// kAtomicDq: the kernel also adds each stage's dQ rows (dS K, unscaled) into dq_acc (tokens,
// heads, D) fp32 with atomics, and the dQ kernel is not run: 5 GEMMs a tile pair instead of 7,
// in an order that changes from run to run (ctx.deterministic off).
template <int D, bool kAtomicDq>
__global__ void __launch_bounds__(kTcThreads)
    dkdv_tc_kernel(PlanView p, Dims d, bf16_t* __restrict__ dk, bf16_t* __restrict__ dv,
                   float* __restrict__ dq_acc, const bf16_t* __restrict__ q,
                   const bf16_t* __restrict__ k, const bf16_t* __restrict__ v,
                   const bf16_t* __restrict__ dout, const float* __restrict__ stats) {
  using C = Tc<D>;
  NPR_DYNAMIC_SHARED(tc_smem);  // named apart from the SIMT kernels' `smem`
  unsigned char* const smem = tc_smem;
  bf16_t* ks = reinterpret_cast<bf16_t*>(smem);                // (64, D + 8) K of the key tile
  bf16_t* vs = ks + C::kMat;                                   // (64, D + 8) V
  bf16_t* qs = vs + C::kMat;                                   // (2, 64, D + 8) Q of the stage
  bf16_t* dos = qs + 2 * C::kMat;                              // (2, 64, D + 8) dO of the stage
  float* lse_s = reinterpret_cast<float*>(dos + 2 * C::kMat);  // (2, 64) lse2
  float* del_s = lse_s + 2 * kTile;                            // (2, 64) delta
  uint64_t* mask_s = reinterpret_cast<uint64_t*>(del_s + 2 * kTile);  // (2, 64) mask words

  const KeyTile kt = key_tile_of(p, d);
  const int kvh = kt.kvh, nk = kt.nk;
  const SeqSpan sq = kt.sq;
  const int64_t kstart = kt.kstart, c0 = kt.c0, stages = kt.stages;
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int64_t ldk = static_cast<int64_t>(d.kv_heads) * D, ldq = static_cast<int64_t>(d.heads) * D;

  load_tile_async<D>(ks, k + kstart * ldk + kvh * D, ldk, nk);
  load_tile_async<D>(vs, v + kstart * ldk + kvh * D, ldk, nk);
  auto load_stage = [&](int64_t s, int buf) {
    const AttnTilePair pair = p.col_pairs[c0 + s / d.group];
    const int h = kvh * d.group + static_cast<int>(s % d.group);
    const int64_t qstart = tile_start(sq, pair.other);
    const int nq = tile_len(sq, qstart);
    load_tile_async<D>(qs + buf * C::kMat, q + qstart * ldq + h * D, ldq, nq);
    load_tile_async<D>(dos + buf * C::kMat, dout + qstart * ldq + h * D, ldq, nq);
    load_stage_rows(lse_s, del_s, mask_s, buf, stats, p, d, h, qstart, nq, pair.partial, tid);
  };

  float dka[D / 8][4], dva[D / 8][4];  // this warp's 16 key rows of dK, dV (fp32)
#pragma unroll
  for (int j = 0; j < D / 8; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) dka[j][e] = dva[j][e] = 0.0f;

  const int kr = warp * 16;                       // first key row of this warp
  const int gr = lane >> 2, gc = (lane & 3) * 2;  // fragment row, column pair
  if (stages > 0) load_stage(0, 0);
  cp_async_commit();
  for (int64_t s = 0; s < stages; ++s) {
    if (s + 1 < stages) load_stage(s + 1, static_cast<int>((s + 1) & 1));
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const int buf = static_cast<int>(s & 1);
    const AttnTilePair pair = p.col_pairs[c0 + s / d.group];
    const bool full = pair.partial < 0;
    const int nq = tile_len(sq, tile_start(sq, pair.other));
    const bf16_t* Q = qs + buf * C::kMat;
    bf16_t* dO = dos + buf * C::kMat;  // written only as dS (atomic dQ), once its rows are read
    const float* L = lse_s + buf * kTile;
    const float* Dl = del_s + buf * kTile;
    const uint64_t* M = mask_s + buf * kTile;
#pragma unroll 1
    for (int qc = 0; qc < kTile; qc += kKvQChunk) {
      if (qc >= nq) break;
      // S^T = K Q^T and dP^T = V dO^T: (16 keys, kKvQChunk queries) per warp.
      float st[kKvQChunk / 8][4], dpt[kKvQChunk / 8][4];
#pragma unroll
      for (int j = 0; j < kKvQChunk / 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) st[j][e] = dpt[j][e] = 0.0f;
#pragma unroll
      for (int kd = 0; kd < D; kd += 16) {
        uint32_t a[4], b[4];
        ldmatrix_x4(a, ks + a_off(lane, kr, kd, C::kStride));
#pragma unroll
        for (int n = 0; n < kKvQChunk; n += 16) {
          ldmatrix_x4(b, Q + bn_off(lane, qc + n, kd, C::kStride));
          mma2(st[n / 8], st[n / 8 + 1], a, b);
        }
        ldmatrix_x4(a, vs + a_off(lane, kr, kd, C::kStride));
#pragma unroll
        for (int n = 0; n < kKvQChunk; n += 16) {
          ldmatrix_x4(b, dO + bn_off(lane, qc + n, kd, C::kStride));
          mma2(dpt[n / 8], dpt[n / 8 + 1], a, b);
        }
      }
      // P^T = exp2(S^T scale log2 e - lse2[query]), dS^T = P^T (dP^T - delta[query]).
#pragma unroll
      for (int j = 0; j < kKvQChunk / 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = kr + gr + (e >> 1) * 8, qi = qc + j * 8 + gc + (e & 1);
          const bool ok = qi < nq && key < nk && (full || ((M[qi] >> key) & 1u));
          const float pv = ok ? fast_exp2(fmaf(st[j][e], d.sl2, -L[qi])) : 0.0f;
          dpt[j][e] = ok ? pv * (dpt[j][e] - Dl[qi]) : 0.0f;
          st[j][e] = pv;
        }
        // dV += P^T dO, dK += dS^T Q over the chunk's queries (k16 steps).
#pragma unroll
      for (int t = 0; t < kKvQChunk / 16; ++t) {
        uint32_t ap[4], ads[4];
        acc_to_a(ap, st[2 * t], st[2 * t + 1]);
        acc_to_a(ads, dpt[2 * t], dpt[2 * t + 1]);
#pragma unroll
        for (int nd = 0; nd < D; nd += 16) {
          uint32_t b[4];
          ldmatrix_x4_trans(b, dO + bt_off(lane, qc + 16 * t, nd, C::kStride));
          mma2(dva[nd / 8], dva[nd / 8 + 1], ap, b);
          ldmatrix_x4_trans(b, Q + bt_off(lane, qc + 16 * t, nd, C::kStride));
          mma2(dka[nd / 8], dka[nd / 8 + 1], ads, b);
        }
      }
      if constexpr (kAtomicDq) {
        const int h = kvh * d.group + static_cast<int>(s % d.group);
        add_dq_chunk<D>(dq_acc + tile_start(sq, pair.other) * ldq + h * D, ldq, dO, ks, dpt, qc,
                        nq);
      }
    }
    __syncthreads();  // buffer `buf` is refilled by the next iteration's prefetch
  }
  cp_async_wait<0>();
  store_acc<D>(dk + kstart * ldk + kvh * D, ldk, dka, kr, nk, d.scale);
  store_acc<D>(dv + kstart * ldk + kvh * D, ldk, dva, kr, nk, 1.0f);
}

// ---- (3) dQ on tensor cores -------------------------------------------------------------------

constexpr int kQKChunk = 32;  // keys per score chunk in the dQ kernel

template <int D>
constexpr int dq_tc_smem() {
  return 6 * Tc<D>::kMatBytes;  // Q, dO (64, D); K, V (2 buffers each)
}

template <int D>
__global__ void __launch_bounds__(kTcThreads)
    dq_tc_kernel(PlanView p, Dims d, bf16_t* __restrict__ dq, const bf16_t* __restrict__ q,
                 const bf16_t* __restrict__ k, const bf16_t* __restrict__ v,
                 const bf16_t* __restrict__ dout, const float* __restrict__ stats) {
  using C = Tc<D>;
  NPR_DYNAMIC_SHARED(tc_smem);  // named apart from the SIMT kernels' `smem`
  unsigned char* const smem = tc_smem;
  bf16_t* qs = reinterpret_cast<bf16_t*>(smem);  // (64, D + 8) Q of the query tile
  bf16_t* dos = qs + C::kMat;                    // (64, D + 8) dO
  bf16_t* ks = dos + C::kMat;                    // (2, 64, D + 8) K of the stage
  bf16_t* vs = ks + 2 * C::kMat;                 // (2, 64, D + 8) V of the stage

  // Query tiles late in a sequence have the longest row lists: launch them first.
  const int64_t g = p.tiles - 1 - blockIdx.x / d.heads;
  const int h = static_cast<int>(blockIdx.x % d.heads), kvh = h / d.group;
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const SeqSpan sq = seq_of(p, g);
  const int64_t qstart = tile_start(sq, g - sq.tile0);
  const int nq = tile_len(sq, qstart);
  const int64_t ldk = static_cast<int64_t>(d.kv_heads) * D, ldq = static_cast<int64_t>(d.heads) * D;
  const int64_t r0 = p.row_ptr[g], stages = p.row_ptr[g + 1] - r0;

  load_tile_async<D>(qs, q + qstart * ldq + h * D, ldq, nq);
  load_tile_async<D>(dos, dout + qstart * ldq + h * D, ldq, nq);
  auto load_stage = [&](int64_t s, int buf) {
    const int64_t kst = tile_start(sq, p.row_pairs[r0 + s].other);
    const int n = tile_len(sq, kst);
    load_tile_async<D>(ks + buf * C::kMat, k + kst * ldk + kvh * D, ldk, n);
    load_tile_async<D>(vs + buf * C::kMat, v + kst * ldk + kvh * D, ldk, n);
  };

  const int qr = warp * 16;                       // first query row of this warp
  const int gr = lane >> 2, gc = (lane & 3) * 2;  // fragment row, column pair
  int rows[2];
  float lse2[2], delta[2];
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    rows[hf] = qr + gr + hf * 8;
    const bool live = rows[hf] < nq;
    lse2[hf] = live ? stats[h * p.tokens + qstart + rows[hf]] : 0.0f;
    delta[hf] = live ? stats[(d.heads + h) * p.tokens + qstart + rows[hf]] : 0.0f;
  }
  float dqa[D / 8][4];  // this warp's 16 query rows of dQ (fp32)
#pragma unroll
  for (int j = 0; j < D / 8; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) dqa[j][e] = 0.0f;
  uint32_t qf[D / 16][4], of[D / 16][4];  // A fragments of this warp's Q and dO rows

  if (stages > 0) load_stage(0, 0);
  cp_async_commit();
  for (int64_t s = 0; s < stages; ++s) {
    uint64_t mw[2];
    const AttnTilePair pair = p.row_pairs[r0 + s];
    const int nk = dq_stage_masks(p, sq, pair, rows, nq, mw);
    const bool dense = pair.partial < 0 && nk == kTile && nq == kTile;  // nothing to mask
    // Stage s (and Q, dO on the first pass) landed; every warp is past stage s - 1, whose
    // buffer stage s + 1's loads take: one barrier a stage.
    cp_async_wait<0>();
    __syncthreads();
    if (s + 1 < stages) load_stage(s + 1, static_cast<int>((s + 1) & 1));
    cp_async_commit();
    if (s == 0) {
#pragma unroll
      for (int t = 0; t < D / 16; ++t) {
        ldmatrix_x4(qf[t], qs + a_off(lane, qr, 16 * t, C::kStride));
        ldmatrix_x4(of[t], dos + a_off(lane, qr, 16 * t, C::kStride));
      }
    }
    const int buf = static_cast<int>(s & 1);
    const bf16_t* K = ks + buf * C::kMat;
    const bf16_t* V = vs + buf * C::kMat;
#pragma unroll 1
    for (int kc = 0; kc < kTile; kc += kQKChunk) {
      if (kc >= nk) break;
      // S = Q K^T and dP = dO V^T: (16 queries, kQKChunk keys) per warp.
      float sc[kQKChunk / 8][4], dp[kQKChunk / 8][4];
#pragma unroll
      for (int j = 0; j < kQKChunk / 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) sc[j][e] = dp[j][e] = 0.0f;
#pragma unroll
      for (int t = 0; t < D / 16; ++t) {
#pragma unroll
        for (int n = 0; n < kQKChunk; n += 16) {
          uint32_t b[4];
          ldmatrix_x4(b, K + bn_off(lane, kc + n, 16 * t, C::kStride));
          mma2(sc[n / 8], sc[n / 8 + 1], qf[t], b);
          ldmatrix_x4(b, V + bn_off(lane, kc + n, 16 * t, C::kStride));
          mma2(dp[n / 8], dp[n / 8 + 1], of[t], b);
        }
      }
      if (dense) {
#pragma unroll
        for (int j = 0; j < kQKChunk / 8; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const float pv = fast_exp2(fmaf(sc[j][e], d.sl2, -lse2[e >> 1]));
            dp[j][e] = pv * (dp[j][e] - delta[e >> 1]);
          }
      } else {
#pragma unroll
        for (int j = 0; j < kQKChunk / 8; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int hf = e >> 1, key = kc + j * 8 + gc + (e & 1);
            const bool ok = key < nk && ((mw[hf] >> key) & 1u);
            const float pv = ok ? fast_exp2(fmaf(sc[j][e], d.sl2, -lse2[hf])) : 0.0f;
            dp[j][e] = ok ? pv * (dp[j][e] - delta[hf]) : 0.0f;
          }
      }
      // dQ += dS K over the chunk's keys (k16 steps).
#pragma unroll
      for (int t = 0; t < kQKChunk / 16; ++t) {
        uint32_t a[4];
        acc_to_a(a, dp[2 * t], dp[2 * t + 1]);
#pragma unroll
        for (int nd = 0; nd < D; nd += 16) {
          uint32_t b[4];
          ldmatrix_x4_trans(b, K + bt_off(lane, kc + 16 * t, nd, C::kStride));
          mma2(dqa[nd / 8], dqa[nd / 8 + 1], a, b);
        }
      }
    }
  }
  cp_async_wait<0>();
  store_acc<D>(dq + qstart * ldq + h * D, ldq, dqa, qr, nq, d.scale);
}

// ---- (3') atomic dQ: fp32 sums to bf16 ---------------------------------------------------------

// dq[i] = bf16(acc[i] * scale), i < n (n even; acc 8-byte aligned); launched on
// dq_from_acc_blocks(n) blocks of kDqFromAccThreads.
constexpr int kDqFromAccThreads = 256;
inline unsigned dq_from_acc_blocks(int64_t n) {
  const int64_t blocks = (n / 2 + kDqFromAccThreads - 1) / kDqFromAccThreads;
  return static_cast<unsigned>(blocks < 65535 ? blocks : 65535);
}

__global__ void __launch_bounds__(kDqFromAccThreads)
    dq_from_acc_kernel(bf16_t* __restrict__ dq, const float* __restrict__ acc, int64_t n,
                       float scale) {
  for (int64_t i = 2 * (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x); i < n;
       i += 2 * static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float2 a = *reinterpret_cast<const float2*>(acc + i);
    *reinterpret_cast<uint32_t*>(dq + i) = pack_bf16x2(a.x * scale, a.y * scale);
  }
}

}  // namespace npr::attn_bwd
