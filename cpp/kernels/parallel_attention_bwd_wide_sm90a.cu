// attention_backward_dkdv_wgmma_wide (parallel_attention_wgmma.h): the dK / dV kernel of the
// fused block-sparse attention backward on Hopper's warpgroup MMA for head_dim 128, two key
// tiles (128 keys) a CTA, compiled for sm_90a only.
//
// Why: the one-warpgroup kernel (parallel_attention_bwd_sm90a.cu) loads a (64, 128) Q and dO
// tile, 32 KB, for every 4.2 MFLOP of a stage. At the tensor cores' rate on an H100/H200 that
// is ~7.7 TB/s of L2 -> SM traffic over the whole chip, more than L2 gives. Here two consumer
// warpgroups, one per key tile, share each stage's Q, dO, lse2 and delta: half the traffic a
// FLOP, as FlashAttention-3's 128-key backward tiles have.
//
// The CTA owns key tiles 2 j and 2 j + 1 (of the plan's tile numbering; they may belong to two
// sequences) for one kv head, warpgroup w the tile 2 j + w with its K and V resident. The
// stages walk the union of the two tiles' column lists (query tiles, ascending by their global
// tile number) times the group's query heads; a warpgroup whose tile does not see a stage's
// query tile skips that stage's MMAs. Each warpgroup's stage is the one-warpgroup kernel's, the
// same MMAs in the same order, so dK and dV come out bit-identical to it. With dq_acc, the
// stage's dQ = dS K over all 128 keys is split by head dims, warpgroup w summing dims
// 64 w .. 64 w + 63 over both tiles' dS^T into its half of a (64, 128) fp32 staging buffer;
// after the next CTA barrier thread 0 adds the whole block into dq_acc with one bulk reduction
// (bulk_reduce.cuh), as FlashAttention-3 does, instead of 256 threads issuing 16 red.adds each:
// the copy engine reads the buffer while the next stage's MMAs run, and thread 0 waits for that
// read only before the buffer is written again. dq_acc is in tile order
// (parallel_attention_bwd_tile_dq.cuh) so that each stage's block is one contiguous run.
// Stage buffers are a ring of three, loaded two stages ahead, and both warpgroups meet at one
// CTA barrier a stage (two with the atomic dQ), so one's exponentials overlap the other's MMAs
// no further than the commit groups and that barrier allow.
// Not here: head_dim 64 (the one-warpgroup kernel serves it), TMA loads, a producer warp.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <string>

#include "core/cuda_check.cuh"
#include "core/cuda_launch.cuh"
#include "core/dynamic_shared.cuh"
#include "kernels/bulk_reduce.cuh"
#include "kernels/mma_bf16.cuh"
#include "kernels/parallel_attention_bwd.cuh"
#include "kernels/parallel_attention_bwd_stage_sm90a.cuh"
#include "kernels/parallel_attention_bwd_tc.cuh"
#include "kernels/parallel_attention_bwd_tile_dq.cuh"
#include "kernels/parallel_attention_bwd_wide.cuh"
#include "kernels/parallel_attention_wgmma.h"
#include "kernels/wgmma.cuh"

namespace npr {

namespace {

using namespace attn_bwd;
using bf16_t = __nv_bfloat16;

constexpr int kD = 128;        // the head dim this kernel takes
constexpr int kThreads = 256;  // warpgroup w (threads 128 w ..): key tile 2 j + w, 16 keys a warp
constexpr int kBufs = 3;       // stage buffers: loads run two stages ahead

template <bool kAtomicDq>
struct WideSmem {
  static constexpr int kTileBytes = kTile * kD * 2;   // one (64, 128) sw128 tile
  static constexpr int kDsBytes = kTile * kTile * 2;  // dS^T (64 keys, 64 queries) sw128
  static constexpr int kDqBytes = kTile * kD * 4;     // dQ staging (64, 128) fp32
  // K0 | K1 | V0 | V1 | Q[3] | dO[3] | dS^T[2] | lse2 (3, 64) | delta (3, 64) |
  // masks (3 buffers, 2 warpgroups, 64) u64 | the two WideTiles | (atomic dQ) the dQ staging;
  // + 1 KB to align the dynamic base to 1024 bytes (~182 KB in all, ~214 KB with the staging).
  static constexpr int kDs = (4 + 2 * kBufs) * kTileBytes;
  static constexpr int kStats = kDs + 2 * kDsBytes;
  static constexpr int kTiles = kStats + 2 * kBufs * kTile * 4 + kBufs * 2 * kTile * 8;
  static constexpr int kDqStage = kTiles + 128;
  static constexpr int kBytes = kDqStage + (kAtomicDq ? kDqBytes : 0) + 1024;
  static_assert(kTileBytes % 1024 == 0 && kDsBytes % 1024 == 0, "sw128 tiles stay aligned");
  static_assert(kDqStage % 16 == 0, "bulk reductions read 16-byte aligned shared memory");
  static_assert(kBytes <= 227 * 1024, "one CTA an SM (an H100 gives a block 227 KB)");
};

template <bool kAtomicDq>
__global__ void __launch_bounds__(kThreads, 1)
    dkdv_wgmma_wide_kernel(PlanView p, Dims d, bf16_t* __restrict__ dk, bf16_t* __restrict__ dv,
                           float* __restrict__ dq_acc, const bf16_t* __restrict__ q,
                           const bf16_t* __restrict__ k, const bf16_t* __restrict__ v,
                           const bf16_t* __restrict__ dout, const float* __restrict__ stats) {
#if NPR_SM90A_DEVICE_CODE
  using S = WideSmem<kAtomicDq>;
  constexpr int ND = kD / 8;  // n8 fragments of a (16, D) row block
  NPR_DYNAMIC_SHARED(smem_raw);
  const uint32_t raw = static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw));
  const uint32_t sbase = (raw + 1023u) & ~1023u;
  unsigned char* const sgen = smem_raw + (sbase - raw);  // the same bytes, generic pointer
  const auto k_tile = [&](int w) { return sbase + w * S::kTileBytes; };
  const auto v_tile = [&](int w) { return sbase + (2 + w) * S::kTileBytes; };
  const auto q_tile = [&](int b) { return sbase + (4 + b) * S::kTileBytes; };
  const auto do_tile = [&](int b) { return sbase + (4 + kBufs + b) * S::kTileBytes; };
  const auto ds_tile = [&](int w) { return sbase + S::kDs + w * S::kDsBytes; };
  unsigned char* const ds_gen = sgen + S::kDs;                                  // dS^T[0], [1]
  float* const lse_s = reinterpret_cast<float*>(sgen + S::kStats);              // (3, 64) lse2
  float* const del_s = lse_s + kBufs * kTile;                                   // (3, 64) delta
  uint64_t* const mask_s = reinterpret_cast<uint64_t*>(del_s + kBufs * kTile);  // (3, 2, 64)
  float* const dq_stage = reinterpret_cast<float*>(sgen + S::kDqStage);  // tile_dq_index order

  const int kvh = static_cast<int>(blockIdx.x % d.kv_heads);
  const int64_t g0 = 2 * static_cast<int64_t>(blockIdx.x / d.kv_heads);
  const WideTile* const ts = share_wide_tiles(sgen + S::kTiles, p, p.col_ptr, g0);
  const WideTile& t0 = ts[0];
  const WideTile& t1 = ts[1];
  const int tid = threadIdx.x, wg = tid / 128, wtid = tid % 128;
  const int lane = tid % 32, warp = wtid / 32;  // warp within the warpgroup
  const int g8 = lane >> 2, c4 = lane & 3;
  const int64_t ldk = static_cast<int64_t>(d.kv_heads) * kD;
  const int64_t ldq = static_cast<int64_t>(d.heads) * kD;
  const WideTile& mine = ts[wg];

  // Each warpgroup loads its own tile's K and V.
  wgmma::load_tile_sw128<kTile, kD, 128>(k_tile(wg), k + mine.start * ldk + kvh * kD, ldk, mine.n,
                                         wtid);
  wgmma::load_tile_sw128<kTile, kD, 128>(v_tile(wg), v + mine.start * ldk + kvh * kD, ldk, mine.n,
                                         wtid);
  // A stage's shared inputs into buffer buf, by all 256 threads (cp.async; the caller commits):
  // Q and dO of its query tile and head, lse2 and delta (threads 0..127, zeros past nq), and
  // each seeing warpgroup's mask words when its pair is PARTIAL (threads 128..191).
  const auto load_stage = [&](const WideStage& s, int buf) {
    wgmma::load_tile_sw128<kTile, kD, kThreads>(q_tile(buf), q + s.start * ldq + s.h * kD, ldq, s.n,
                                                tid);
    wgmma::load_tile_sw128<kTile, kD, kThreads>(do_tile(buf), dout + s.start * ldq + s.h * kD, ldq,
                                                s.n, tid);
    if (tid < 128) {
      const int r = tid % kTile;
      const bool ok = r < s.n;
      const int row = tid < kTile ? s.h : d.heads + s.h;
      cp_async_4z((tid < kTile ? lse_s : del_s) + buf * kTile + r,
                  stats + row * p.tokens + s.start + (ok ? r : 0), ok);
    } else if (tid < 192) {
      const int w = (tid - 128) / 32, c = (tid - 128) % 32;
      if (s.act(w) && s.pair(w).partial >= 0)
        cp_async_16z(mask_s + (buf * 2 + w) * kTile + 2 * c, p.masks + s.pair(w).partial + 2 * c,
                     true);
    }
  };

  float dka[ND][4], dva[ND][4];  // this warp's 16 key rows of dK, dV (fp32)
#pragma unroll
  for (int j = 0; j < ND; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) dka[j][e] = dva[j][e] = 0.0f;
  const int kr = warp * 16;
  const uint64_t kd0 = wgmma::k_major_desc(k_tile(wg), kTile, 0);  // K, V as A (K-major)
  const uint64_t vd0 = wgmma::k_major_desc(v_tile(wg), kTile, 0);

  // The atomic dQ: the staged block of the last stage (its query tile, -1 for none, and head),
  // added into dq_acc by thread 0 once a CTA barrier has passed every thread's part of it.
  int64_t staged_g = -1;
  int staged_h = 0;
  const auto add_staged = [&]() {
    if (staged_g < 0) return;
    bulk::add_f32(dq_acc + (staged_g * d.heads + staged_h) * (kTile * kD), sbase + S::kDqStage,
                  S::kDqBytes);
    bulk::commit();
  };

  // Stages 0 and 1 in flight before the loop; stage s + 2 is loaded once every thread has passed
  // stage s's barrier, i.e. is done with stage s - 1, whose buffer it takes: one barrier a stage.
  WideCursor cur{t0.c0, t1.c0, 0};
  WideStage stage = wide_stage(p.col_pairs, t0, t1, cur, kvh * d.group);
  {
    if (stage.live) load_stage(stage, 0);
    cp_async_commit();
    WideCursor nc = cur;
    advance(nc, stage, d.group);
    const WideStage next = wide_stage(p.col_pairs, t0, t1, nc, kvh * d.group);
    if (next.live) load_stage(next, 1);
    cp_async_commit();
  }
  for (int64_t s = 0; stage.live; ++s) {
    cp_async_wait<1>();  // stage s landed (s + 1 may still be in flight)
    wgmma::fence_proxy_async_shared();
    __syncthreads();
    if constexpr (kAtomicDq)
      if (tid == 0) add_staged();  // stage s - 1's dQ block, staged and fenced by every thread
    {  // stage s + 2's loads; the bookkeeping is read again where needed (fewer live registers)
      WideCursor nc = cur;
      advance(nc, stage, d.group);
      const WideStage n1 = wide_stage(p.col_pairs, t0, t1, nc, kvh * d.group);
      advance(nc, n1, d.group);
      const WideStage n2 = wide_stage(p.col_pairs, t0, t1, nc, kvh * d.group);
      if (n1.live && n2.live) load_stage(n2, static_cast<int>((s + 2) % kBufs));
      cp_async_commit();
    }
    const int buf = static_cast<int>(s % kBufs);
    const int nq = stage.n;
    const float* L = lse_s + buf * kTile;
    const float* Dl = del_s + buf * kTile;

    const bool active = stage.act(wg);
    if (active) {  // this warpgroup's stage: the one-warpgroup kernel's
      const uint64_t* const M = mask_s + (buf * 2 + wg) * kTile;
      const bool full = stage.pair(wg).partial < 0;
      const DkdvStageRows rows{L, Dl, M, full, nq, mine.n, kr, g8, c4, d.sl2};
      dkdv_warpgroup_stage<kD>(dka, dva, kd0, vd0, q_tile(buf), do_tile(buf), rows,
                               [&](const uint32_t(&pd)[4][4]) {
                                 // dS^T into this warpgroup's tile while dK runs.
                                 if constexpr (kAtomicDq)
                                   store_ds_tile(ds_gen + wg * S::kDsBytes, pd, kr, g8, c4);
                               });
    }
    if constexpr (kAtomicDq) {
      if (!active) {  // zeros for the tile that does not see this stage's queries
        uint4* const z = reinterpret_cast<uint4*>(ds_gen + wg * S::kDsBytes);
#pragma unroll
        for (int i = 0; i < S::kDsBytes / 16 / 128; ++i) z[wtid + i * 128] = make_uint4(0, 0, 0, 0);
        wgmma::fence_proxy_async_shared();
      }
      if (tid == 0) bulk::wait_read<0>();  // the copy engine is done with the staging buffer
      __syncthreads();                     // both dS^T tiles written, and the staging buffer free
      // dQ (64 queries, dims 64 wg ..) = dS_0 K_0 + dS_1 K_1 over the 128 keys: dS M-major, K
      // N-major (column block wg); this warp's 16 query rows go to the sums. Both tiles always
      // (no branch ptxas could take for divergent); an absent or unseeing tile's dS^T is zero.
      float c[8][4];
      wgmma::fence();
#pragma unroll
      for (int w = 0; w < 2; ++w) {
        const uint64_t sd0 = wgmma::n_major_desc(ds_tile(w), kTile, 0);
        const uint64_t kn0 =
            wgmma::n_major_desc(k_tile(w) + wg * wgmma::column_block_stride(kTile), kTile, 0);
#pragma unroll
        for (int t = 0; t < 4; ++t) {
          const uint32_t step = wgmma::n_major_step(16 * t);
          if (w == 0 && t == 0)
            wgmma::wgmma_m64n64k16_ss_tt_first(c, sd0, kn0);
          else
            wgmma::wgmma_m64n64k16_ss_tt(c, wgmma::desc_plus(sd0, step),
                                         wgmma::desc_plus(kn0, step), 1);
        }
      }
      wgmma::commit();
      wgmma::wait<0>();
      wgmma::fence_operands(c);
      // This warpgroup's dims into the staging buffer in tile_dq_index order, as dq_acc's
      // block has them (rows past nq too: never read back).
#pragma unroll
      for (int half = 0; half < 2; ++half)
#pragma unroll
        for (int j = 0; j < 8; ++j)
          *reinterpret_cast<float2*>(dq_stage + tile_dq_index(wg, warp, half, j, lane)) =
              make_float2(c[j][2 * half], c[j][2 * half + 1]);
      wgmma::fence_proxy_async_shared();  // the bulk reduction reads it through the async proxy
      staged_g = stage.g;
      staged_h = stage.h;
    }
    advance(cur, stage, d.group);
    stage = wide_stage(p.col_pairs, t0, t1, cur, kvh * d.group);
  }
  cp_async_wait<0>();
  if constexpr (kAtomicDq) {
    __syncthreads();  // the last stage's dQ block is staged and fenced by every thread
    if (tid == 0) {
      add_staged();
      bulk::wait_all<0>();  // no reduction outlives the CTA's shared memory
    }
  }

  // Rows of this warp's accumulators -> dK (scaled), dV.
  store_acc<kD>(dk + mine.start * ldk + kvh * kD, ldk, dka, kr, mine.n, d.scale);
  store_acc<kD>(dv + mine.start * ldk + kvh * kD, ldk, dva, kr, mine.n, 1.0f);
#else
  __trap();  // built for another architecture: the host never launches it there
#endif
}

template <bool kAtomicDq>
Status launch_wide(cudaStream_t st, const PlanView& p, const Dims& d, void* dk, void* dv,
                   float* dq_acc, const void* dout, const void* q, const void* k, const void* v,
                   const float* stats) {
  const auto blocks = static_cast<unsigned>((p.tiles + 1) / 2 * d.kv_heads);
  return launch_with_shared(dkdv_wgmma_wide_kernel<kAtomicDq>, blocks, kThreads,
                            WideSmem<kAtomicDq>::kBytes, st,
                            "attention backward: dK/dV kernel (sm_90a wgmma, 128 keys a CTA)", p, d,
                            static_cast<bf16_t*>(dk), static_cast<bf16_t*>(dv), dq_acc,
                            static_cast<const bf16_t*>(q), static_cast<const bf16_t*>(k),
                            static_cast<const bf16_t*>(v), static_cast<const bf16_t*>(dout), stats);
}

}  // namespace

Status attention_backward_dkdv_wgmma_wide(void* stream, const attn_bwd::PlanView& p,
                                          const attn_bwd::Dims& d, void* dk, void* dv,
                                          float* dq_acc, const void* dout, const void* q,
                                          const void* k, const void* v, const float* stats) {
  if (d.dim != kD)
    return Status::invalid("attention_backward_dkdv_wgmma_wide: head_dim " + std::to_string(d.dim) +
                           " (128 only)");
  auto st = static_cast<cudaStream_t>(stream);
  return dq_acc ? launch_wide<true>(st, p, d, dk, dv, dq_acc, dout, q, k, v, stats)
                : launch_wide<false>(st, p, d, dk, dv, dq_acc, dout, q, k, v, stats);
}

}  // namespace npr
