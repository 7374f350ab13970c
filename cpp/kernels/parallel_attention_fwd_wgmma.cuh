// Private to the Hopper forwards of one warpgroup a head
// (parallel_attention_fwd_pipelined_sm90a.cu, parallel_attention_fwd_ws_sm90a.cu): a key tile's two
// products, the same MMAs in the same order in both (so the same bits). Fragments are mma.sync's
// layouts on the warp's 16 rows (wgmma.cuh).
#pragma once

#include <cstdint>

#include "kernels/mma_bf16.cuh"
#include "kernels/parallel_attention_fwd.cuh"
#include "kernels/wgmma.cuh"

namespace npr::attn_fwd {

// O += P V over KSteps * 16 keys (one 64-key tile: 4 k-steps; two: 8): P as bf16 A fragments,
// V N-major at vt, a tile of BufRows key rows (the keys from its first row).
template <int D, int KSteps = 4, int BufRows = kT>
__device__ __forceinline__ void issue_pv(float (&o)[D / 8][4], const uint32_t (&pa)[KSteps][4],
                                         uint32_t vt) {
  static_assert(KSteps * 16 <= BufRows, "the keys lie in the tile");
  const uint64_t vd = wgmma::n_major_desc(vt, BufRows, 0);
#pragma unroll
  for (int kk = 0; kk < KSteps; ++kk) {
    const uint64_t vdk = wgmma::desc_plus(vd, wgmma::n_major_step(16 * kk));
    if constexpr (D == 128)
      wgmma::wgmma_m64n128k16_rs_tb(o, pa[kk], vdk);
    else
      wgmma::wgmma_m64n64k16_rs_tb(o, pa[kk], vdk);
  }
}

// S = Q K^T over N = 64 or 128 keys (s: N / 8 n8 fragments): Q at qt (64 rows), K at kt, a tile
// of BufRows key rows (the keys from its first row), both K-major.
template <int D, int N = kT, int BufRows = kT>
__device__ __forceinline__ void issue_qk(float (&s)[N / 8][4], uint32_t qt, uint32_t kt) {
  static_assert((N == 64 || N == 128) && N <= BufRows, "64 or 128 keys of the tile");
  const uint64_t qd = wgmma::k_major_desc(qt, kT, 0), kd = wgmma::k_major_desc(kt, BufRows, 0);
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    const uint64_t a = wgmma::desc_plus(qd, wgmma::k_major_step(kT, 16 * kk));
    const uint64_t b = wgmma::desc_plus(kd, wgmma::k_major_step(BufRows, 16 * kk));
    if constexpr (N == 128) {
      if (kk == 0)
        wgmma::wgmma_m64n128k16_ss_first(s, a, b);
      else
        wgmma::wgmma_m64n128k16_ss(s, a, b);
    } else {
      if (kk == 0)
        wgmma::wgmma_m64n64k16_ss_first(s, a, b);
      else
        wgmma::wgmma_m64n64k16_ss(s, a, b, 1);
    }
  }
}

// The probabilities of KSteps * 16 keys (fp32 scores, already exponentiated) as the P V
// product's bf16 A fragments: k-step kk holds keys 16 kk .. 16 kk + 15.
template <int KSteps = 4>
__device__ __forceinline__ void pack_probs(uint32_t (&pa)[KSteps][4],
                                           const float (&s)[2 * KSteps][4]) {
#pragma unroll
  for (int kk = 0; kk < KSteps; ++kk) {
    pa[kk][0] = pack_bf16x2(s[2 * kk][0], s[2 * kk][1]);
    pa[kk][1] = pack_bf16x2(s[2 * kk][2], s[2 * kk][3]);
    pa[kk][2] = pack_bf16x2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
    pa[kk][3] = pack_bf16x2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
  }
}

}  // namespace npr::attn_fwd
