// Private to the Hopper backward kernels (parallel_attention_bwd*_sm90a.cu): one warpgroup's
// stage, shared by the one-warpgroup kernels and their two-warpgroup builds, so that both run the
// same MMAs in the same order (their dK, dV and dQ bits agree by construction). Each stage is in
// commit groups, so that the exponentials and dS are computed while an MMA is in flight:
//   dK / dV: S^T = K Q^T | dP^T = V dO^T | P^T (dP^T runs) | dV += P^T dO |
//            dS^T = P^T (dP^T - delta) (dV runs) | dK += dS^T Q
//   dQ:      S = Q K^T | dP = dO V^T | P (dP runs) | dS = P (dP - delta) | dQ += dS K
// A warpgroup is 4 warps x 16 rows of the m64 products (wgmma.cuh); every shared operand is a
// 128-byte swizzled (64, D) tile; fragments are mma.sync's layouts (g8 = lane / 4, c4 = lane % 4).
//
// The element-wise work between the MMAs is kept short: on an H100 (ncu, 8k-token rollout) the
// dK / dV kernel issued an instruction every ~5 cycles a warp with two warps a scheduler (stalls
// per instruction: fixed-latency dependency 1.69, short scoreboard 1.17) at 41% tensor-pipe use, so
// the CUDA-core instructions, not the tensor cores, set its pace. So a FULL pair of whole tiles
// (most stages) takes a branch with no mask arithmetic, the exponentials are ex2.approx.ftz as
// the forward's (attn_softmax.cuh; exp2f's denormal handling costs three more instructions each,
// for values below 2^-126 that the forward's probabilities flush to zero anyway), and the branch
// reads lse2 in pairs. (Reading delta in pairs too made ptxas spill 12 to 24 bytes.)
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/attn_softmax.cuh"
#include "kernels/mma_bf16.cuh"
#include "kernels/parallel_attention_bwd.cuh"
#include "kernels/parallel_attention_bwd_tc.cuh"
#include "kernels/wgmma.cuh"

namespace npr::attn_bwd {

// A dK / dV stage's per-query rows in shared memory and this thread's place.
struct DkdvStageRows {
  const float* lse2;     // (64) lse * log2 e of the stage's queries
  const float* delta;    // (64) rowsum(dO * O)
  const uint64_t* mask;  // (64) mask words (bit = key of the tile), read unless full
  bool full;
  int nq, nk;  // live queries of the stage, live keys of the tile
  int kr;      // first key row of this warp (16 warp)
  int g8, c4;
  float sl2;  // softmax scale * log2 e
};

// Whether a dK / dV stage needs no mask at all: a FULL pair of whole tiles. The same in every
// thread of the CTA; read from lane 0 so that ptxas knows it is the same across each warp (a
// branch it took for divergent would serialise the warpgroup MMAs around it).
__device__ __forceinline__ bool dense_stage(const DkdvStageRows& r) {
  return __shfl_sync(0xffffffffu, r.full && r.nq == kTile && r.nk == kTile, 0);
}

// dK, dV (this warp's 16 key rows, fp32) += one stage: K, V as K-major A descriptors kd0, vd0;
// Q, dO tiles at q_tile, do_tile. after_dk(pd) runs once dK's MMAs are issued, before the wait
// that ends them, with dS^T as A fragments (bf16; k-step t = queries 16 t ..): the atomic dQ
// stores it there.
template <int D, typename AfterDk>
__device__ __forceinline__ void dkdv_warpgroup_stage(float (&dka)[D / 8][4], float (&dva)[D / 8][4],
                                                     uint64_t kd0, uint64_t vd0, uint32_t q_tile,
                                                     uint32_t do_tile, const DkdvStageRows& r,
                                                     AfterDk after_dk) {
  float st[8][4], dpt[8][4];
  const uint64_t qd0 = wgmma::k_major_desc(q_tile, kTile, 0);
  const uint64_t od0 = wgmma::k_major_desc(do_tile, kTile, 0);
  wgmma::fence();
  wgmma::k_major_product<D>(st, kd0, qd0);
  wgmma::commit();
  wgmma::k_major_product<D>(dpt, vd0, od0);
  wgmma::commit();
  wgmma::wait<1>();  // S^T landed; dP^T may still run
  wgmma::fence_operands(st);
  // P^T = exp2(S^T scale log2 e - lse2[query]), masked keys and dead rows 0. A thread's
  // queries are 8 j + 2 c4 + {0, 1}: the dense branch reads their lse2 in pairs.
  if (dense_stage(r)) {  // every key sees every query: nothing to mask
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const float2 l = *reinterpret_cast<const float2*>(r.lse2 + j * 8 + 2 * r.c4);
#pragma unroll
      for (int e = 0; e < 4; ++e)
        st[j][e] = fast_exp2(fmaf(st[j][e], r.sl2, -((e & 1) ? l.y : l.x)));
    }
  } else {
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = r.kr + r.g8 + (e >> 1) * 8, qi = j * 8 + 2 * r.c4 + (e & 1);
        const bool ok = qi < r.nq && key < r.nk && (r.full || ((r.mask[qi] >> key) & 1u));
        st[j][e] = ok ? fast_exp2(fmaf(st[j][e], r.sl2, -r.lse2[qi])) : 0.0f;
      }
  }
  uint32_t pa[4][4], pd[4][4];
#pragma unroll
  for (int t = 0; t < 4; ++t) acc_to_a(pa[t], st[2 * t], st[2 * t + 1]);
  // dV += P^T dO: dO N-major (queries are the K dimension), in flight while dS^T is formed.
  const uint64_t qn0 = wgmma::n_major_desc(q_tile, kTile, 0);
  const uint64_t on0 = wgmma::n_major_desc(do_tile, kTile, 0);
  wgmma::fence_operands(dva);
  wgmma::fence_operands(pa);
  wgmma::fence();
#pragma unroll
  for (int t = 0; t < 4; ++t) {
    const uint64_t ot = wgmma::desc_plus(on0, wgmma::n_major_step(16 * t));
    if constexpr (D == 128)
      wgmma::wgmma_m64n128k16_rs_tb(dva, pa[t], ot);
    else
      wgmma::wgmma_m64n64k16_rs_tb(dva, pa[t], ot);
  }
  wgmma::commit();
  wgmma::wait<1>();  // dP^T landed (groups retire in order); dV may still run
  wgmma::fence_operands(dpt);
  // dS^T = P^T (dP^T - delta[query]) (0 where P^T is).
#pragma unroll
  for (int j = 0; j < 8; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      dpt[j][e] = st[j][e] * (dpt[j][e] - r.delta[j * 8 + 2 * r.c4 + (e & 1)]);
#pragma unroll
  for (int t = 0; t < 4; ++t) acc_to_a(pd[t], dpt[2 * t], dpt[2 * t + 1]);
  // dK += dS^T Q: Q N-major.
  wgmma::fence_operands(dka);
  wgmma::fence_operands(pd);
  wgmma::fence();
#pragma unroll
  for (int t = 0; t < 4; ++t) {
    const uint64_t qt = wgmma::desc_plus(qn0, wgmma::n_major_step(16 * t));
    if constexpr (D == 128)
      wgmma::wgmma_m64n128k16_rs_tb(dka, pd[t], qt);
    else
      wgmma::wgmma_m64n64k16_rs_tb(dka, pd[t], qt);
  }
  wgmma::commit();
  after_dk(pd);
  wgmma::wait<0>();
  wgmma::fence_operands(dka);
  wgmma::fence_operands(dva);
  wgmma::fence_operands(pa);
  wgmma::fence_operands(pd);
}

// Stores dS^T fragments (as dkdv_warpgroup_stage hands them to after_dk) into a (64 keys, 64
// queries) sw128 tile at ds (generic pointer), this warp's 16 key rows, and publishes the writes
// to the async proxy (the caller's barrier then publishes them to the CTA).
__device__ __forceinline__ void store_ds_tile(unsigned char* ds, const uint32_t (&pd)[4][4], int kr,
                                              int g8, int c4) {
#pragma unroll
  for (int t = 0; t < 4; ++t)
#pragma unroll
    for (int x = 0; x < 4; ++x) {
      const int key = kr + g8 + (x & 1) * 8, qi = 16 * t + 2 * c4 + (x >> 1) * 8;
      *reinterpret_cast<uint32_t*>(ds + wgmma::sw128_offset(kTile, key, qi)) = pd[t][x];
    }
  wgmma::fence_proxy_async_shared();
}

// Whether a dQ stage needs no mask: a FULL pair, nk and nq whole tiles (as dense_stage).
__device__ __forceinline__ bool dense_dq_stage(const AttnTilePair& pair, int nk, int nq) {
  return __shfl_sync(0xffffffffu, pair.partial < 0 && nk == kTile && nq == kTile, 0);
}

// A dQ kernel thread's two query rows (fragment rows g8, g8 + 8 of warp `warp`) of the query
// tile at qstart (nq live rows) for head h: their lse * log2 e and delta (0 past nq).
struct DqThreadRows {
  int rows[2];
  float lse2[2], delta[2];
};
__device__ __forceinline__ DqThreadRows dq_thread_rows(const float* stats, const PlanView& p,
                                                       const Dims& d, int h, int64_t qstart, int nq,
                                                       int warp, int g8) {
  DqThreadRows t;
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    t.rows[hf] = warp * 16 + g8 + hf * 8;
    const bool live = t.rows[hf] < nq;
    t.lse2[hf] = live ? stats[h * p.tokens + qstart + t.rows[hf]] : 0.0f;
    t.delta[hf] = live ? stats[(d.heads + h) * p.tokens + qstart + t.rows[hf]] : 0.0f;
  }
  return t;
}

// dQ (this warp's 16 query rows, fp32) += one stage: issue_s(sc, kd0) issues S = Q K^T into sc
// (Q from shared memory or registers; K's K-major descriptor kd0), dO as the K-major A
// descriptor od0, K and V tiles at k_tile, v_tile; mw, lse2, delta: this thread's two query
// rows' mask words, lse * log2 e and delta; nk: the key tile's live rows; dense: the stage needs
// no mask (a FULL pair of whole tiles; the same across the CTA, and known to ptxas to be the same
// across each warp, as dense_stage makes it).
template <int D, typename IssueS>
__device__ __forceinline__ void dq_warpgroup_stage(float (&dqa)[D / 8][4], IssueS issue_s,
                                                   uint64_t od0, uint32_t k_tile, uint32_t v_tile,
                                                   const uint64_t (&mw)[2], int nk,
                                                   const float (&lse2)[2], const float (&delta)[2],
                                                   int c4, float sl2, bool dense) {
  float sc[8][4], dp[8][4];
  const uint64_t kd0 = wgmma::k_major_desc(k_tile, kTile, 0);
  const uint64_t vd0 = wgmma::k_major_desc(v_tile, kTile, 0);
  wgmma::fence();
  issue_s(sc, kd0);
  wgmma::commit();
  wgmma::k_major_product<D>(dp, od0, vd0);
  wgmma::commit();
  wgmma::wait<1>();  // S landed; dP may still run
  wgmma::fence_operands(sc);
  // P = exp2(S scale log2 e - lse2): masked keys and dead rows give 0.
  if (dense) {
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) sc[j][e] = fast_exp2(fmaf(sc[j][e], sl2, -lse2[e >> 1]));
  } else {
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int hf = e >> 1, key = j * 8 + 2 * c4 + (e & 1);
        const bool ok = key < nk && ((mw[hf] >> key) & 1u);
        sc[j][e] = ok ? fast_exp2(fmaf(sc[j][e], sl2, -lse2[hf])) : 0.0f;
      }
  }
  wgmma::wait<0>();
  wgmma::fence_operands(dp);
  // dS = P (dP - delta) (0 where P is), as A fragments (bf16), k-step t = keys 16 t ..
#pragma unroll
  for (int j = 0; j < 8; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) dp[j][e] = sc[j][e] * (dp[j][e] - delta[e >> 1]);
  uint32_t da[4][4];
#pragma unroll
  for (int t = 0; t < 4; ++t) acc_to_a(da[t], dp[2 * t], dp[2 * t + 1]);
  // dQ += dS K: K N-major (keys are the K dimension, head dims the N one).
  const uint64_t kn0 = wgmma::n_major_desc(k_tile, kTile, 0);
  wgmma::fence_operands(dqa);
  wgmma::fence_operands(da);
  wgmma::fence();
#pragma unroll
  for (int t = 0; t < 4; ++t) {
    const uint64_t kdt = wgmma::desc_plus(kn0, wgmma::n_major_step(16 * t));
    if constexpr (D == 128)
      wgmma::wgmma_m64n128k16_rs_tb(dqa, da[t], kdt);
    else
      wgmma::wgmma_m64n64k16_rs_tb(dqa, da[t], kdt);
  }
  wgmma::commit();
  wgmma::wait<0>();
  wgmma::fence_operands(dqa);
  wgmma::fence_operands(da);
}

}  // namespace npr::attn_bwd
