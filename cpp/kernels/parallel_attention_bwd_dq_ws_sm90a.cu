// attention_backward_dq_wgmma_ws (parallel_attention_wgmma.h): the deterministic dQ kernel of
// parallel_attention_bwd_dq_sm90a.cu, warp-specialised as the TMA forward
// (parallel_attention_fwd_ws_sm90a.cu) is, one CTA an SM (sm_90a only).
//
// Two consumer warpgroups a CTA, one per head of a pair of query heads of one kv head (the
// GQA group is even), on the same query tile: they walk the same row list, so each stage's K and
// V serve both, loaded once where the one-warpgroup kernel loads them per head. A producer warp
// issues Q and dO of both heads once, then each stage's K and V as tensor-map copies into a ring
// of kStages buffers (full / empty mbarriers); the consumers meet no CTA barrier a stage (the
// one-warpgroup kernel: one __syncthreads and 8 cp.async a thread a stage). Each warpgroup's
// stage is dq_warpgroup_stage, the one-warpgroup kernel's, in the same order: the same dq bits.
// Key rows past a sequence's end load whatever follows (the next sequence, or zeros past the
// tensor); the stage masks them (key < nk), as it masks query rows past the tile's end, which
// are never stored.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <string>

#include "core/cuda_check.cuh"
#include "core/cuda_launch.cuh"
#include "core/dynamic_shared.cuh"
#include "kernels/bulk_load.cuh"
#include "kernels/mma_bf16.cuh"
#include "kernels/parallel_attention_bwd.cuh"
#include "kernels/parallel_attention_bwd_stage_sm90a.cuh"
#include "kernels/parallel_attention_bwd_tc.cuh"
#include "kernels/parallel_attention_wgmma.h"
#include "kernels/tma_map.h"
#include "kernels/tma_ring.cuh"
#include "kernels/wgmma.cuh"

namespace npr {

namespace {

using namespace attn_bwd;
using bf16_t = __nv_bfloat16;

constexpr int kConsumers = 256;            // two warpgroups: heads h0 and h0 + 1
constexpr int kThreads = kConsumers + 32;  // and the producer warp
constexpr int kProducerWarp = kConsumers / 32;
constexpr int kConsumerWarps = kConsumers / 32;
constexpr int kStages = 4;

struct DqWsParams {
  TmaMap2d q, dout, k, v;
  PlanView p;
  Dims d;
  bf16_t* dq;
  const float* stats;
};

template <int D>
struct DqWsSmem {
  static constexpr int kTileBytes = kTile * D * 2;  // one (64, D) sw128 tile
  // Q0 | Q1 | dO0 | dO1 | (K, V) x kStages | mbarriers: Q and dO, full x kStages, empty x
  // kStages; + 1 KB to align the dynamic base to 1024 bytes.
  static constexpr int kBarOffset = (4 + 2 * kStages) * kTileBytes;
  static constexpr int kBytes = kBarOffset + (1 + 2 * kStages) * 8 + 1024;
  static_assert(kTileBytes % 1024 == 0, "sw128 tiles stay aligned");
  static_assert(kBytes <= 227 * 1024, "one CTA an SM (an H100 gives a block 227 KB)");
};

template <int D>
__global__ void __launch_bounds__(kThreads, 1)
    dq_wgmma_ws_kernel(const __grid_constant__ DqWsParams w) {
#if NPR_SM90A_DEVICE_CODE
  using S = DqWsSmem<D>;
  constexpr int ND = D / 8;  // n8 fragments of a (16, D) row block
  constexpr uint32_t kPairTx = 2 * S::kTileBytes;
  const PlanView& p = w.p;
  const Dims& d = w.d;
  NPR_DYNAMIC_SHARED(smem_raw);
  const uint32_t raw = static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw));
  const uint32_t sbase = (raw + 1023u) & ~1023u;
  const auto q_tile = [&](int hh) { return sbase + hh * S::kTileBytes; };
  const auto do_tile = [&](int hh) { return sbase + (2 + hh) * S::kTileBytes; };
  const auto k_tile = [&](int64_t s) {
    return sbase + (4 + 2 * static_cast<int>(s % kStages)) * S::kTileBytes;
  };
  const auto v_tile = [&](int64_t s) {
    return sbase + (5 + 2 * static_cast<int>(s % kStages)) * S::kTileBytes;
  };
  const uint32_t qd_full = sbase + S::kBarOffset;
  const tma_ring::Ring<kStages> ring{qd_full + 8};

  // Query tiles late in a sequence have the longest row lists: launch them first.
  const int pairs = d.heads / 2;
  const int64_t g = p.tiles - 1 - blockIdx.x / pairs;
  const int h0 = static_cast<int>(blockIdx.x % pairs) * 2, kvh = h0 / d.group;
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const SeqSpan sq = seq_of(p, g);
  const int64_t qstart = tile_start(sq, g - sq.tile0);
  const int nq = tile_len(sq, qstart);
  const int64_t r0 = p.row_ptr[g], stages = p.row_ptr[g + 1] - r0;
  if (tid == 0) {
    bulk_load::init(qd_full, 1);
    ring.init(kConsumerWarps);
    bulk_load::fence_init();
  }
  __syncthreads();

  if (warp == kProducerWarp) {
    if (lane == 0) {
      bulk_load::arrive_expect_tx(qd_full, 2 * kPairTx);
      for (int hh = 0; hh < 2; ++hh) {
        tma_ring::load_tile<kTile, D>(q_tile(hh), &w.q, (h0 + hh) * D, qstart, qd_full);
        tma_ring::load_tile<kTile, D>(do_tile(hh), &w.dout, (h0 + hh) * D, qstart, qd_full);
      }
      for (int64_t s = 0; s < stages; ++s) {
        const int64_t ks = tile_start(sq, p.row_pairs[r0 + s].other);
        ring.acquire(s, kPairTx);
        tma_ring::load_tile<kTile, D>(k_tile(s), &w.k, kvh * D, ks, ring.full(s));
        tma_ring::load_tile<kTile, D>(v_tile(s), &w.v, kvh * D, ks, ring.full(s));
      }
    }
    ring.drain(stages);  // the whole warp
    return;
  }

  const int hh = tid >> 7, wq = warp & 3;  // head of the pair; warp within the warpgroup
  const int h = h0 + hh, g8 = lane >> 2, c4 = lane & 3;
  // This thread's two query rows (fragment rows g8, g8 + 8 of its warp): lse2 and delta.
  const DqThreadRows tr = dq_thread_rows(w.stats, p, d, h, qstart, nq, wq, g8);
  float dqa[ND][4];  // this warp's 16 query rows of dQ (fp32)
#pragma unroll
  for (int j = 0; j < ND; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) dqa[j][e] = 0.0f;
  const uint64_t qd0 = wgmma::k_major_desc(q_tile(hh), kTile, 0);  // Q, dO as A (K-major)
  const uint64_t od0 = wgmma::k_major_desc(do_tile(hh), kTile, 0);

  bulk_load::wait(qd_full, 0);
  for (int64_t s = 0; s < stages; ++s) {
    uint64_t mw[2];
    const AttnTilePair pair = p.row_pairs[r0 + s];
    const int nk = dq_stage_masks(p, sq, pair, tr.rows, nq, mw);
    const bool dense = dense_dq_stage(pair, nk, nq);
    ring.wait_full(s);
    dq_warpgroup_stage<D>(
        dqa, [&](float(&sc)[8][4], uint64_t kd0) { wgmma::k_major_product<D>(sc, qd0, kd0); }, od0,
        k_tile(s), v_tile(s), mw, nk, tr.lse2, tr.delta, c4, d.sl2, dense);
    ring.release(s, lane);  // the stage ends at wgmma.wait_group 0: its MMAs are done
  }
  store_acc<D>(w.dq + qstart * static_cast<int64_t>(d.heads) * D + h * D,
               static_cast<int64_t>(d.heads) * D, dqa, wq * 16, nq, d.scale);
#else
  __trap();  // built for another architecture: the host never launches it there
#endif
}

template <int D>
Status launch_dq_ws(cudaStream_t st, const DqWsParams& w) {
  const auto grid = static_cast<unsigned>(w.p.tiles * (w.d.heads / 2));
  return launch_with_shared(dq_wgmma_ws_kernel<D>, grid, kThreads, DqWsSmem<D>::kBytes, st,
                            "attention backward: dQ kernel (sm_90a warp-specialised TMA)", w);
}

}  // namespace

Status attention_backward_dq_wgmma_ws(void* stream, const attn_bwd::PlanView& p,
                                      const attn_bwd::Dims& d, void* dq, const void* dout,
                                      const void* q, const void* k, const void* v,
                                      const float* stats) {
  if (d.dim != 64 && d.dim != 128)
    return Status::invalid("attention_backward_dq_wgmma_ws: head_dim " + std::to_string(d.dim) +
                           " (64 or 128 only)");
  if (d.group % 2 != 0)
    return Status::invalid("attention_backward_dq_wgmma_ws: GQA group " + std::to_string(d.group) +
                           " (even only: a CTA takes two heads of one kv head)");
  if (p.tokens <= 0 || p.tokens > 0x7fffffff)
    return Status::invalid("attention_backward_dq_wgmma_ws: tokens " + std::to_string(p.tokens) +
                           " (1 to 2^31 - 1: the copies take 32-bit rows)");
  DqWsParams w;
  w.p = p;
  w.d = d;
  w.dq = static_cast<bf16_t*>(dq);
  w.stats = stats;
  const int64_t ldq = static_cast<int64_t>(d.heads) * d.dim;
  const int64_t ldk = static_cast<int64_t>(d.kv_heads) * d.dim;
  NPR_TRY(make_tma_map_bf16_2d(&w.q, q, ldq, p.tokens, ldq, kTile));
  NPR_TRY(make_tma_map_bf16_2d(&w.dout, dout, ldq, p.tokens, ldq, kTile));
  NPR_TRY(make_tma_map_bf16_2d(&w.k, k, ldk, p.tokens, ldk, kTile));
  NPR_TRY(make_tma_map_bf16_2d(&w.v, v, ldk, p.tokens, ldk, kTile));
  const auto st = static_cast<cudaStream_t>(stream);
  return d.dim == 64 ? launch_dq_ws<64>(st, w) : launch_dq_ws<128>(st, w);
}

}  // namespace npr
