// attention_backward_dq_wgmma_wide (parallel_attention_wgmma.h): the deterministic dQ kernel of
// the fused block-sparse attention backward on Hopper's warpgroup MMA for head_dim 128, two
// query tiles (128 queries) a CTA, compiled for sm_90a only.
//
// Why: the one-warpgroup dQ kernel (parallel_attention_bwd_dq_sm90a.cu) loads a (64, 128) K and
// V tile, 32 KB, for every 3.1 MFLOP of a stage, a worse ratio than the dK / dV kernel's. Here
// two warpgroups, one per query tile, share each stage's K and V: half the traffic a FLOP. By
// count its SS products (S, dP: 64 KB of shared reads a stage) and the cp.async writes would
// also keep the shared-memory port busier than the tensor cores; each thread holds its Q rows
// as A fragments instead (32 registers), so S reads only K.
//
// The CTA owns query tiles 2 j and 2 j + 1 (parallel_attention_bwd_wide.cuh; pairs are launched
// last first, as the one-warpgroup kernel's tiles are, since late tiles have the longest row
// lists) for one head, warpgroup w the tile 2 j + w with its Q, dO, lse2 and delta resident.
// The stages walk the union of the two row lists (key tiles, ascending); a warpgroup whose tile
// does not see a stage's key tile skips that stage's MMAs. Each warpgroup's stage is the
// one-warpgroup kernel's, the same MMAs in the same order, so dQ comes out bit-identical to it.
// K and V buffers are a ring of three, loaded two stages ahead, one CTA barrier a stage. Not here:
// head_dim 64 (the one-warpgroup kernel serves it), TMA, a producer warp.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <string>

#include "core/cuda_check.cuh"
#include "core/cuda_launch.cuh"
#include "core/dynamic_shared.cuh"
#include "kernels/mma_bf16.cuh"
#include "kernels/parallel_attention_bwd.cuh"
#include "kernels/parallel_attention_bwd_stage_sm90a.cuh"
#include "kernels/parallel_attention_bwd_tc.cuh"
#include "kernels/parallel_attention_bwd_wide.cuh"
#include "kernels/parallel_attention_wgmma.h"
#include "kernels/wgmma.cuh"

namespace npr {

namespace {

using namespace attn_bwd;
using bf16_t = __nv_bfloat16;

constexpr int kD = 128;        // the head dim this kernel takes
constexpr int kThreads = 256;  // warpgroup w (threads 128 w ..): query tile 2 j + w
constexpr int kBufs = 3;       // stage buffers: loads run two stages ahead

struct DqWideSmem {
  static constexpr int kTileBytes = kTile * kD * 2;  // one (64, 128) sw128 tile
  // dO0 | dO1 | K[3] | V[3] | the two WideTiles; + 1 KB to align the dynamic base (~129 KB in
  // all; Q lives in registers).
  static constexpr int kTiles = (2 + 2 * kBufs) * kTileBytes;
  static constexpr int kBytes = kTiles + 128 + 1024;
  static_assert(kTileBytes % 1024 == 0, "sw128 tiles stay aligned");
};

__global__ void __launch_bounds__(kThreads, 1)
    dq_wgmma_wide_kernel(PlanView p, Dims d, bf16_t* __restrict__ dq, const bf16_t* __restrict__ q,
                         const bf16_t* __restrict__ k, const bf16_t* __restrict__ v,
                         const bf16_t* __restrict__ dout, const float* __restrict__ stats) {
#if NPR_SM90A_DEVICE_CODE
  using S = DqWideSmem;
  constexpr int ND = kD / 8;  // n8 fragments of a (16, D) row block
  NPR_DYNAMIC_SHARED(smem_raw);
  const uint32_t raw = static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw));
  const uint32_t sbase = (raw + 1023u) & ~1023u;
  unsigned char* const sgen = smem_raw + (sbase - raw);  // the same bytes, generic pointer
  const auto do_tile = [&](int w) { return sbase + w * S::kTileBytes; };
  const auto k_tile = [&](int b) { return sbase + (2 + 2 * b) * S::kTileBytes; };
  const auto v_tile = [&](int b) { return sbase + (3 + 2 * b) * S::kTileBytes; };  // b < kBufs

  // Pairs of query tiles late in the plan have the longest row lists: launch them first.
  const int64_t pairs = (p.tiles + 1) / 2;
  const int64_t g0 = 2 * (pairs - 1 - blockIdx.x / d.heads);
  const int h = static_cast<int>(blockIdx.x % d.heads), kvh = h / d.group;
  const WideTile* const ts = share_wide_tiles(sgen + S::kTiles, p, p.row_ptr, g0);
  const WideTile& t0 = ts[0];
  const WideTile& t1 = ts[1];
  const int tid = threadIdx.x, wg = tid / 128, wtid = tid % 128;
  const int lane = tid % 32, warp = wtid / 32;  // warp within the warpgroup
  const int g8 = lane >> 2, c4 = lane & 3;
  const WideTile& mine = ts[wg];
  const int nq = mine.n;
  const int64_t qstart = mine.start;
  const int64_t ldk = static_cast<int64_t>(d.kv_heads) * kD;
  const int64_t ldq = static_cast<int64_t>(d.heads) * kD;

  // Each warpgroup loads its own tile's dO (its Q goes to registers below).
  wgmma::load_tile_sw128<kTile, kD, 128>(do_tile(wg), dout + qstart * ldq + h * kD, ldq, nq, wtid);
  // A stage's K and V tiles into buffer b, by all 256 threads (the caller commits).
  const auto load_stage = [&](const WideStage& s, int b) {
    wgmma::load_tile_sw128<kTile, kD, kThreads>(k_tile(b), k + s.start * ldk + kvh * kD, ldk, s.n,
                                                tid);
    wgmma::load_tile_sw128<kTile, kD, kThreads>(v_tile(b), v + s.start * ldk + kvh * kD, ldk, s.n,
                                                tid);
  };

  // This thread's two query rows (fragment rows g8, g8 + 8 of its warp): lse2 and delta.
  const DqThreadRows tr = dq_thread_rows(stats, p, d, h, qstart, nq, warp, g8);
  float dqa[ND][4];  // this warp's 16 query rows of dQ (fp32)
#pragma unroll
  for (int j = 0; j < ND; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) dqa[j][e] = 0.0f;
  const uint64_t od0 = wgmma::k_major_desc(do_tile(wg), kTile, 0);  // dO as A (K-major)
  // Q as A fragments in registers, k-step kk = dims 16 kk .. 16 kk + 15 (zeros past nq), read
  // once from global memory: S then reads only K from shared memory.
  uint32_t qf[kD / 16][4];
#pragma unroll
  for (int kk = 0; kk < kD / 16; ++kk)
#pragma unroll
    for (int x = 0; x < 4; ++x) {
      const int r = warp * 16 + g8 + (x & 1) * 8, c = 16 * kk + 2 * c4 + (x >> 1) * 8;
      qf[kk][x] =
          r < nq ? *reinterpret_cast<const uint32_t*>(q + (qstart + r) * ldq + h * kD + c) : 0u;
    }

  // Stages 0 and 1 in flight before the loop; stage s + 2 is loaded once every thread has passed
  // stage s's barrier, i.e. is done with stage s - 1, whose buffer it takes: one barrier a stage.
  WideCursor cur{t0.c0, t1.c0, 0};
  WideStage stage = wide_stage(p.row_pairs, t0, t1, cur, h);
  {
    if (stage.live) load_stage(stage, 0);
    cp_async_commit();
    WideCursor nc = cur;
    advance(nc, stage, 1);
    const WideStage next = wide_stage(p.row_pairs, t0, t1, nc, h);
    if (next.live) load_stage(next, 1);
    cp_async_commit();
  }
  for (int64_t s = 0; stage.live; ++s) {
    cp_async_wait<1>();  // stage s (and dO on the first pass) landed
    wgmma::fence_proxy_async_shared();
    __syncthreads();
    {  // stage s + 2's loads; the bookkeeping is read again where needed (fewer live registers)
      WideCursor nc = cur;
      advance(nc, stage, 1);
      const WideStage n1 = wide_stage(p.row_pairs, t0, t1, nc, h);
      advance(nc, n1, 1);
      const WideStage n2 = wide_stage(p.row_pairs, t0, t1, nc, h);
      if (n1.live && n2.live) load_stage(n2, static_cast<int>((s + 2) % kBufs));
      cp_async_commit();
    }
    const int b = static_cast<int>(s % kBufs);

    if (stage.act(wg)) {  // this warpgroup's stage: the one-warpgroup kernel's, Q in registers
      uint64_t mw[2];
      const int nk = dq_stage_masks(p, mine.sq, stage.pair(wg), tr.rows, nq, mw);
      dq_warpgroup_stage<kD>(
          dqa,
          [&](float(&sc)[8][4], uint64_t kd0) {
            wgmma::wgmma_m64n64k16_rs_first(sc, qf[0], kd0);
#pragma unroll
            for (int kk = 1; kk < kD / 16; ++kk)
              wgmma::wgmma_m64n64k16_rs(sc, qf[kk],
                                        wgmma::desc_plus(kd0, wgmma::k_major_step(kTile, 16 * kk)));
          },
          od0, k_tile(b), v_tile(b), mw, nk, tr.lse2, tr.delta, c4, d.sl2,
          dense_dq_stage(stage.pair(wg), nk, nq));
    }
    advance(cur, stage, 1);
    stage = wide_stage(p.row_pairs, t0, t1, cur, h);
  }
  cp_async_wait<0>();
  store_acc<kD>(dq + qstart * ldq + h * kD, ldq, dqa, warp * 16, nq, d.scale);
#else
  __trap();  // built for another architecture: the host never launches it there
#endif
}

}  // namespace

Status attention_backward_dq_wgmma_wide(void* stream, const attn_bwd::PlanView& p,
                                        const attn_bwd::Dims& d, void* dq, const void* dout,
                                        const void* q, const void* k, const void* v,
                                        const float* stats) {
  if (d.dim != kD)
    return Status::invalid("attention_backward_dq_wgmma_wide: head_dim " + std::to_string(d.dim) +
                           " (128 only)");
  const auto blocks = static_cast<unsigned>((p.tiles + 1) / 2 * d.heads);
  return launch_with_shared(
      dq_wgmma_wide_kernel, blocks, kThreads, DqWideSmem::kBytes, static_cast<cudaStream_t>(stream),
      "attention backward: dQ kernel (sm_90a wgmma, 128 queries a CTA)", p, d,
      static_cast<bf16_t*>(dq), static_cast<const bf16_t*>(q), static_cast<const bf16_t*>(k),
      static_cast<const bf16_t*>(v), static_cast<const bf16_t*>(dout), stats);
}

}  // namespace npr
