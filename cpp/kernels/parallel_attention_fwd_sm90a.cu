// attention_forward_wgmma (parallel_attention_wgmma.h): the fused block-sparse attention forward
// on Hopper's warpgroup MMA, compiled for sm_90a only (CMakeLists.txt builds *_sm90a.cu files
// for that one architecture, where the toolkit and the architecture list allow).
//
// The decomposition is attn_fwd_mma2's (parallel_attention_fwd_pair.cuh): one CTA per (query
// tile, pair of query heads of one kv head), items last tile first, the query tile's row list
// walked in order, FULL tiles without mask arithmetic, PARTIAL ones with one 64-bit word per
// query row, SKIP tiles never loaded. Two warpgroups, one a head, share each K / V tile; each
// warpgroup keeps its head's 64 query rows and computes, per key tile:
//   S (64 x 64) = Q K^T    wgmma m64n64k16, Q and K from shared memory (K-major), D / 16 steps;
//   online softmax on S    the same step as the mma.sync kernels (same fragment layout);
//   O (64 x D) += P V      wgmma m64nDk16, P from registers (bf16), V N-major, 4 steps.
// Tiles are stored 128-byte swizzled (wgmma.cuh) by cp.async with zero fill past a tile's
// end, K / V double-buffered, published to the async proxy by a proxy fence before the barrier.
// Same arithmetic as the mma.sync kernels (fp32 scores, bf16 P, fp32 accumulation, lse in
// natural log); sums may associate differently inside the tensor core, so results agree within
// fp32 rounding of the accumulations, not bit for bit. The one-CTA-an-SM build that overlaps a
// tile's softmax with the MMAs inside each warpgroup is parallel_attention_fwd_pipelined_sm90a.cu.
// Not here: TMA, warp specialisation.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <string>

#include "core/cuda_check.cuh"
#include "core/cuda_launch.cuh"
#include "core/dynamic_shared.cuh"
#include "kernels/attn_softmax.cuh"
#include "kernels/mma_bf16.cuh"
#include "kernels/parallel_attention_fwd.cuh"
#include "kernels/parallel_attention_wgmma.h"
#include "kernels/wgmma.cuh"

namespace npr {

namespace {

using attn_fwd::FwdParams;
using attn_fwd::kT;
using bf16_t = __nv_bfloat16;

constexpr int kThreads = 256;  // two warpgroups: heads h0 and h0 + 1

template <int D>
struct WgSmem {
  static constexpr int kTileBytes = kT * D * 2;  // one (64, D) sw128 tile
  // Q0 | Q1 | K0 | V0 | K1 | V1, each 1024-byte aligned; + 1 KB to align the dynamic base.
  static constexpr int kBytes = 6 * kTileBytes + 1024;
  static_assert(kTileBytes % 1024 == 0, "sw128 tiles keep 1024-byte alignment");
};

// Built for two CTAs an SM (128 registers a thread, ~130 bytes spilled at D 128), so one CTA's
// softmax runs while the other's MMAs do.
template <int D>
__global__ void __launch_bounds__(kThreads, 2) attn_fwd_wgmma(FwdParams p) {
#if NPR_SM90A_DEVICE_CODE
  using S = WgSmem<D>;
  constexpr int KD = D / 16;  // k-steps of Q K^T
  constexpr int ND = D / 8;   // n8 fragments of the output
  NPR_DYNAMIC_SHARED(smem_raw);
  const uint32_t raw = static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw));
  const uint32_t sbase = (raw + 1023u) & ~1023u;
  const auto q_tile = [&](int hh) { return sbase + hh * S::kTileBytes; };
  const auto k_tile = [&](int b) { return sbase + (2 + 2 * b) * S::kTileBytes; };
  const auto v_tile = [&](int b) { return sbase + (3 + 2 * b) * S::kTileBytes; };

  const int tid = threadIdx.x, lane = tid & 31;
  const int hh = tid >> 7;          // warpgroup = head of the pair
  const int warp = (tid >> 5) & 3;  // warp within the warpgroup: rows 16 warp ..
  const int g8 = lane >> 2, c4 = lane & 3;
  const attn_fwd::PairItem it = attn_fwd::pair_item_of(p);
  const attn_fwd::PairInputs in = attn_fwd::pair_inputs_of<D>(p, it);
  const AttnTilePair* const rp = in.pairs;
  const int npairs = in.npairs;

  const auto load_kv = [&](int j, int b) {
    const int64_t ks = static_cast<int64_t>(rp[j].other) * kT;
    const int64_t kn64 = in.seq_n - ks;
    const int kn = static_cast<int>(kn64 < kT ? kn64 : kT);
    wgmma::load_tile_sw128<kT, D, kThreads>(k_tile(b), in.k + ks * p.ldk, p.ldk, kn, tid);
    wgmma::load_tile_sw128<kT, D, kThreads>(v_tile(b), in.v + ks * p.ldk, p.ldk, kn, tid);
  };

  wgmma::load_tile_sw128<kT, D, kThreads>(q_tile(0), in.q, p.ldq, it.qn, tid);
  wgmma::load_tile_sw128<kT, D, kThreads>(q_tile(1), in.q + D, p.ldq, it.qn, tid);
  cp_async_commit();
  if (npairs > 0) load_kv(0, 0);
  cp_async_commit();

  float o[ND][4];  // this warp's rows (g8, g8 + 8) x dims (8 n + 2 c4, + 1) of head h0 + hh
#pragma unroll
  for (int n = 0; n < ND; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  const float ninf = -__int_as_float(0x7f800000);
  float m0 = ninf, m1 = ninf, l0 = 0.0f, l1 = 0.0f;
  const float sl2 = p.scale_log2;
  const int r0 = warp * 16 + g8;

  for (int j = 0; j < npairs; ++j) {
    const int b = j & 1;
    if (j + 1 < npairs) load_kv(j + 1, b ^ 1);
    cp_async_commit();
    cp_async_wait<1>();                 // tile j (and Q, on the first pass) landed
    wgmma::fence_proxy_async_shared();  // ... and is visible to wgmma's reads
    __syncthreads();

    const int32_t partial = rp[j].partial;
    uint64_t w0 = ~0ull, w1 = ~0ull;
    if (partial >= 0) {
      w0 = p.masks[partial + r0];
      w1 = p.masks[partial + r0 + 8];
    }

    // S = Q K^T.
    float s[8][4];  // raw scores, then probabilities: rows as o, keys (8 n + 2 c4, + 1)
    const uint64_t kd = wgmma::k_major_desc(k_tile(b), kT, 0);
    const uint64_t qd = wgmma::k_major_desc(q_tile(hh), kT, 0);
    wgmma::fence();
    wgmma::wgmma_m64n64k16_ss_first(s, qd, kd);
#pragma unroll
    for (int kk = 1; kk < KD; ++kk) {
      const uint32_t step = wgmma::k_major_step(kT, 16 * kk);
      wgmma::wgmma_m64n64k16_ss(s, wgmma::desc_plus(qd, step), wgmma::desc_plus(kd, step), 1);
    }
    wgmma::commit();
    wgmma::wait<0>();
    wgmma::fence_operands(s);

    if (partial >= 0) attn_fwd::mask_scores(s, w0, w1, c4);
    online_softmax_step(s, o, m0, m1, l0, l1, sl2);

    // O += P V: P (bf16) straight from the score fragments.
    uint32_t pa[4][4];
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      pa[kk][0] = pack_bf16x2(s[2 * kk][0], s[2 * kk][1]);
      pa[kk][1] = pack_bf16x2(s[2 * kk][2], s[2 * kk][3]);
      pa[kk][2] = pack_bf16x2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      pa[kk][3] = pack_bf16x2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
    }
    const uint64_t vd = wgmma::n_major_desc(v_tile(b), kT, 0);
    wgmma::fence_operands(o);
    wgmma::fence_operands(pa);
    wgmma::fence();
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      const uint64_t vdk = wgmma::desc_plus(vd, wgmma::n_major_step(16 * kk));
      if constexpr (D == 128)
        wgmma::wgmma_m64n128k16_rs_tb(o, pa[kk], vdk);
      else
        wgmma::wgmma_m64n64k16_rs_tb(o, pa[kk], vdk);
    }
    wgmma::commit();
    wgmma::wait<0>();
    wgmma::fence_operands(o);
    wgmma::fence_operands(pa);
    __syncthreads();  // buffer b is refilled by the next iteration's prefetch
  }
  cp_async_wait<0>();

  attn_fwd::store_head_rows<D>(p, o, m0, m1, l0, l1, it.q_start, it.h0 + hh, r0, it.qn, c4);
#else
  __trap();  // built for another architecture: the host never launches it there
#endif
}

}  // namespace

Status attention_forward_wgmma(void* stream, const attn_fwd::FwdParams& p, int64_t pair_blocks,
                               int variant) {
  if (variant < 1 || variant > 11)
    return Status::invalid("attention_forward_wgmma: variant " + std::to_string(variant) +
                           " (1 to 11)");
  if (p.head_dim != 64 && p.head_dim != 128)
    return Status::invalid("attention_forward_wgmma: head_dim " + std::to_string(p.head_dim) +
                           " (64 or 128 only)");
  if (variant >= 10)  // warp-specialised, 128 keys a step; 11 with the ping-pong
    return attention_forward_wgmma_ws128(stream, p, pair_blocks, variant == 11);
  if (variant == 9)  // variant 5 with tensor-map copies
    return attention_forward_wgmma_pipelined(stream, p, pair_blocks, 1, false, true, true);
  if (variant >= 7)  // the warp-specialised TMA kernel, 8 with the ping-pong
    return attention_forward_wgmma_ws(stream, p, pair_blocks, variant == 8);
  if (variant != 2)  // 1: one ahead; 3: two; 4: two, Q in registers; 5, 6: 1 and 4 ping-pong
    return attention_forward_wgmma_pipelined(stream, p, pair_blocks,
                                             variant == 1 || variant == 5 ? 1 : 2,
                                             variant == 4 || variant == 6, variant >= 5);
  // Two CTAs of WgSmem bytes an SM: the launch takes the maximum shared carveout.
  const char* what = "attention_forward_wgmma (sm_90a kernel)";
  const auto st = static_cast<cudaStream_t>(stream);
  const auto grid = static_cast<unsigned>(pair_blocks);
  if (p.head_dim == 64)
    return launch_with_shared(attn_fwd_wgmma<64>, grid, kThreads, WgSmem<64>::kBytes, st, what, p);
  return launch_with_shared(attn_fwd_wgmma<128>, grid, kThreads, WgSmem<128>::kBytes, st, what, p);
}

bool attention_wgmma_compiled() {
  return true;
}

}  // namespace npr
