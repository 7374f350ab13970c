// attention_backward_dkdv_wgmma (parallel_attention_wgmma.h): the dK / dV kernel of the fused
// block-sparse attention backward on Hopper's warpgroup MMA, compiled for sm_90a only, with the
// atomic dQ of the non-deterministic mode folded in as an option.
//
// The decomposition is dkdv_tc_kernel's (parallel_attention_backward.cu): one CTA (one
// warpgroup, 4 warps x 16 keys) per (key tile, kv head) keeps K and V resident and walks the
// tile's column list (query tiles, ascending) times the query heads of the group, Q, dO and the
// stage's lse2 / delta / mask words double-buffered by cp.async. Per stage, in four commit
// groups so that the exponentials and dS^T are computed while an MMA is in flight:
//   S^T = K Q^T | dP^T = V dO^T          wgmma m64n64k16, all operands K-major in shared memory;
//   P^T (once S^T lands; dP^T runs)      in registers, as the mma.sync kernel;
//   dV += P^T dO                         wgmma m64nDk16, P^T from registers (bf16), dO N-major;
//   dS^T = P^T (dP^T - delta) (dV runs)  in registers;
//   dK += dS^T Q                         as dV, Q N-major;
//   (atomic dQ) dQ = dS K               dS^T stored bf16 in a swizzled tile, read M-major,
//                                       K N-major, in parts of 64 dims.
// The stage itself is dkdv_warpgroup_stage (parallel_attention_bwd_stage_sm90a.cuh), which the
// two-warpgroup build runs too. Tiles are 128-byte swizzled (wgmma_layout.h), shared writes
// published to the async proxy by a proxy fence before each barrier. Without the atomic dQ the
// wgmma dQ kernel runs after it.
//
// The atomic dQ's (64 queries, D) fp32 block goes to dq_acc by bulk reductions (bulk_reduce.cuh,
// FlashAttention-3's way), not as 64 D / 2 red.add.v2 from the threads: those ran the backward
// at 0.45x FlexAttention at 32k tokens on an H100, against 0.78x without the atomic dQ. The
// block is staged in the stage's own Q and dO buffers (the stage's last MMAs that read them have
// finished by then; their 2 x 128 D bytes are exactly the block's 256 D), in tile order
// (parallel_attention_bwd_tile_dq.cuh), so two CTAs still fit an SM. In that order a warp's rows
// of a 64-dim part are one contiguous 4 KB slice, so each warp stages its slice and its lane 0
// hands it to the copy engine at once: no CTA barrier, and the first part's slices are read
// while the second part's MMAs run. The buffers take the next stage's loads, which therefore
// wait for the engine to have read them. (Issuing the next loads after the stage's first MMAs
// instead, the engine's read under them, made ptxas spill 68 bytes at 255 registers.)
//
// With kTma (the deterministic build only), each stage's Q and dO come as tensor-map copies
// (kernels/tma_load.cuh) that thread 0 issues after the stage barrier, tracked by one mbarrier a
// buffer, instead of 16 cp.async a thread a stage with their swizzle arithmetic: the same
// buffers, barrier and stage, so the same bits. Query rows past a sequence's end then hold what
// follows it (the next sequence, or zeros past the tensor) instead of zeros; the stage masks
// them (qi < nq) and their lse2 and delta stay zero-filled.
// Not here: warp specialisation (a producer warp does not fit beside 255 registers a thread at
// two CTAs an SM), two warpgroups a CTA.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <string>

#include "core/cuda_check.cuh"
#include "core/cuda_launch.cuh"
#include "core/dynamic_shared.cuh"
#include "kernels/bulk_load.cuh"
#include "kernels/bulk_reduce.cuh"
#include "kernels/mma_bf16.cuh"
#include "kernels/parallel_attention_bwd.cuh"
#include "kernels/parallel_attention_bwd_stage_sm90a.cuh"
#include "kernels/parallel_attention_bwd_tc.cuh"
#include "kernels/parallel_attention_bwd_tile_dq.cuh"
#include "kernels/parallel_attention_wgmma.h"
#include "kernels/tma_load.cuh"
#include "kernels/tma_map.h"
#include "kernels/wgmma.cuh"

namespace npr {

namespace {

using namespace attn_bwd;
using bf16_t = __nv_bfloat16;

constexpr int kThreads = 128;  // one warpgroup: warp w holds keys 16 w .. 16 w + 15

template <int D>
struct BwdSmem {
  static constexpr int kTileBytes = kTile * D * 2;    // one (64, D) sw128 tile
  static constexpr int kDsBytes = kTile * kTile * 2;  // dS^T (64 keys, 64 queries) sw128
  // K | V | Q0 | Q1 | dO0 | dO1 | dS^T | lse2 (2, 64) | delta (2, 64) | masks (2, 64) u64 |
  // 2 mbarriers (kTma); + 1 KB to align the dynamic base to 1024 bytes.
  static constexpr int kStats = 6 * kTileBytes + kDsBytes;
  static constexpr int kBars = kStats + 2 * 2 * kTile * 4 + 2 * kTile * 8;
  static constexpr int kBytes = kBars + 2 * 8 + 1024;
  static_assert(kTileBytes % 1024 == 0 && kDsBytes % 1024 == 0, "sw128 tiles stay aligned");
};

template <int D, bool kAtomicDq, bool kTma>
__global__ void __launch_bounds__(kThreads, 2)
    dkdv_wgmma_kernel(PlanView p, Dims d, bf16_t* __restrict__ dk, bf16_t* __restrict__ dv,
                      float* __restrict__ dq_acc, const bf16_t* __restrict__ q,
                      const bf16_t* __restrict__ k, const bf16_t* __restrict__ v,
                      const bf16_t* __restrict__ dout, const float* __restrict__ stats,
                      const __grid_constant__ TmaMap2d q_map,
                      const __grid_constant__ TmaMap2d dout_map) {
  static_assert(!(kTma && kAtomicDq), "the atomic dQ stages its sums where the copies land");
#if NPR_SM90A_DEVICE_CODE
  using S = BwdSmem<D>;
  constexpr int ND = D / 8;  // n8 fragments of a (16, D) row block
  NPR_DYNAMIC_SHARED(smem_raw);
  const uint32_t raw = static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw));
  const uint32_t sbase = (raw + 1023u) & ~1023u;
  unsigned char* const sgen = smem_raw + (sbase - raw);  // the same bytes, generic pointer
  const uint32_t k_tile = sbase, v_tile = sbase + S::kTileBytes;
  const auto q_tile = [&](int b) { return sbase + (2 + b) * S::kTileBytes; };
  const auto do_tile = [&](int b) { return sbase + (4 + b) * S::kTileBytes; };
  const uint32_t ds_tile = sbase + 6 * S::kTileBytes;
  unsigned char* const ds_gen = sgen + 6 * S::kTileBytes;
  float* const lse_s = reinterpret_cast<float*>(sgen + S::kStats);          // (2, 64) lse2
  float* const del_s = lse_s + 2 * kTile;                                   // (2, 64) delta
  uint64_t* const mask_s = reinterpret_cast<uint64_t*>(del_s + 2 * kTile);  // (2, 64)
  const auto full = [&](int b) { return sbase + S::kBars + 8 * b; };  // kTma: Q, dO of buffer b

  const KeyTile kt = key_tile_of(p, d);
  const int kvh = kt.kvh, nk = kt.nk;
  const SeqSpan sq = kt.sq;
  const int64_t kstart = kt.kstart, c0 = kt.c0, stages = kt.stages;
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int g8 = lane >> 2, c4 = lane & 3;
  const int64_t ldk = static_cast<int64_t>(d.kv_heads) * D, ldq = static_cast<int64_t>(d.heads) * D;

  if constexpr (kTma) {
    if (tid == 0) {
      bulk_load::init(full(0), 1);
      bulk_load::init(full(1), 1);
      bulk_load::fence_init();
    }
    __syncthreads();
  }
  wgmma::load_tile_sw128<kTile, D, kThreads>(k_tile, k + kstart * ldk + kvh * D, ldk, nk, tid);
  wgmma::load_tile_sw128<kTile, D, kThreads>(v_tile, v + kstart * ldk + kvh * D, ldk, nk, tid);
  auto load_stage = [&](int64_t s, int buf) {
    const AttnTilePair pair = p.col_pairs[c0 + s / d.group];
    const int h = kvh * d.group + static_cast<int>(s % d.group);
    const int64_t qstart = tile_start(sq, pair.other);
    const int nq = tile_len(sq, qstart);
    if constexpr (kTma) {
      if (tid == 0) {
        bulk_load::arrive_expect_tx(full(buf), 2 * S::kTileBytes);
#pragma unroll
        for (int cb = 0; cb < D / 64; ++cb) {
          const uint32_t at = cb * wgmma::column_block_stride(kTile);
          const int x = h * D + 64 * cb, y = static_cast<int>(qstart);
          tma::load_2d(q_tile(buf) + at, &q_map, x, y, full(buf));
          tma::load_2d(do_tile(buf) + at, &dout_map, x, y, full(buf));
        }
      }
    } else {
      wgmma::load_tile_sw128<kTile, D, kThreads>(q_tile(buf), q + qstart * ldq + h * D, ldq, nq,
                                                 tid);
      wgmma::load_tile_sw128<kTile, D, kThreads>(do_tile(buf), dout + qstart * ldq + h * D, ldq, nq,
                                                 tid);
    }
    load_stage_rows(lse_s, del_s, mask_s, buf, stats, p, d, h, qstart, nq, pair.partial, tid);
  };

  float dka[ND][4], dva[ND][4];  // this warp's 16 key rows of dK, dV (fp32)
#pragma unroll
  for (int j = 0; j < ND; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) dka[j][e] = dva[j][e] = 0.0f;
  const int kr = warp * 16;
  const uint64_t kd0 = wgmma::k_major_desc(k_tile, kTile, 0);  // K, V as A (K-major), step 0
  const uint64_t vd0 = wgmma::k_major_desc(v_tile, kTile, 0);

  if (stages > 0) load_stage(0, 0);
  cp_async_commit();
  constexpr int kHalfBytes = kTile * D * 2;  // half the atomic dQ's block: one Q or dO tile
  constexpr int kSliceBytes = 16 * 64 * 4;   // a warp's rows of a 64-dim part of the block
  for (int64_t s = 0; s < stages; ++s) {
    // Stage s landed (issued during stage s - 1); every thread is past stage s - 1, so stage
    // s + 1's loads may take its buffer (one barrier a stage), with the atomic dQ once the copy
    // engine has read the dQ block stage s - 1 staged there (each warp's lane 0 waits for the
    // reductions it issued, the barrier for all of them).
    cp_async_wait<0>();
    if constexpr (kTma)  // stage s's Q and dO: use s / 2 of its buffer
      bulk_load::wait(full(static_cast<int>(s & 1)), static_cast<uint32_t>((s >> 1) & 1));
    wgmma::fence_proxy_async_shared();
    if constexpr (kAtomicDq)
      if (lane == 0) bulk::wait_read<0>();
    __syncthreads();
    if (s + 1 < stages) load_stage(s + 1, static_cast<int>((s + 1) & 1));
    cp_async_commit();
    const int buf = static_cast<int>(s & 1);
    const AttnTilePair pair = p.col_pairs[c0 + s / d.group];
    const bool full = pair.partial < 0;
    const int64_t qstart = tile_start(sq, pair.other);
    const int nq = tile_len(sq, qstart);
    const DkdvStageRows rows{lse_s + buf * kTile,
                             del_s + buf * kTile,
                             mask_s + buf * kTile,
                             full,
                             nq,
                             nk,
                             kr,
                             g8,
                             c4,
                             d.sl2};
    dkdv_warpgroup_stage<D>(dka, dva, kd0, vd0, q_tile(buf), do_tile(buf), rows,
                            [&](const uint32_t(&pd)[4][4]) {
                              // dS^T (bf16, as the registers round it) into its tile while dK
                              // runs.
                              if constexpr (kAtomicDq) store_ds_tile(ds_gen, pd, kr, g8, c4);
                            });
    if constexpr (kAtomicDq) {
      __syncthreads();  // the dS^T tile written; every warp's MMAs on Q(buf), dO(buf) finished
      // dQ (64 queries, D) = dS K: dS M-major (its tile is (keys, queries)), K N-major, a part of
      // 64 dims at a time. This warp's 16 query rows of a part are 4 KB of the block in tile
      // order: the warp stages them over Q(buf) (the block's first half) or dO(buf), and its
      // lane 0 hands them to the copy engine at once, no CTA barrier between.
      const int h = kvh * d.group + static_cast<int>(s % d.group);
      float* const block = dq_acc + ((sq.tile0 + pair.other) * d.heads + h) * (kTile * D);
#pragma unroll 1
      for (int part = 0; part < D / 64; ++part) {
        float c[8][4];  // written by the first k-step (scale-d 0), accumulated by the others
        const uint64_t sd0 = wgmma::n_major_desc(ds_tile, kTile, 0);
        const uint64_t kn0 =
            wgmma::n_major_desc(k_tile + part * wgmma::column_block_stride(kTile), kTile, 0);
        wgmma::fence();
        wgmma::wgmma_m64n64k16_ss_tt_first(c, sd0, kn0);
#pragma unroll
        for (int t = 1; t < 4; ++t) {
          const uint32_t step = wgmma::n_major_step(16 * t);
          wgmma::wgmma_m64n64k16_ss_tt(c, wgmma::desc_plus(sd0, step), wgmma::desc_plus(kn0, step),
                                       1);
        }
        wgmma::commit();
        wgmma::wait<0>();
        wgmma::fence_operands(c);
        const int slice = tile_dq_index(part, warp, 0, 0, 0);  // this warp's 4 KB, in floats
        const uint32_t at = slice < kHalfBytes / 4 ? q_tile(buf) + 4 * slice
                                                   : do_tile(buf) + 4 * slice - kHalfBytes;
        float* const st = reinterpret_cast<float*>(sgen + (at - sbase));
#pragma unroll
        for (int half = 0; half < 2; ++half)
#pragma unroll
          for (int j = 0; j < 8; ++j)  // rows past nq too: never read back
            *reinterpret_cast<float2*>(st + tile_dq_index(0, 0, half, j, lane)) =
                make_float2(c[j][2 * half], c[j][2 * half + 1]);
        wgmma::fence_proxy_async_shared();  // the bulk reduction reads it through the async proxy
        __syncwarp();
        if (lane == 0) {
          bulk::add_f32(block + slice, at, kSliceBytes);
          bulk::commit();
        }
      }
    }
  }
  cp_async_wait<0>();
  if constexpr (kAtomicDq)
    if (lane == 0) bulk::wait_all<0>();  // no reduction outlives the CTA's shared memory

  // Rows of this warp's accumulators -> dK (scaled), dV.
  store_acc<D>(dk + kstart * ldk + kvh * D, ldk, dka, kr, nk, d.scale);
  store_acc<D>(dv + kstart * ldk + kvh * D, ldk, dva, kr, nk, 1.0f);
#else
  __trap();  // built for another architecture: the host never launches it there
#endif
}

template <int D, bool kAtomicDq, bool kTma>
Status launch_dkdv(cudaStream_t st, const PlanView& p, const Dims& d, void* dk, void* dv,
                   float* dq_acc, const void* dout, const void* q, const void* k, const void* v,
                   const float* stats) {
  TmaMap2d q_map{}, dout_map{};  // unused (zeros) without kTma
  if constexpr (kTma) {
    const int64_t ldq = static_cast<int64_t>(d.heads) * D;
    if (p.tokens <= 0 || p.tokens > 0x7fffffff)
      return Status::invalid("attention_backward_dkdv_wgmma: tokens " + std::to_string(p.tokens) +
                             " (1 to 2^31 - 1: the copies take 32-bit rows)");
    NPR_TRY(make_tma_map_bf16_2d(&q_map, q, ldq, p.tokens, ldq, kTile));
    NPR_TRY(make_tma_map_bf16_2d(&dout_map, dout, ldq, p.tokens, ldq, kTile));
  }
  // Two CTAs of ~107 KB an SM: the launch takes the maximum shared carveout.
  return launch_with_shared(
      dkdv_wgmma_kernel<D, kAtomicDq, kTma>, static_cast<unsigned>(p.tiles * d.kv_heads), kThreads,
      BwdSmem<D>::kBytes, st,
      kTma ? "attention backward: dK/dV kernel (sm_90a wgmma, tensor-map copies)"
           : "attention backward: dK/dV kernel (sm_90a wgmma)",
      p, d, static_cast<bf16_t*>(dk), static_cast<bf16_t*>(dv), dq_acc,
      static_cast<const bf16_t*>(q), static_cast<const bf16_t*>(k), static_cast<const bf16_t*>(v),
      static_cast<const bf16_t*>(dout), stats, q_map, dout_map);
}

}  // namespace

Status attention_backward_dkdv_wgmma(void* stream, const attn_bwd::PlanView& p,
                                     const attn_bwd::Dims& d, void* dk, void* dv, float* dq_acc,
                                     const void* dout, const void* q, const void* k, const void* v,
                                     const float* stats, bool tma) {
  const bool atomic = dq_acc != nullptr;
  auto st = static_cast<cudaStream_t>(stream);
  if (atomic && tma)
    return Status::invalid(
        "attention_backward_dkdv_wgmma: the tensor-map copies are built for the deterministic "
        "kernel only (the atomic dQ stages its sums in the buffers they fill)");
  if (d.dim == 64)
    return atomic ? launch_dkdv<64, true, false>(st, p, d, dk, dv, dq_acc, dout, q, k, v, stats)
           : tma  ? launch_dkdv<64, false, true>(st, p, d, dk, dv, dq_acc, dout, q, k, v, stats)
                  : launch_dkdv<64, false, false>(st, p, d, dk, dv, dq_acc, dout, q, k, v, stats);
  if (d.dim == 128)
    return atomic ? launch_dkdv<128, true, false>(st, p, d, dk, dv, dq_acc, dout, q, k, v, stats)
           : tma  ? launch_dkdv<128, false, true>(st, p, d, dk, dv, dq_acc, dout, q, k, v, stats)
                  : launch_dkdv<128, false, false>(st, p, d, dk, dv, dq_acc, dout, q, k, v, stats);
  return Status::invalid("attention_backward_dkdv_wgmma: head_dim " + std::to_string(d.dim) +
                         " (64 or 128 only)");
}

}  // namespace npr
