// attention_forward_wgmma_ws (parallel_attention_wgmma.h): the Hopper forward of
// parallel_attention_fwd_pipelined_sm90a.cu with its loads handed to the copy engine and a
// producer warp (FlashAttention-3's warp specialisation), one CTA an SM (sm_90a only).
//
// Same decomposition, tiles, masks, MMAs and sums as the pipelined kernel: a CTA per (query
// tile, pair of query heads), one consumer warpgroup a head, and per key tile j the warpgroup
// issues S_j = Q K_j^T and O += P_{j-1} V_{j-1}, computes P_j while the latter runs, then
// rescales O. What changes is how K and V arrive. The pipelined kernel's 256 threads each copy
// 8 16-byte chunks a tile by cp.async (the swizzle's address arithmetic included) and meet at a
// CTA barrier a tile, and on an H100 (ncu, 8k tokens) that kernel issued an instruction every
// ~4 cycles a warp with fixed-latency and barrier stalls on top of its MMAs. Here one lane of a
// ninth warp issues each tile's K and V as four tensor-map copies (kernels/tma_load.cuh, the
// 128-byte swizzle done by the copy engine) into a ring of kStages buffers, each with a full
// mbarrier (the copies' bytes) and an empty one (one arrival a consumer warp once its MMAs on
// the buffer are done); the consumers wait on the full barrier alone, no CTA barrier a tile.
// Q comes the same way, once. Rows past a sequence's end load whatever follows (the next
// sequence, or zeros past the tensor): the plan marks every tile that holds such keys PARTIAL
// with those keys masked, and rows of queries past it are never stored.
//
// With kPingPong the two warpgroups take turns issuing their MMAs (two named barriers, each
// warpgroup syncing on its own and arriving at the other's), so that one's softmax runs under the
// other's MMAs; without it they drift freely. The producer warp stays until the consumers have
// handed back the last buffer (the emulator, like the ISA's rules for .aligned barriers, wants
// no thread gone while others still meet at barriers).
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
#include "kernels/warpgroup_turns.cuh"
#include "kernels/wgmma.cuh"

namespace npr {

namespace {

using attn_fwd::FwdParams;
using attn_fwd::kT;
using bf16_t = __nv_bfloat16;

constexpr int kConsumers = 256;            // two warpgroups: heads h0 and h0 + 1
constexpr int kThreads = kConsumers + 32;  // and the producer warp
constexpr int kProducerWarp = kConsumers / 32;
constexpr int kConsumerWarps = kConsumers / 32;

using attn_fwd::WsParams;

template <int D, int kStages>
struct WsSmem {
  static constexpr int kTileBytes = kT * D * 2;  // one (64, D) sw128 tile
  // Q0 | Q1 | (K, V) x kStages, each 1024-byte aligned | mbarriers: Q, full x kStages, empty x
  // kStages; + 1 KB to align the dynamic base.
  static constexpr int kBarOffset = (2 + 2 * kStages) * kTileBytes;
  static constexpr int kBytes = kBarOffset + (1 + 2 * kStages) * 8 + 1024;
  static_assert(kTileBytes % 1024 == 0, "sw128 tiles keep 1024-byte alignment");
  static_assert(kBytes <= 227 * 1024, "one CTA an SM (an H100 gives a block 227 KB)");
};

template <int D, int kStages, bool kPingPong>
__global__ void __launch_bounds__(kThreads, 1)
    attn_fwd_wgmma_ws(const __grid_constant__ WsParams w) {
#if NPR_SM90A_DEVICE_CODE
  using S = WsSmem<D, kStages>;
  constexpr int ND = D / 8;                        // n8 fragments of the output
  constexpr uint32_t kTileTx = 2 * S::kTileBytes;  // a stage's K and V, or both Q tiles
  const FwdParams& p = w.p;
  NPR_DYNAMIC_SHARED(smem_raw);
  const uint32_t raw = static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw));
  const uint32_t sbase = (raw + 1023u) & ~1023u;
  const auto q_tile = [&](int hh) { return sbase + hh * S::kTileBytes; };
  const auto k_tile = [&](int j) { return sbase + (2 + 2 * (j % kStages)) * S::kTileBytes; };
  const auto v_tile = [&](int j) { return sbase + (3 + 2 * (j % kStages)) * S::kTileBytes; };
  const uint32_t q_full = sbase + S::kBarOffset;
  const tma_ring::Ring<kStages> ring{q_full + 8};

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const attn_fwd::PairItem it = attn_fwd::pair_item_of(p);
  const AttnTilePair* const rp = p.row_pairs + p.row_ptr[it.g];
  const int npairs = static_cast<int>(p.row_ptr[it.g + 1] - p.row_ptr[it.g]);
  if (tid == 0) {
    bulk_load::init(q_full, 1);
    ring.init(kConsumerWarps);
    bulk_load::fence_init();
  }
  __syncthreads();

  if (warp == kProducerWarp) {
    if (lane == 0) {
      bulk_load::arrive_expect_tx(q_full, kTileTx);
      tma_ring::load_tile<kT, D>(q_tile(0), &w.q, it.h0 * D, it.q_start, q_full);
      tma_ring::load_tile<kT, D>(q_tile(1), &w.q, (it.h0 + 1) * D, it.q_start, q_full);
      for (int j = 0; j < npairs; ++j) {
        const int64_t ks = it.seq_start + static_cast<int64_t>(rp[j].other) * kT;
        ring.acquire(j, kTileTx);
        tma_ring::load_tile<kT, D>(k_tile(j), &w.k, it.kvh * D, ks, ring.full(j));
        tma_ring::load_tile<kT, D>(v_tile(j), &w.v, it.kvh * D, ks, ring.full(j));
      }
    }
    ring.drain(npairs);  // the whole warp: past that no consumer meets a barrier
    return;
  }

  // Warpgroup = head of the pair, read through a shuffle from lane 0 so that ptxas knows it is
  // the same across each warp (the ping-pong build branches on it around wgmma).
  const int hh = __shfl_sync(0xffffffffu, tid >> 7, 0);
  const int wq = warp & 3;  // warp within the warpgroup: rows 16 wq ..
  const int g8 = lane >> 2, c4 = lane & 3;
  const int r0 = wq * 16 + g8;
  const uint32_t qt = q_tile(hh);
  // Tile j's mask words of this thread's rows, read before its wait.
  const auto words = [&](int j) { return attn_fwd::row_words(p, rp[j], r0); };
  const auto landed = [&](int j) { ring.wait_full(j); };       // buffer j's K and V
  const auto release = [&](int j) { ring.release(j, lane); };  // its MMAs done in this warp
  const WarpgroupTurns<kPingPong> turns{hh, kConsumers};       // the ping-pong's

  float o[ND][4];  // this warp's rows (g8, g8 + 8) x dims (8 n + 2 c4, + 1) of head h0 + hh
#pragma unroll
  for (int n = 0; n < ND; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  const float ninf = -__int_as_float(0x7f800000);
  float m0 = ninf, m1 = ninf, l0 = 0.0f, l1 = 0.0f;
  const float sl2 = p.scale_log2;
  uint32_t pa[4][4];  // the previous tile's probabilities (bf16 A fragments)

  bulk_load::wait(q_full, 0);
  turns.start();     // warpgroup 0 issues first
  if (npairs > 0) {  // tile 0: S, probabilities (o is still zero: its rescale is exact)
    const attn_fwd::RowWords wd = words(0);
    landed(0);
    float s[8][4];
    turns.take();
    wgmma::fence();
    attn_fwd::issue_qk<D>(s, qt, k_tile(0));
    wgmma::commit();
    turns.yield();
    wgmma::wait<0>();
    wgmma::fence_operands(s);
    attn_fwd::mask_row_scores(s, wd, c4);
    online_softmax_step(s, o, m0, m1, l0, l1, sl2);
    attn_fwd::pack_probs(pa, s);
  }
  for (int j = 1; j < npairs; ++j) {
    const attn_fwd::RowWords wd = words(j);
    landed(j);
    float s[8][4];
    wgmma::fence_operands(o);
    wgmma::fence_operands(pa);
    turns.take();
    wgmma::fence();
    attn_fwd::issue_qk<D>(s, qt, k_tile(j));
    wgmma::commit();
    attn_fwd::issue_pv<D>(o, pa, v_tile(j - 1));
    wgmma::commit();
    turns.yield();
    wgmma::wait<1>();  // S_j done; P_{j-1} V_{j-1} may still run
    wgmma::fence_operands(s);
    attn_fwd::mask_row_scores(s, wd, c4);
    float a0, a1, rs0, rs1;
    online_softmax_probs(s, m0, m1, sl2, a0, a1, rs0, rs1);
    wgmma::wait<0>();  // P_{j-1} V_{j-1} done: o, pa and buffer j - 1 are free
    wgmma::fence_operands(o);
    wgmma::fence_operands(pa);
    release(j - 1);
    online_softmax_rescale(o, l0, l1, a0, a1, rs0, rs1);
    attn_fwd::pack_probs(pa, s);
  }
  if (npairs > 0) {  // the last tile's P V
    wgmma::fence_operands(o);
    wgmma::fence_operands(pa);
    turns.take();
    wgmma::fence();
    attn_fwd::issue_pv<D>(o, pa, v_tile(npairs - 1));
    wgmma::commit();
    turns.yield();
    wgmma::wait<0>();
    wgmma::fence_operands(o);
    release(npairs - 1);
  }
  attn_fwd::store_head_rows<D>(p, o, m0, m1, l0, l1, it.q_start, it.h0 + hh, r0, it.qn, c4);
#else
  __trap();  // built for another architecture: the host never launches it there
#endif
}

constexpr int kStages128 = 5;  // 5 x 32 KB of K / V and 32 KB of Q: 193 KB
constexpr int kStages64 = 6;   // 6 x 16 KB and 16 KB: 113 KB

template <bool kPingPong>
Status launch_ws(cudaStream_t st, const WsParams& w, unsigned grid) {
  const char* what = kPingPong ? "attention_forward_wgmma (sm_90a warp-specialised TMA kernel, "
                                 "ping-pong)"
                               : "attention_forward_wgmma (sm_90a warp-specialised TMA kernel)";
  if (w.p.head_dim == 64)
    return launch_with_shared(attn_fwd_wgmma_ws<64, kStages64, kPingPong>, grid, kThreads,
                              WsSmem<64, kStages64>::kBytes, st, what, w);
  return launch_with_shared(attn_fwd_wgmma_ws<128, kStages128, kPingPong>, grid, kThreads,
                            WsSmem<128, kStages128>::kBytes, st, what, w);
}

}  // namespace

Status attention_forward_wgmma_ws(void* stream, const attn_fwd::FwdParams& p, int64_t pair_blocks,
                                  bool ping_pong) {
  WsParams w;
  NPR_TRY(attn_fwd::ws_params_of(p, "attention_forward_wgmma_ws", &w));
  const auto st = static_cast<cudaStream_t>(stream);
  const auto grid = static_cast<unsigned>(pair_blocks);
  return ping_pong ? launch_ws<true>(st, w, grid) : launch_ws<false>(st, w, grid);
}

}  // namespace npr
