// attention_forward_wgmma_ws128 (parallel_attention_wgmma.h): the warp-specialised Hopper forward
// of parallel_attention_fwd_ws_sm90a.cu over 128 keys a step, FlashAttention-3's block shape for
// head dim 128 (sm_90a only).
//
// Same CTA as the 64-key kernel (a query tile and a pair of query heads, one consumer warpgroup
// a head, K/V and Q by tensor-map copies into an mbarrier ring), but each step takes two tiles
// of the query tile's row list, which need not be adjacent key tiles: the producer lands the
// first in rows 0..63 and the second in rows 64..127 of one 128-row K buffer and one V buffer,
// and a consumer issues S = Q K^T as m64n128 MMAs and P V over 8 k-steps, then runs one
// online-softmax step over 128 scores a row. So a row's per-step work that is not MMA (the
// barrier waits, the max's shuffles, the O rescale, the commits) comes half as often as in the
// 64-key kernel, and the MMAs are twice as wide. A row list of odd length starts with a one-tile
// step (an m64n64 S and 4 k-steps of P V on the buffers' first halves, nothing read from their
// second). The sums run in another order than the 64-key kernels' (the running max moves per
// 128 keys), so its bits are its own; it is deterministic.
//
// With kPingPong (variant 11) the two consumer warpgroups take turns issuing their MMAs, as the
// 64-key kernel's variant 8 does (FlashAttention-3's ping-pong: one's softmax under the other's
// MMAs); the same sums, so the same bits as without.
//
// Its registers: S over 128 keys (64 a thread), O (64 at head dim 128) and P (32) do not fit the
// 168 a thread a 288-thread CTA leaves (a build of that shape spilled), so the producer is a
// whole warpgroup (384 threads) that gives its registers to the consumers (warpgroup_regs.cuh):
// 24 for the producer, 240 for each consumer.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "core/cuda_check.cuh"
#include "core/cuda_launch.cuh"
#include "core/dynamic_shared.cuh"
#include "kernels/attn_softmax.cuh"
#include "kernels/bulk_load.cuh"
#include "kernels/parallel_attention_fwd.cuh"
#include "kernels/parallel_attention_fwd_wgmma.cuh"
#include "kernels/parallel_attention_fwd_ws.cuh"
#include "kernels/parallel_attention_wgmma.h"
#include "kernels/tma_ring.cuh"
#include "kernels/warpgroup_regs.cuh"
#include "kernels/warpgroup_turns.cuh"
#include "kernels/wgmma.cuh"

namespace npr {

namespace {

using attn_fwd::FwdParams;
using attn_fwd::kT;
using bf16_t = __nv_bfloat16;

constexpr int kKeys = 2 * kT;      // keys a step: two plan tiles
constexpr int kThreads = 384;      // the producer warpgroup, then two consumer ones
constexpr int kConsumerWarps = 8;  // warps 4..11: heads h0 (4..7) and h0 + 1 (8..11)
constexpr int kConsumers = 32 * kConsumerWarps;
constexpr int kProducerRegs = 24;   // registers a thread after the hand-over: 24 + 2 x 240
constexpr int kConsumerRegs = 240;  // = 3 x 168, the CTA's share at one CTA an SM
static_assert(kProducerRegs + 2 * kConsumerRegs == 3 * 168, "the hand-over keeps the CTA's share");

using attn_fwd::WsParams;

template <int D, int kStages>
struct Ws128Smem {
  static constexpr int kQBytes = kT * D * 2;       // one head's (64, D) sw128 Q tile
  static constexpr int kBufBytes = kKeys * D * 2;  // a (128, D) sw128 K or V buffer
  static constexpr int kHalfBytes = kT * 128;      // rows 64.. of a buffer's column block
  // Q0 | Q1 | (K, V) x kStages, each 1024-byte aligned | mbarriers: Q, full x kStages, empty x
  // kStages; + 1 KB to align the dynamic base.
  static constexpr int kBarOffset = 2 * kQBytes + 2 * kStages * kBufBytes;
  static constexpr int kBytes = kBarOffset + (1 + 2 * kStages) * 8 + 1024;
  static_assert(kQBytes % 1024 == 0 && kBufBytes % 1024 == 0, "sw128 tiles stay 1024-aligned");
  static_assert(kBytes <= 227 * 1024, "one CTA an SM (an H100 gives a block 227 KB)");
};

// Step u of a row list of n tiles: an odd list starts with tile 0 alone, then pairs follow.
__device__ __forceinline__ int first_tile(int u, int odd) {
  return u == 0 ? 0 : 2 * u - odd;
}
__device__ __forceinline__ int tiles_of(int u, int odd) {
  return u == 0 && odd ? 1 : 2;
}

template <int D, int kStages, bool kPingPong>
__global__ void __launch_bounds__(kThreads, 1)
    attn_fwd_wgmma_ws128(const __grid_constant__ WsParams w) {
#if NPR_SM90A_DEVICE_CODE
  using S = Ws128Smem<D, kStages>;
  constexpr int ND = D / 8;                     // n8 fragments of the output
  constexpr uint32_t kTileTx = 2 * kT * D * 2;  // a tile's K and V, or both Q tiles
  const FwdParams& p = w.p;
  NPR_DYNAMIC_SHARED(smem_raw);
  const uint32_t raw = static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw));
  const uint32_t sbase = (raw + 1023u) & ~1023u;
  const auto q_tile = [&](int hh) { return sbase + hh * S::kQBytes; };
  const auto k_buf = [&](int u) {
    return sbase + 2 * S::kQBytes + 2 * (u % kStages) * S::kBufBytes;
  };
  const auto v_buf = [&](int u) { return k_buf(u) + S::kBufBytes; };
  const uint32_t q_full = sbase + S::kBarOffset;
  const tma_ring::Ring<kStages> ring{q_full + 8};

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const attn_fwd::PairItem it = attn_fwd::pair_item_of(p);
  const AttnTilePair* const rp = p.row_pairs + p.row_ptr[it.g];
  const int npairs = static_cast<int>(p.row_ptr[it.g + 1] - p.row_ptr[it.g]);
  const int odd = npairs & 1, nsteps = (npairs + 1) / 2;
  if (tid == 0) {
    bulk_load::init(q_full, 1);
    ring.init(kConsumerWarps);
    bulk_load::fence_init();
  }
  __syncthreads();

  // The consumers come first in the code: ptxas (12.x) allocated their region at the grown
  // count only so; with the producer's branch first it spilled 372 bytes at head dim 128.
  if (warp >= 4) {
    warpgroup_regs::grow<kConsumerRegs>();

    // Consumer warpgroup hh = head h0 + hh (a shuffle, so that ptxas sees it warp-uniform).
    const int hh = __shfl_sync(0xffffffffu, (tid >> 7) - 1, 0);
    const int wq = warp & 3;  // warp within the warpgroup: rows 16 wq ..
    const int g8 = lane >> 2, c4 = lane & 3;
    const int r0 = wq * 16 + g8;
    const uint32_t qt = q_tile(hh);
    // Tile j's mask words of this thread's rows, read before the step's waits.
    const auto words = [&](int j) { return attn_fwd::row_words(p, rp[j], r0); };
    const auto release = [&](int u) { ring.release(u, lane); };  // its MMAs done in this warp
    const WarpgroupTurns<kPingPong> turns{hh, kConsumers};       // the ping-pong's

    float o[ND][4];  // this warp's rows (g8, g8 + 8) x dims (8 n + 2 c4, + 1) of head h0 + hh
#pragma unroll
    for (int n = 0; n < ND; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    const float ninf = -__int_as_float(0x7f800000);
    float m0 = ninf, m1 = ninf, l0 = 0.0f, l1 = 0.0f;
    const float sl2 = p.scale_log2;

    bulk_load::wait(q_full, 0);
    turns.start();  // warpgroup 0 issues first
    int u = 0;
    if (odd) {  // step 0: tile 0 alone, its P V at once (o is still zero: the rescale is exact)
      const attn_fwd::RowWords wd = words(0);
      ring.wait_full(0);
      float s[8][4];
      turns.take();
      wgmma::fence();
      attn_fwd::issue_qk<D, kT, kKeys>(s, qt, k_buf(0));
      wgmma::commit();
      turns.yield();
      wgmma::wait<0>();
      wgmma::fence_operands(s);
      attn_fwd::mask_row_scores(s, wd, c4);
      online_softmax_step(s, o, m0, m1, l0, l1, sl2);
      uint32_t p1[4][4];
      attn_fwd::pack_probs(p1, s);
      wgmma::fence_operands(o);
      wgmma::fence_operands(p1);
      turns.take();
      wgmma::fence();
      attn_fwd::issue_pv<D, 4, kKeys>(o, p1, v_buf(0));
      wgmma::commit();
      turns.yield();
      wgmma::wait<0>();
      wgmma::fence_operands(o);
      release(0);
      u = 1;
    }
    if (u < nsteps) {
      uint32_t pa[8][4];  // the previous step's probabilities (bf16 A fragments, 128 keys)
      {                   // the first two-tile step: S, probabilities (o not in flight)
        const int j0 = first_tile(u, odd);
        const attn_fwd::RowWords wa = words(j0), wb = words(j0 + 1);
        ring.wait_full(u);
        float s[16][4];
        wgmma::fence_operands(o);
        turns.take();
        wgmma::fence();
        attn_fwd::issue_qk<D, kKeys, kKeys>(s, qt, k_buf(u));
        wgmma::commit();
        turns.yield();
        wgmma::wait<0>();
        wgmma::fence_operands(s);
        attn_fwd::mask_row_scores<0>(s, wa, c4);
        attn_fwd::mask_row_scores<8>(s, wb, c4);  // keys 64..127
        online_softmax_step(s, o, m0, m1, l0, l1, sl2);
        attn_fwd::pack_probs(pa, s);
      }
      for (++u; u < nsteps; ++u) {
        const int j0 = first_tile(u, odd);
        const attn_fwd::RowWords wa = words(j0), wb = words(j0 + 1);
        ring.wait_full(u);
        float s[16][4];
        wgmma::fence_operands(o);
        wgmma::fence_operands(pa);
        turns.take();
        wgmma::fence();
        attn_fwd::issue_qk<D, kKeys, kKeys>(s, qt, k_buf(u));
        wgmma::commit();
        attn_fwd::issue_pv<D, 8, kKeys>(o, pa, v_buf(u - 1));
        wgmma::commit();
        turns.yield();
        wgmma::wait<1>();  // S done; the previous step's P V may still run
        wgmma::fence_operands(s);
        attn_fwd::mask_row_scores<0>(s, wa, c4);
        attn_fwd::mask_row_scores<8>(s, wb, c4);  // keys 64..127
        float a0, a1, rs0, rs1;
        online_softmax_probs(s, m0, m1, sl2, a0, a1, rs0, rs1);
        wgmma::wait<0>();  // that P V done: o, pa and buffer u - 1 are free
        wgmma::fence_operands(o);
        wgmma::fence_operands(pa);
        release(u - 1);
        online_softmax_rescale(o, l0, l1, a0, a1, rs0, rs1);
        attn_fwd::pack_probs(pa, s);
      }
      // The last step's P V.
      wgmma::fence_operands(o);
      wgmma::fence_operands(pa);
      turns.take();
      wgmma::fence();
      attn_fwd::issue_pv<D, 8, kKeys>(o, pa, v_buf(nsteps - 1));
      wgmma::commit();
      turns.yield();
      wgmma::wait<0>();
      wgmma::fence_operands(o);
      release(nsteps - 1);
    }
    attn_fwd::store_head_rows<D>(p, o, m0, m1, l0, l1, it.q_start, it.h0 + hh, r0, it.qn, c4);
    return;
  }

  // The producer warpgroup: one lane issues every copy.
  warpgroup_regs::shrink<kProducerRegs>();
  if (warp != 0) return;
  if (lane == 0) {
    bulk_load::arrive_expect_tx(q_full, kTileTx);
    tma_ring::load_tile<kT, D>(q_tile(0), &w.q, it.h0 * D, it.q_start, q_full);
    tma_ring::load_tile<kT, D>(q_tile(1), &w.q, (it.h0 + 1) * D, it.q_start, q_full);
    for (int u = 0; u < nsteps; ++u) {
      const int j0 = first_tile(u, odd), nt = tiles_of(u, odd);
      ring.acquire(u, nt * kTileTx);
      for (int h = 0; h < nt; ++h) {
        const int64_t ks = it.seq_start + static_cast<int64_t>(rp[j0 + h].other) * kT;
        const uint32_t half = h * S::kHalfBytes;
        tma_ring::load_tile<kT, D, kKeys>(k_buf(u) + half, &w.k, it.kvh * D, ks, ring.full(u));
        tma_ring::load_tile<kT, D, kKeys>(v_buf(u) + half, &w.v, it.kvh * D, ks, ring.full(u));
      }
    }
  }
  ring.drain(nsteps);  // the whole warp
#else
  __trap();  // built for another architecture: the host never launches it there
#endif
}

constexpr int kStages128 = 3;  // 3 x 64 KB of K / V and 32 KB of Q: 225 KB
constexpr int kStages64 = 6;   // 6 x 32 KB and 16 KB: 209 KB

template <bool kPingPong>
Status launch_ws128(cudaStream_t st, const WsParams& w, unsigned grid) {
  const char* what = kPingPong ? "attention_forward_wgmma (sm_90a warp-specialised TMA kernel, "
                                 "128 keys a step, ping-pong)"
                               : "attention_forward_wgmma (sm_90a warp-specialised TMA kernel, "
                                 "128 keys a step)";
  if (w.p.head_dim == 64)
    return launch_with_shared(attn_fwd_wgmma_ws128<64, kStages64, kPingPong>, grid, kThreads,
                              Ws128Smem<64, kStages64>::kBytes, st, what, w);
  return launch_with_shared(attn_fwd_wgmma_ws128<128, kStages128, kPingPong>, grid, kThreads,
                            Ws128Smem<128, kStages128>::kBytes, st, what, w);
}

}  // namespace

Status attention_forward_wgmma_ws128(void* stream, const attn_fwd::FwdParams& p,
                                     int64_t pair_blocks, bool ping_pong) {
  WsParams w;
  NPR_TRY(attn_fwd::ws_params_of(p, "attention_forward_wgmma_ws128", &w));
  const auto st = static_cast<cudaStream_t>(stream);
  const auto grid = static_cast<unsigned>(pair_blocks);
  return ping_pong ? launch_ws128<true>(st, w, grid) : launch_ws128<false>(st, w, grid);
}

}  // namespace npr
