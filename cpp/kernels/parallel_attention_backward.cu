// attention_backward_cuda (parallel_attention_cuda.h): the backward of the fused block-sparse
// attention on the device, recomputing P = exp(scale q.k - lse) from the saved lse.
//
// Three kernels on ctx's stream: (1) per (token, head) row, delta = rowsum(dO * O) and
// lse2 = lse * log2 e, written head-major to the attention scratch; (2) dK, dV: one block per
// (key tile, kv head) walks the tile's column list (query tiles, ascending) and, for each, the
// query heads of the group; (3) dQ: one block per (query tile, head) walks its row list. Every
// output row is written exactly once by one block, sums run in a fixed order and nothing uses
// atomics, so runs are bit-identical and rows a change cannot reach keep their bits (the
// deterministic mode, ctx.deterministic, the default; the other mode is described below).
//
// bf16 with head_dim 64 or 128 (16-byte aligned tensors) runs the tensor-core kernels below,
// FlashAttention-2 backward style: 4 warps, each owning 16 rows of the resident tile (keys for
// dK/dV, queries for dQ), mma.sync m16n8k16 with fp32 accumulators in registers, P and dS turned
// from accumulator fragments into A fragments without touching shared memory, the streamed side
// double-buffered with cp.async (zero-filled past a tile's end), shared rows padded by 16 bytes
// (conflict-free ldmatrix). SKIP tiles are not in the lists; FULL tiles skip the mask words.
// Everything else runs the SIMT kernels of parallel_attention_bwd.cuh.
//
// With ctx.deterministic off, the tensor-core path drops kernel (3): the dK/dV kernel also
// forms dQ = dS K for each stage and adds it into fp32 sums with atomics (FlashAttention-2's
// way), then one pass scales and rounds the sums into dq. That is 5 GEMMs a visible tile pair
// instead of 7 (S and dP are no longer recomputed for dQ), at the price of run-to-run
// differences in dq's last bits and T x heads x D x 4 bytes of scratch.
//
// With ctx.attention_wgmma on, on an sm_90 device, the dK / dV kernel (with or without the
// atomic dQ) is the wgmma one of parallel_attention_bwd_sm90a.cu, and the deterministic dQ
// kernel that of parallel_attention_bwd_dq_sm90a.cu; with ctx.attention_wgmma_keys 128 at
// head_dim 128, their two-warpgroup builds (*_wide_sm90a.cu: 128 keys, 128 queries a CTA). The
// wgmma kernels' atomic dQ adds whole (64 queries, D) blocks by bulk reductions, so its sums are
// in tile order (parallel_attention_bwd_tile_dq.cuh) and their own last pass writes dq. Not
// here: the forward (parallel_attention.cu), TMA.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "core/cuda_check.cuh"
#include "core/cuda_dtype.cuh"
#include "core/cuda_launch.cuh"
#include "kernels/mma_bf16.cuh"
#include "kernels/parallel_attention_bwd.cuh"
#include "kernels/parallel_attention_bwd_mma.cuh"
#include "kernels/parallel_attention_bwd_tc.cuh"
#include "kernels/parallel_attention_cuda.h"
#include "kernels/parallel_attention_wgmma.h"

namespace npr {

namespace {

using namespace attn_bwd;
using bf16_t = __nv_bfloat16;

// ---- (1) delta and lse2 ---------------------------------------------------------------------

// stats: lse2 (heads, tokens), then delta (heads, tokens). One warp per (token, head) row.
template <typename T>
__global__ void __launch_bounds__(256)
    stats_kernel(float* __restrict__ stats, const T* __restrict__ dout, const T* __restrict__ out,
                 const float* __restrict__ lse, int64_t tokens, int heads, int D) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * 8 + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= tokens * heads) return;
  float acc = 0.0f;
  for (int c = lane; c < D; c += 32)
    acc = fmaf(to_f32(dout[row * D + c]), to_f32(out[row * D + c]), acc);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if (lane == 0) {
    const int64_t t = row / heads, h = row % heads;
    stats[h * tokens + t] = lse[row] * kLog2e;
    stats[(heads + h) * tokens + t] = acc;
  }
}

// ---- launchers --------------------------------------------------------------------------------

// Whether the backward runs the two-warpgroup sm_90a kernels (128 keys / 128 queries a CTA).
bool wide_path(bool wgmma, bool wide, int64_t D) {
  return wgmma && wide && D == 128;
}

// Floats of the atomic dQ's fp32 sums: (tokens, heads, D) in token order for the mma.sync
// kernel, the wgmma kernels' tile order (attention_tile_dq_acc_floats) for theirs.
int64_t dq_acc_floats(const PlanView& p, const Dims& d, bool wgmma) {
  return wgmma ? attention_tile_dq_acc_floats(p.tiles, d.heads, d.dim) : p.tokens * d.heads * d.dim;
}

// dq_acc: null for the deterministic kernels, else dq_acc_floats fp32 of scratch for the
// atomic dQ (zeroed here). wgmma: the dK / dV and dQ kernels are the sm_90a ones
// (parallel_attention_wgmma.h); wide: their two-warpgroup builds (128 keys, 128 queries); ws:
// the deterministic dQ is the warp-specialised one and the deterministic dK / dV kernel takes
// its Q and dO by tensor-map copies.
template <int D>
Status launch_tc(cudaStream_t st, const PlanView& p, const Dims& d, void* dq, void* dk, void* dv,
                 const void* dout, const void* q, const void* k, const void* v, const float* stats,
                 float* dq_acc, bool wgmma, bool wide, bool ws) {
  const auto* bq = static_cast<const bf16_t*>(q);
  const auto* bk = static_cast<const bf16_t*>(k);
  const auto* bv = static_cast<const bf16_t*>(v);
  const auto* bo = static_cast<const bf16_t*>(dout);
  constexpr int kv_smem = dkdv_tc_smem<D>(), q_smem = dq_tc_smem<D>();
  const bool atomic = dq_acc != nullptr;
  const bool two_wg = wide_path(wgmma, wide, D);
  const int64_t n = p.tokens * d.heads * D;  // dq elements
  if (atomic)
    NPR_CUDA_TRY(
        cudaMemsetAsync(dq_acc, 0, static_cast<size_t>(dq_acc_floats(p, d, wgmma)) * 4, st),
        "attention backward: zero the dQ sums");
  // dK, dV (and with dq_acc, the dQ sums).
  if (two_wg) {
    NPR_TRY(attention_backward_dkdv_wgmma_wide(st, p, d, dk, dv, dq_acc, dout, q, k, v, stats));
  } else if (wgmma) {
    NPR_TRY(attention_backward_dkdv_wgmma(st, p, d, dk, dv, dq_acc, dout, q, k, v, stats,
                                          ws && !atomic));
  } else {
    auto* kernel = atomic ? dkdv_tc_kernel<D, true> : dkdv_tc_kernel<D, false>;
    NPR_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kv_smem),
                 "attention backward: dK/dV shared memory");
    NPR_LAUNCH(static_cast<unsigned>(p.tiles * d.kv_heads), kTcThreads, kv_smem, st, kernel)
    (p, d, static_cast<bf16_t*>(dk), static_cast<bf16_t*>(dv), dq_acc, bq, bk, bv, bo, stats);
    NPR_TRY(
        cuda_launch_status(atomic ? "attention backward: dK/dV kernel with atomic dQ (tensor cores)"
                                  : "attention backward: dK/dV kernel (bf16, tensor cores)"));
  }
  if (atomic && wgmma) return attention_backward_dq_from_tile_acc(st, p, d, dq, dq_acc);
  if (atomic) {  // dq = bf16(sums * scale)
    NPR_LAUNCH(dq_from_acc_blocks(n), kDqFromAccThreads, 0, st, dq_from_acc_kernel)
    (static_cast<bf16_t*>(dq), dq_acc, n, d.scale);
    return cuda_launch_status("attention backward: dQ from its fp32 sums");
  }
  if (two_wg) return attention_backward_dq_wgmma_wide(st, p, d, dq, dout, q, k, v, stats);
  if (ws) return attention_backward_dq_wgmma_ws(st, p, d, dq, dout, q, k, v, stats);
  if (wgmma) return attention_backward_dq_wgmma(st, p, d, dq, dout, q, k, v, stats);
  NPR_CUDA_TRY(
      cudaFuncSetAttribute(dq_tc_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, q_smem),
      "attention backward: dQ shared memory");
  NPR_LAUNCH(static_cast<unsigned>(p.tiles * d.heads), kTcThreads, q_smem, st, dq_tc_kernel<D>)
  (p, d, static_cast<bf16_t*>(dq), bq, bk, bv, bo, stats);
  return cuda_launch_status("attention backward: dQ kernel (bf16, tensor cores)");
}

template <typename T, int kMaxD>
Status launch_simt(cudaStream_t st, const PlanView& p, const Dims& d, void* dq, void* dk, void* dv,
                   const void* dout, const void* q, const void* k, const void* v,
                   const float* stats) {
  const auto* tq = static_cast<const T*>(q);
  const auto* tk = static_cast<const T*>(k);
  const auto* tv = static_cast<const T*>(v);
  const auto* to = static_cast<const T*>(dout);
  const int smem = static_cast<int>(simt_smem_bytes(d.dim));
  NPR_CUDA_TRY(cudaFuncSetAttribute(dkdv_simt_kernel<T, kMaxD>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, smem),
               "attention backward: dK/dV shared memory (SIMT)");
  NPR_CUDA_TRY(cudaFuncSetAttribute(dq_simt_kernel<T, kMaxD>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, smem),
               "attention backward: dQ shared memory (SIMT)");
  NPR_LAUNCH(static_cast<unsigned>(p.tiles * d.kv_heads), kSimtThreads, smem, st,
             dkdv_simt_kernel<T, kMaxD>)
  (p, d, static_cast<T*>(dk), static_cast<T*>(dv), tq, tk, tv, to, stats);
  NPR_TRY(cuda_launch_status("attention backward: dK/dV kernel (SIMT)"));
  NPR_LAUNCH(static_cast<unsigned>(p.tiles * d.heads), kSimtThreads, smem, st,
             dq_simt_kernel<T, kMaxD>)
  (p, d, static_cast<T*>(dq), tq, tk, tv, to, stats);
  return cuda_launch_status("attention backward: dQ kernel (SIMT)");
}

template <typename T>
Status launch_simt_any(cudaStream_t st, const PlanView& p, const Dims& d, void* dq, void* dk,
                       void* dv, const void* dout, const void* q, const void* k, const void* v,
                       const float* stats) {
  if (d.dim <= 32) return launch_simt<T, 32>(st, p, d, dq, dk, dv, dout, q, k, v, stats);
  if (d.dim <= 64) return launch_simt<T, 64>(st, p, d, dq, dk, dv, dout, q, k, v, stats);
  if (d.dim <= 128) return launch_simt<T, 128>(st, p, d, dq, dk, dv, dout, q, k, v, stats);
  return launch_simt<T, 256>(st, p, d, dq, dk, dv, dout, q, k, v, stats);
}

bool aligned16(const void* ptr) {
  return (reinterpret_cast<uintptr_t>(ptr) & 15u) == 0;
}

}  // namespace

Status attention_backward_cuda(CudaContext& ctx, DevDType t, const DeviceAttentionPlan& plan,
                               void* dq, void* dk, void* dv, const void* dout, const void* q,
                               const void* k, const void* v, const void* out, const float* lse,
                               const AttentionShape& shape) {
  const int64_t H = shape.heads, KV = shape.kv_heads, D = shape.head_dim;
  if (H <= 0 || KV <= 0 || D <= 0 || H % KV != 0)
    return Status::invalid("attention_backward_cuda: heads (" + std::to_string(H) +
                           ") must be a positive multiple of kv_heads (" + std::to_string(KV) +
                           ") and head_dim (" + std::to_string(D) + ") positive");
  if (D > 256 || H > 65535)
    return Status::out_of_range("attention_backward_cuda: head_dim " + std::to_string(D) +
                                " (at most 256) or heads " + std::to_string(H) +
                                " (at most 65535) too large");
  const int64_t T = plan.tokens(), tiles = plan.tiles();
  if (T == 0) return Status::ok();
  if (tiles <= 0 || plan.row_ptr.get() == nullptr)
    return Status::invalid(
        "attention_backward_cuda: the device plan is empty; upload it with "
        "DeviceAttentionPlan::upload first");
  if (!dq || !dk || !dv || !dout || !q || !k || !v || !out || !lse)
    return Status::invalid("attention_backward_cuda: null device pointer");
  if ((tiles * std::max(H, KV)) > 0x7fffffffLL)
    return Status::out_of_range("attention_backward_cuda: " + std::to_string(tiles) +
                                " tiles x heads exceed one grid");

  const PlanView p{plan.seq_start.as<int64_t>(),
                   plan.seq_len.as<int64_t>(),
                   plan.seq_tile0.as<int64_t>(),
                   plan.tile_seq.as<int32_t>(),
                   plan.row_ptr.as<int64_t>(),
                   plan.col_ptr.as<int64_t>(),
                   plan.row_pairs.as<AttnTilePair>(),
                   plan.col_pairs.as<AttnTilePair>(),
                   plan.masks.as<uint64_t>(),
                   tiles,
                   T};
  const Dims d{static_cast<int>(H), static_cast<int>(KV), static_cast<int>(H / KV),
               static_cast<int>(D), shape.scale,          shape.scale * kLog2e};
  // The tensor-core path with ctx.deterministic off sums dQ with atomics into fp32 scratch.
  const bool tc = t == DevDType::kBF16 && (D == 64 || D == 128) && aligned16(q) && aligned16(k) &&
                  aligned16(v) && aligned16(dout) && aligned16(dq) && aligned16(dk) &&
                  aligned16(dv);
  const bool atomic_dq = tc && !ctx.deterministic;
  const bool wgmma = tc && ctx.attention_wgmma != 0 && attention_wgmma_available();
  const bool wide = ctx.attention_wgmma_keys == 128;
  // The forward's warp-specialised variants take the warp-specialised dQ kernel too (even groups).
  const bool ws = wgmma && !wide && ctx.attention_wgmma >= 7 && d.group % 2 == 0;
  const int64_t stats_bytes = (2 * H * T * 4 + 255) / 256 * 256;
  const int64_t acc_bytes = atomic_dq ? dq_acc_floats(p, d, wgmma) * 4 : 0;
  void* scratch = nullptr;
  NPR_TRY(ctx.scratch(CudaContext::kScratchAttention, stats_bytes + acc_bytes, &scratch));
  float* stats = static_cast<float*>(scratch);  // (2, heads, tokens): lse2, then delta
  float* dq_acc = atomic_dq ? reinterpret_cast<float*>(static_cast<char*>(scratch) + stats_bytes)
                            : nullptr;  // dq_acc_floats
  auto st = static_cast<cudaStream_t>(ctx.stream());

  const unsigned stat_blocks = static_cast<unsigned>((T * H + 7) / 8);
  if (t == DevDType::kF32) NPR_LAUNCH(stat_blocks, 256, 0, st, stats_kernel<float>)
  (stats, static_cast<const float*>(dout), static_cast<const float*>(out), lse, T, d.heads, d.dim);
  else NPR_LAUNCH(stat_blocks, 256, 0, st, stats_kernel<bf16_t>)(
      stats, static_cast<const bf16_t*>(dout), static_cast<const bf16_t*>(out), lse, T, d.heads,
      d.dim);
  NPR_TRY(cuda_launch_status("attention backward: delta kernel"));

  if (t == DevDType::kF32)
    return launch_simt_any<float>(st, p, d, dq, dk, dv, dout, q, k, v, stats);
  if (tc && D == 64)
    return launch_tc<64>(st, p, d, dq, dk, dv, dout, q, k, v, stats, dq_acc, wgmma, wide, ws);
  if (tc)
    return launch_tc<128>(st, p, d, dq, dk, dv, dout, q, k, v, stats, dq_acc, wgmma, wide, ws);
  return launch_simt_any<bf16_t>(st, p, d, dq, dk, dv, dout, q, k, v, stats);
}

}  // namespace npr
