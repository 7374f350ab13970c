// attention_backward_dq_wgmma (parallel_attention_wgmma.h): the dQ kernel of the fused
// block-sparse attention backward on Hopper's warpgroup MMA, compiled for sm_90a only: the
// deterministic mode's dQ (no atomics: every dQ element summed in one fixed order) when the
// dK / dV kernel is the wgmma one too.
//
// The decomposition is dq_tc_kernel's (parallel_attention_backward.cu): one CTA (one warpgroup,
// 4 warps x 16 query rows) per (query tile, head), items last tile first, Q and dO resident,
// the tile's row list walked in order with K and V double-buffered by cp.async. Per stage:
//   S = Q K^T, dP = dO V^T        wgmma m64n64k16, all operands K-major in shared memory;
//   P = exp2(S scale log2 e - lse2), dS = P (dP - delta)   in registers, masked as the
//                                 mma.sync kernel masks;
//   dQ += dS K                    wgmma m64nDk16, dS from registers (bf16), K N-major.
// The stage itself is dq_warpgroup_stage (parallel_attention_bwd_stage_sm90a.cuh), which the
// two-warpgroup build runs too: S and dP are two commit groups, P's exponentials computed while
// dP is in flight. Tiles are 128-byte swizzled (wgmma_layout.h), cp.async writes published to
// the async proxy by a proxy fence before each barrier. Sums associate differently inside the
// tensor core than in mma.sync, so dq agrees with the mma.sync kernel within fp32 rounding of
// the sums, not bit for bit; run to run it is bit-identical. Not here: TMA, overlap of a
// stage's dQ product with the next stage's scores.
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
#include "kernels/parallel_attention_wgmma.h"
#include "kernels/wgmma.cuh"

namespace npr {

namespace {

using namespace attn_bwd;
using bf16_t = __nv_bfloat16;

constexpr int kThreads = 128;  // one warpgroup: warp w holds query rows 16 w .. 16 w + 15

template <int D>
struct DqSmem {
  static constexpr int kTileBytes = kTile * D * 2;  // one (64, D) sw128 tile
  // Q | dO | K0 | V0 | K1 | V1; + 1 KB to align the dynamic base to 1024 bytes.
  static constexpr int kBytes = 6 * kTileBytes + 1024;
  static_assert(kTileBytes % 1024 == 0, "sw128 tiles stay aligned");
};

template <int D>
__global__ void __launch_bounds__(kThreads, 2)
    dq_wgmma_kernel(PlanView p, Dims d, bf16_t* __restrict__ dq, const bf16_t* __restrict__ q,
                    const bf16_t* __restrict__ k, const bf16_t* __restrict__ v,
                    const bf16_t* __restrict__ dout, const float* __restrict__ stats) {
#if NPR_SM90A_DEVICE_CODE
  using S = DqSmem<D>;
  constexpr int ND = D / 8;  // n8 fragments of a (16, D) row block
  NPR_DYNAMIC_SHARED(smem_raw);
  const uint32_t raw = static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw));
  const uint32_t sbase = (raw + 1023u) & ~1023u;
  const uint32_t q_tile = sbase, do_tile = sbase + S::kTileBytes;
  const auto k_tile = [&](int b) { return sbase + (2 + 2 * b) * S::kTileBytes; };
  const auto v_tile = [&](int b) { return sbase + (3 + 2 * b) * S::kTileBytes; };

  // Query tiles late in a sequence have the longest row lists: launch them first.
  const int64_t g = p.tiles - 1 - blockIdx.x / d.heads;
  const int h = static_cast<int>(blockIdx.x % d.heads), kvh = h / d.group;
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int g8 = lane >> 2, c4 = lane & 3;
  const SeqSpan sq = seq_of(p, g);
  const int64_t qstart = tile_start(sq, g - sq.tile0);
  const int nq = tile_len(sq, qstart);
  const int64_t ldk = static_cast<int64_t>(d.kv_heads) * D, ldq = static_cast<int64_t>(d.heads) * D;
  const int64_t r0 = p.row_ptr[g], stages = p.row_ptr[g + 1] - r0;

  wgmma::load_tile_sw128<kTile, D, kThreads>(q_tile, q + qstart * ldq + h * D, ldq, nq, tid);
  wgmma::load_tile_sw128<kTile, D, kThreads>(do_tile, dout + qstart * ldq + h * D, ldq, nq, tid);
  const auto load_stage = [&](int64_t s, int b) {
    const int64_t kst = tile_start(sq, p.row_pairs[r0 + s].other);
    const int n = tile_len(sq, kst);
    wgmma::load_tile_sw128<kTile, D, kThreads>(k_tile(b), k + kst * ldk + kvh * D, ldk, n, tid);
    wgmma::load_tile_sw128<kTile, D, kThreads>(v_tile(b), v + kst * ldk + kvh * D, ldk, n, tid);
  };

  // This thread's two query rows (fragment rows g8, g8 + 8 of its warp): lse2 and delta.
  const DqThreadRows tr = dq_thread_rows(stats, p, d, h, qstart, nq, warp, g8);
  float dqa[ND][4];  // this warp's 16 query rows of dQ (fp32)
#pragma unroll
  for (int j = 0; j < ND; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) dqa[j][e] = 0.0f;
  const uint64_t qd0 = wgmma::k_major_desc(q_tile, kTile, 0);  // Q, dO as A (K-major)
  const uint64_t od0 = wgmma::k_major_desc(do_tile, kTile, 0);

  if (stages > 0) load_stage(0, 0);
  cp_async_commit();
  for (int64_t s = 0; s < stages; ++s) {
    uint64_t mw[2];
    const AttnTilePair pair = p.row_pairs[r0 + s];
    const int nk = dq_stage_masks(p, sq, pair, tr.rows, nq, mw);
    const bool dense = dense_dq_stage(pair, nk, nq);
    // Stage s (and Q, dO on the first pass) landed; every thread is past stage s - 1, so stage
    // s + 1's loads may take its buffer: one barrier a stage.
    cp_async_wait<0>();
    wgmma::fence_proxy_async_shared();
    __syncthreads();
    if (s + 1 < stages) load_stage(s + 1, static_cast<int>((s + 1) & 1));
    cp_async_commit();
    const int b = static_cast<int>(s & 1);

    dq_warpgroup_stage<D>(
        dqa, [&](float(&sc)[8][4], uint64_t kd0) { wgmma::k_major_product<D>(sc, qd0, kd0); }, od0,
        k_tile(b), v_tile(b), mw, nk, tr.lse2, tr.delta, c4, d.sl2, dense);
  }
  cp_async_wait<0>();
  store_acc<D>(dq + qstart * ldq + h * D, ldq, dqa, warp * 16, nq, d.scale);
#else
  __trap();  // built for another architecture: the host never launches it there
#endif
}

template <int D>
Status launch_dq(cudaStream_t st, const PlanView& p, const Dims& d, void* dq, const void* dout,
                 const void* q, const void* k, const void* v, const float* stats) {
  // Two CTAs of ~97 KB an SM: the launch takes the maximum shared carveout.
  return launch_with_shared(dq_wgmma_kernel<D>, static_cast<unsigned>(p.tiles * d.heads), kThreads,
                            DqSmem<D>::kBytes, st, "attention backward: dQ kernel (sm_90a wgmma)",
                            p, d, static_cast<bf16_t*>(dq), static_cast<const bf16_t*>(q),
                            static_cast<const bf16_t*>(k), static_cast<const bf16_t*>(v),
                            static_cast<const bf16_t*>(dout), stats);
}

}  // namespace

Status attention_backward_dq_wgmma(void* stream, const attn_bwd::PlanView& p,
                                   const attn_bwd::Dims& d, void* dq, const void* dout,
                                   const void* q, const void* k, const void* v,
                                   const float* stats) {
  auto st = static_cast<cudaStream_t>(stream);
  if (d.dim == 64) return launch_dq<64>(st, p, d, dq, dout, q, k, v, stats);
  if (d.dim == 128) return launch_dq<128>(st, p, d, dq, dout, q, k, v, stats);
  return Status::invalid("attention_backward_dq_wgmma: head_dim " + std::to_string(d.dim) +
                         " (64 or 128 only)");
}

}  // namespace npr
