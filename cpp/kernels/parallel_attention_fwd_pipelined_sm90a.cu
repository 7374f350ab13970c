// attention_forward_wgmma_pipelined (parallel_attention_wgmma.h): the Hopper forward of
// parallel_attention_fwd_sm90a.cu with each warpgroup's tensor-core and CUDA-core work
// overlapped inside the warpgroup, one CTA an SM (sm_90a only).
//
// Same decomposition, tiles, masks and arithmetic as attn_fwd_wgmma: a CTA per (query tile,
// pair of query heads), one warpgroup a head. The difference is the order of work per key
// tile j: the warpgroup issues S_j = Q K_j^T and then O += P_{j-1} V_{j-1} (the previous
// tile's probabilities, kept in registers), waits for S_j alone and computes P_j's
// probabilities while the P V product still runs, then waits for it and rescales O. So the
// exponentials of one tile overlap the MMAs of the other (FlashAttention-3's intra-warpgroup
// pipelining, without its warp specialisation). K_j and V_{j-1} are in use together and the
// next kAhead tiles load meanwhile, so there are 2 + kAhead K/V stage buffers: kAhead 1, 129 KB
// of shared memory at D 128 (the measured build); kAhead 2, 161 KB, two tiles of compute to hide
// each load's L2 latency. Up to 255 registers a thread, one CTA an SM. With kQRegs, each thread
// holds its rows of Q as A fragments (32 registers at D 128) and S = Q K^T reads only K from
// shared memory: the S product's shared-memory reads halve, and with them the stage's share of
// the shared-memory port that, at the tensor cores' rate, the SS products alone would fill.
//
// With kPingPong the two warpgroups run half a tile apart (FlashAttention-3's inter-warpgroup
// ping-pong), so that one's exponentials run while the other's MMAs do, instead of both
// computing exponentials at once while the tensor cores idle. Warpgroup 1 meets barrier j right
// after issuing tile j - 1's MMAs and computes that tile's softmax after it, while warpgroup 0
// meets it at the start of tile j, as without kPingPong. The barrier is a named, non-.aligned one
// (named_barrier.cuh), since the two reach it at different places. Warpgroup 1 may still be reading
// K_{j-1} and V_{j-2} when warpgroup 0 passes barrier j, so the ring has one stage more (3 +
// kAhead).
//
// Sums run in the same order as attn_fwd_wgmma's in every build (only the scheduling changes).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <string>

#include "core/cuda_check.cuh"
#include "core/cuda_launch.cuh"
#include "core/dynamic_shared.cuh"
#include "kernels/attn_softmax.cuh"
#include "kernels/bulk_load.cuh"
#include "kernels/mma_bf16.cuh"
#include "kernels/named_barrier.cuh"
#include "kernels/parallel_attention_fwd.cuh"
#include "kernels/parallel_attention_fwd_wgmma.cuh"
#include "kernels/parallel_attention_wgmma.h"
#include "kernels/tma_map.h"
#include "kernels/tma_ring.cuh"
#include "kernels/wgmma.cuh"

namespace npr {

namespace {

using attn_fwd::FwdParams;
using attn_fwd::kT;
using bf16_t = __nv_bfloat16;

constexpr int kThreads = 256;  // two warpgroups: heads h0 and h0 + 1

template <int D, int kAhead, bool kPingPong>
struct PipeSmem {
  static constexpr int kStages = 2 + kAhead + (kPingPong ? 1 : 0);  // K/V tile buffers
  static constexpr int kTileBytes = kT * D * 2;                     // one (64, D) sw128 tile
  // Q0 | Q1 | (K, V) x kStages, each 1024-byte aligned | kStages mbarriers (the TMA build's);
  // + 1 KB to align the dynamic base.
  static constexpr int kBarOffset = (2 + 2 * kStages) * kTileBytes;
  static constexpr int kBytes = kBarOffset + kStages * 8 + 1024;
  static_assert(kTileBytes % 1024 == 0, "sw128 tiles keep 1024-byte alignment");
  static_assert(kBytes <= 227 * 1024, "one CTA an SM (an H100 gives a block 227 KB)");
};

// S = Q K^T for one key tile, Q as A fragments in registers (k-step kk: qf[kk]), K at kt.
template <int D>
__device__ __forceinline__ void issue_qk_regs(float (&s)[8][4], const uint32_t (&qf)[D / 16][4],
                                              uint32_t kt) {
  const uint64_t kd = wgmma::k_major_desc(kt, kT, 0);
  wgmma::wgmma_m64n64k16_rs_first(s, qf[0], kd);
#pragma unroll
  for (int kk = 1; kk < D / 16; ++kk)
    wgmma::wgmma_m64n64k16_rs(s, qf[kk], wgmma::desc_plus(kd, wgmma::k_major_step(kT, 16 * kk)));
}

template <int D, int kAhead, bool kQRegs, bool kPingPong, bool kTma>
__global__ void __launch_bounds__(kThreads, 1)
    attn_fwd_wgmma_pipelined(FwdParams p, const __grid_constant__ TmaMap2d k_map,
                             const __grid_constant__ TmaMap2d v_map) {
#if NPR_SM90A_DEVICE_CODE
  using S = PipeSmem<D, kAhead, kPingPong>;
  constexpr int kStages = S::kStages;
  constexpr int ND = D / 8;  // n8 fragments of the output
  NPR_DYNAMIC_SHARED(smem_raw);
  const uint32_t raw = static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw));
  const uint32_t sbase = (raw + 1023u) & ~1023u;
  const auto k_tile = [&](int j) { return sbase + (2 + 2 * (j % kStages)) * S::kTileBytes; };
  const auto v_tile = [&](int j) { return sbase + (3 + 2 * (j % kStages)) * S::kTileBytes; };

  const int tid = threadIdx.x, lane = tid & 31;
  // Warpgroup = head of the pair; in the ping-pong build read through a shuffle from lane 0 so
  // that ptxas knows it is the same across each warp (that build branches on it around wgmma: a
  // branch it took for divergent would serialise the warpgroup MMAs).
  const int hh = kPingPong ? __shfl_sync(0xffffffffu, tid >> 7, 0) : tid >> 7;
  const int warp = (tid >> 5) & 3;  // warp within the warpgroup: rows 16 warp ..
  const int g8 = lane >> 2, c4 = lane & 3;
  const attn_fwd::PairItem it = attn_fwd::pair_item_of(p);
  const attn_fwd::PairInputs in = attn_fwd::pair_inputs_of<D>(p, it);
  const AttnTilePair* const rp = in.pairs;
  const int npairs = in.npairs;
  const int r0 = warp * 16 + g8;
  const uint32_t qt = sbase + hh * S::kTileBytes;

  // kTma: tile j's copies land on the mbarrier of its stage buffer (use j / kStages of it).
  const auto full = [&](int j) { return sbase + S::kBarOffset + 8 * (j % kStages); };
  if constexpr (kTma) {
    if (tid == 0) {
      for (int b = 0; b < kStages; ++b) bulk_load::init(full(b), 1);
      bulk_load::fence_init();
    }
    __syncthreads();
  }
  // Tile j's K and V into its stage buffer: by cp.async from every thread, or (kTma) by thread
  // 0's tensor-map copies (key rows past the sequence hold what follows it: PARTIAL tiles mask
  // them, and P V multiplies them by zero).
  const auto load_kv = [&](int j) {
    const int64_t ks = static_cast<int64_t>(rp[j].other) * kT;
    if constexpr (kTma) {
      if (tid == 0) {
        bulk_load::arrive_expect_tx(full(j), 2 * S::kTileBytes);
        tma_ring::load_tile<kT, D>(k_tile(j), &k_map, it.kvh * D, it.seq_start + ks, full(j));
        tma_ring::load_tile<kT, D>(v_tile(j), &v_map, it.kvh * D, it.seq_start + ks, full(j));
      }
    } else {
      const int64_t kn64 = in.seq_n - ks;
      const int kn = static_cast<int>(kn64 < kT ? kn64 : kT);
      wgmma::load_tile_sw128<kT, D, kThreads>(k_tile(j), in.k + ks * p.ldk, p.ldk, kn, tid);
      wgmma::load_tile_sw128<kT, D, kThreads>(v_tile(j), in.v + ks * p.ldk, p.ldk, kn, tid);
    }
  };
  // Waits for tile j's copies (the kAhead - 1 after it may still be in flight), publishes them to
  // the async proxy and to every thread, then starts tile j + kAhead's: after the barrier every
  // warpgroup is past tile j - 1, so the P V product of tile j - 2 that read that stage buffer
  // ((j + kAhead) mod (2 + kAhead)) is complete. With kPingPong, warpgroup 1 is only past tile
  // j - 2 (its MMAs of tile j - 1 and P V of tile j - 2 are in flight), and the stage buffer
  // ((j + kAhead) mod (3 + kAhead)) is tile j - 3's, whose readers have all been waited for.
  const auto arrive = [&](int j) {
    if constexpr (kTma) {
      cp_async_wait<0>();  // Q, on the first pass
      bulk_load::wait(full(j), static_cast<uint32_t>((j / kStages) & 1));
    } else {
      cp_async_wait<kAhead - 1>();
    }
    wgmma::fence_proxy_async_shared();
    if constexpr (kPingPong)
      named_barrier::sync(1, kThreads);
    else
      __syncthreads();
    if (j + kAhead < npairs) load_kv(j + kAhead);
    cp_async_commit();
  };
  // Tile j's mask words of this thread's rows, read before its wait.
  const auto words = [&](int j) { return attn_fwd::row_words(p, rp[j], r0); };

  wgmma::load_tile_sw128<kT, D, kThreads>(sbase, in.q, p.ldq, it.qn, tid);
  wgmma::load_tile_sw128<kT, D, kThreads>(sbase + S::kTileBytes, in.q + D, p.ldq, it.qn, tid);
#pragma unroll
  for (int j = 0; j < kAhead; ++j) {  // one commit group a tile, empty past the last
    if (j < npairs) load_kv(j);
    cp_async_commit();
  }

  // With kQRegs: this thread's Q as A fragments, k-step kk = dims 16 kk .. 16 kk + 15 (rows
  // r0, r0 + 8; zeros past the tile's live rows), read once from global memory.
  uint32_t qf[kQRegs ? D / 16 : 1][4];
  if constexpr (kQRegs) {
    const auto* qh = in.q + hh * D;  // this warpgroup's head
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk)
#pragma unroll
      for (int x = 0; x < 4; ++x) {
        const int r = r0 + (x & 1) * 8, c = 16 * kk + 2 * c4 + (x >> 1) * 8;
        qf[kk][x] = r < it.qn ? *reinterpret_cast<const uint32_t*>(qh + r * p.ldq + c) : 0u;
      }
  }
  const auto issue_s = [&](float(&s)[8][4], int j) {
    if constexpr (kQRegs)
      issue_qk_regs<D>(s, qf, k_tile(j));
    else
      attn_fwd::issue_qk<D>(s, qt, k_tile(j));
  };

  float o[ND][4];  // this warp's rows (g8, g8 + 8) x dims (8 n + 2 c4, + 1) of head h0 + hh
#pragma unroll
  for (int n = 0; n < ND; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  const float ninf = -__int_as_float(0x7f800000);
  float m0 = ninf, m1 = ninf, l0 = 0.0f, l1 = 0.0f;
  const float sl2 = p.scale_log2;
  uint32_t pa[4][4];  // the previous tile's probabilities (bf16 A fragments)

  // Each iteration j: S_j and P_{j-1} V_{j-1} issued, tile j's softmax while the latter runs.
  // Barrier j comes before the issue in warpgroup 0 (and in both without kPingPong); in
  // warpgroup 1 of the ping-pong build barrier j + 1 comes right after it, so that warpgroup
  // runs half a tile behind: its softmax under warpgroup 0's MMAs and the reverse.
  const bool late = kPingPong && hh == 1;
  if (npairs > 0) {  // tile 0: S, probabilities (o is still zero: its rescale is exact)
    const attn_fwd::RowWords w = words(0);
    arrive(0);
    float s[8][4];
    wgmma::fence();
    issue_s(s, 0);
    wgmma::commit();
    if (late && 1 < npairs) arrive(1);
    wgmma::wait<0>();
    wgmma::fence_operands(s);
    attn_fwd::mask_row_scores(s, w, c4);
    online_softmax_step(s, o, m0, m1, l0, l1, sl2);
    attn_fwd::pack_probs(pa, s);
  }
  for (int j = 1; j < npairs; ++j) {
    const attn_fwd::RowWords w = words(j);
    if (!late) arrive(j);
    float s[8][4];
    wgmma::fence_operands(o);
    wgmma::fence_operands(pa);
    wgmma::fence();
    issue_s(s, j);
    wgmma::commit();
    attn_fwd::issue_pv<D>(o, pa, v_tile(j - 1));
    wgmma::commit();
    if (late && j + 1 < npairs) arrive(j + 1);
    wgmma::wait<1>();  // S_j done; P_{j-1} V_{j-1} may still run
    wgmma::fence_operands(s);
    attn_fwd::mask_row_scores(s, w, c4);
    float a0, a1, rs0, rs1;
    online_softmax_probs(s, m0, m1, sl2, a0, a1, rs0, rs1);
    wgmma::wait<0>();  // P_{j-1} V_{j-1} done: o and pa are free
    wgmma::fence_operands(o);
    wgmma::fence_operands(pa);
    online_softmax_rescale(o, l0, l1, a0, a1, rs0, rs1);
    attn_fwd::pack_probs(pa, s);
  }
  if (npairs > 0) {  // the last tile's P V
    wgmma::fence_operands(o);
    wgmma::fence_operands(pa);
    wgmma::fence();
    attn_fwd::issue_pv<D>(o, pa, v_tile(npairs - 1));
    wgmma::commit();
    wgmma::wait<0>();
    wgmma::fence_operands(o);
  }
  cp_async_wait<0>();
  attn_fwd::store_head_rows<D>(p, o, m0, m1, l0, l1, it.q_start, it.h0 + hh, r0, it.qn, c4);
#else
  __trap();  // built for another architecture: the host never launches it there
#endif
}

template <int kAhead, bool kQRegs, bool kPingPong, bool kTma = false>
Status launch_pipelined(cudaStream_t st, const attn_fwd::FwdParams& p, unsigned grid) {
  TmaMap2d k_map{}, v_map{};  // zeros (unused) without kTma
  if constexpr (kTma) {
    if (p.tokens <= 0 || p.tokens > 0x7fffffff)
      return Status::invalid("attention_forward_wgmma_pipelined: tokens " +
                             std::to_string(p.tokens) +
                             " (1 to 2^31 - 1: the copies take 32-bit rows)");
    NPR_TRY(make_tma_map_bf16_2d(&k_map, p.k, p.ldk, p.tokens, p.ldk, kT));
    NPR_TRY(make_tma_map_bf16_2d(&v_map, p.v, p.ldk, p.tokens, p.ldk, kT));
  }
  const char* what =
      kTma          ? "attention_forward_wgmma (sm_90a ping-pong kernel, tensor-map copies)"
      : kPingPong   ? (kQRegs ? "attention_forward_wgmma (sm_90a ping-pong kernel, Q in registers)"
                              : "attention_forward_wgmma (sm_90a ping-pong kernel)")
      : kQRegs      ? "attention_forward_wgmma (sm_90a pipelined kernel, Q in registers)"
      : kAhead == 1 ? "attention_forward_wgmma (sm_90a pipelined kernel)"
                    : "attention_forward_wgmma (sm_90a pipelined kernel, 2 ahead)";
  if (p.head_dim == 64)
    return launch_with_shared(attn_fwd_wgmma_pipelined<64, kAhead, kQRegs, kPingPong, kTma>, grid,
                              kThreads, PipeSmem<64, kAhead, kPingPong>::kBytes, st, what, p, k_map,
                              v_map);
  return launch_with_shared(attn_fwd_wgmma_pipelined<128, kAhead, kQRegs, kPingPong, kTma>, grid,
                            kThreads, PipeSmem<128, kAhead, kPingPong>::kBytes, st, what, p, k_map,
                            v_map);
}

}  // namespace

Status attention_forward_wgmma_pipelined(void* stream, const attn_fwd::FwdParams& p,
                                         int64_t pair_blocks, int ahead, bool q_in_registers,
                                         bool ping_pong, bool tma) {
  const auto st = static_cast<cudaStream_t>(stream);
  const auto grid = static_cast<unsigned>(pair_blocks);
  if (ahead != 1 && ahead != 2)
    return Status::invalid("attention_forward_wgmma_pipelined: ahead " + std::to_string(ahead) +
                           " (1 or 2)");
  // The builds: 1 ahead; 2 ahead; 2 ahead with Q in registers; each of the first and the last
  // also as ping-pong.
  if (q_in_registers && ahead != 2)
    return Status::invalid(
        "attention_forward_wgmma_pipelined: Q in registers is built for ahead 2 only");
  if (ping_pong && ahead == 2 && !q_in_registers)
    return Status::invalid(
        "attention_forward_wgmma_pipelined: the ping-pong build 2 ahead has Q in registers");
  if (p.head_dim != 64 && p.head_dim != 128)
    return Status::invalid("attention_forward_wgmma_pipelined: head_dim " +
                           std::to_string(p.head_dim) + " (64 or 128 only)");
  if (tma && !(ping_pong && ahead == 1 && !q_in_registers))
    return Status::invalid(
        "attention_forward_wgmma_pipelined: the tensor-map copies are built for the ping-pong "
        "kernel one tile ahead only");
  if (tma) return launch_pipelined<1, false, true, true>(st, p, grid);
  if (ping_pong)
    return q_in_registers ? launch_pipelined<2, true, true>(st, p, grid)
                          : launch_pipelined<1, false, true>(st, p, grid);
  if (q_in_registers) return launch_pipelined<2, true, false>(st, p, grid);
  return ahead == 1 ? launch_pipelined<1, false, false>(st, p, grid)
                    : launch_pipelined<2, false, false>(st, p, grid);
}

}  // namespace npr
