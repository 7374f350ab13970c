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

// O += P V for one key tile: P (bf16 A fragments, 4 k-steps of 16 keys), V N-major at vt.
template <int D>
__device__ __forceinline__ void issue_pv(float (&o)[D / 8][4], const uint32_t (&pa)[4][4],
                                         uint32_t vt) {
  const uint64_t vd = wgmma::n_major_desc(vt, kT, 0);
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    const uint64_t vdk = wgmma::desc_plus(vd, wgmma::n_major_step(16 * kk));
    if constexpr (D == 128)
      wgmma::wgmma_m64n128k16_rs_tb(o, pa[kk], vdk);
    else
      wgmma::wgmma_m64n64k16_rs_tb(o, pa[kk], vdk);
  }
}

// S = Q K^T for one key tile (Q at qt, K at kt, both K-major).
template <int D>
__device__ __forceinline__ void issue_qk(float (&s)[8][4], uint32_t qt, uint32_t kt) {
  const uint64_t qd = wgmma::k_major_desc(qt, kT, 0), kd = wgmma::k_major_desc(kt, kT, 0);
  wgmma::wgmma_m64n64k16_ss_first(s, qd, kd);
#pragma unroll
  for (int kk = 1; kk < D / 16; ++kk) {
    const uint32_t step = wgmma::k_major_step(kT, 16 * kk);
    wgmma::wgmma_m64n64k16_ss(s, wgmma::desc_plus(qd, step), wgmma::desc_plus(kd, step), 1);
  }
}

// The probabilities of one key tile (fp32 scores, already exponentiated) as the P V product's
// bf16 A fragments: k-step kk holds keys 16 kk .. 16 kk + 15.
__device__ __forceinline__ void pack_probs(uint32_t (&pa)[4][4], const float (&s)[8][4]) {
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    pa[kk][0] = pack_bf16x2(s[2 * kk][0], s[2 * kk][1]);
    pa[kk][1] = pack_bf16x2(s[2 * kk][2], s[2 * kk][3]);
    pa[kk][2] = pack_bf16x2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
    pa[kk][3] = pack_bf16x2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
  }
}

}  // namespace npr::attn_fwd
