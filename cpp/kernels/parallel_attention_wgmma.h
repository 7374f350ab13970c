// The Hopper kernels of the fused block-sparse attention: warpgroup MMA (wgmma) instead of
// mma.sync, bf16 with head_dim 64 or 128, on sm_90 devices, in builds whose CUDA architectures
// include 90 (the *_sm90a.cu files are compiled for sm_90a alone; NPR_HAVE_SM90A says they
// were). The forward (parallel_attention_fwd_sm90a.cu, parallel_attention_fwd_pipelined_sm90a.cu;
// even GQA groups) runs when the context's attention_wgmma switch is 1 (pipelined, one CTA an
// SM) or 2 (two CTAs an SM) and attention_wgmma_available says it can; the
// backward's dK / dV kernel (parallel_attention_bwd_sm90a.cu) and, in deterministic mode, its
// dQ kernel (parallel_attention_bwd_dq_sm90a.cu) run whenever the switch is on and they can;
// with attention_wgmma_keys 128 at head_dim 128, their two-warpgroup builds over 128 keys and
// 128 queries (parallel_attention_bwd_wide_sm90a.cu, parallel_attention_bwd_dq_wide_sm90a.cu).
// Other shapes and devices keep the mma.sync kernels.
#pragma once

#include <cstdint>

#include "core/cuda_context.h"
#include "core/status.h"

namespace npr {

namespace attn_fwd {
struct FwdParams;
}
namespace attn_bwd {
struct PlanView;
struct Dims;
}  // namespace attn_bwd

// Whether this build has the sm_90a kernel (defined in parallel_attention.cu without it), and
// whether it also runs here: the current device is an sm_90 one.
bool attention_wgmma_compiled();
bool attention_wgmma_available();

// Launches the forward on `stream` (a cudaStream_t) over `pair_blocks` = tiles x heads / 2 CTAs
// (p as attention_forward_cuda fills it; p.group even, p.head_dim 64 or 128, 16-byte aligned
// tensors), by the context's attention_wgmma value `variant`: 2, the kernel built for two CTAs
// an SM; 1, the one-CTA kernel that pipelines each warpgroup's MMAs and softmax
// (attention_forward_wgmma_pipelined, K/V loaded one tile ahead); 3, the same loading two tiles
// ahead; 4, that with Q held in registers (S's A operand; the pipelined kernel takes
// q_in_registers with ahead 2 only); 5 and 6, variants 1 and 4 with the two warpgroups half a
// tile apart (ping_pong: one's softmax under the other's MMAs); 7, the warp-specialised kernel
// whose K / V (and Q) come by tensor-map copies from a producer warp (attention_forward_wgmma_ws;
// p.tokens set); 8, that with the ping-pong; 9, variant 5 with its K / V by tensor-map copies
// that thread 0 issues after each tile's barrier (no producer warp: a 288-thread CTA leaves 168
// registers a thread, a warp scheduler holding three of its nine warps); 10, the
// warp-specialised kernel over 128 keys a step (attention_forward_wgmma_ws128: a producer
// warpgroup handing its registers to the consumers); 11, that with the ping-pong. Every variant
// but 10 and 11 gives variant 1's sums in its order; those two sum per 128 keys,
// deterministically, 11 with 10's bits. Only where attention_wgmma_available() holds.
Status attention_forward_wgmma(void* stream, const attn_fwd::FwdParams& p, int64_t pair_blocks,
                               int variant);
Status attention_forward_wgmma_pipelined(void* stream, const attn_fwd::FwdParams& p,
                                         int64_t pair_blocks, int ahead, bool q_in_registers,
                                         bool ping_pong = false, bool tma = false);
Status attention_forward_wgmma_ws(void* stream, const attn_fwd::FwdParams& p, int64_t pair_blocks,
                                  bool ping_pong);
Status attention_forward_wgmma_ws128(void* stream, const attn_fwd::FwdParams& p,
                                     int64_t pair_blocks, bool ping_pong);

// The backward's dK / dV kernel on wgmma (parallel_attention_bwd_sm90a.cu), bf16 with head_dim
// 64 or 128 (d.dim), one CTA per (key tile, kv head) on `stream` (a cudaStream_t), over the
// stats (lse2, delta) attention_backward_cuda computed. dq_acc null: dK, dV only (the dQ kernel
// below runs next, deterministic); else also dQ = dS K added into dq_acc by bulk reductions,
// attention_tile_dq_acc_floats fp32 in tile order, zeroed by the caller; then
// attention_backward_dq_from_tile_acc writes dq. tma (dq_acc null only): each stage's Q and dO
// come by tensor-map copies (p.tokens rows), the same bits; the backward takes it with the
// forward's warp-specialised variants (attention_wgmma 7, 8). Only where
// attention_wgmma_available() holds.
Status attention_backward_dkdv_wgmma(void* stream, const attn_bwd::PlanView& p,
                                     const attn_bwd::Dims& d, void* dk, void* dv, float* dq_acc,
                                     const void* dout, const void* q, const void* k, const void* v,
                                     const float* stats, bool tma = false);

// The same dK / dV (and optional atomic dQ) on wgmma with two warpgroups a CTA, one CTA per
// pair of key tiles (128 keys) and kv head, sharing each stage's Q and dO loads
// (parallel_attention_bwd_wide_sm90a.cu): head_dim 128 only; dK and dV bit-identical to the
// one-warpgroup kernel's. Its atomic dQ sums go into dq_acc in the same tile order, each
// stage's (64 queries, 128 dims) block summed over the 128 keys first. Only where
// attention_wgmma_available() holds.
Status attention_backward_dkdv_wgmma_wide(void* stream, const attn_bwd::PlanView& p,
                                          const attn_bwd::Dims& d, void* dk, void* dv,
                                          float* dq_acc, const void* dout, const void* q,
                                          const void* k, const void* v, const float* stats);

// The wgmma kernels' atomic dQ sums: for query tile g of the plan (of `tiles`) and head h, the
// 64 x dim fp32 sums of the tile's query rows at (g heads + h) 64 dim floats, in the order of
// the kernels' accumulator fragments (parallel_attention_bwd_tile_dq.cuh; rows past the tile's
// live length are never read). Head dim 64 or 128.
inline int64_t attention_tile_dq_acc_floats(int64_t tiles, int64_t heads, int64_t dim) {
  return tiles * heads * 64 * dim;
}
// dq (tokens, heads, d.dim) bf16 = the sums in dq_acc (that layout) times d.scale
// (parallel_attention_bwd_tile_dq_sm90a.cu).
Status attention_backward_dq_from_tile_acc(void* stream, const attn_bwd::PlanView& p,
                                           const attn_bwd::Dims& d, void* dq, const float* dq_acc);

// The backward's deterministic dQ kernel on wgmma (parallel_attention_bwd_dq_sm90a.cu), bf16
// with head_dim 64 or 128: one CTA per (query tile, head) on `stream`, dq (tokens, heads, D)
// overwritten (scaled), over the same stats. Only where attention_wgmma_available() holds.
Status attention_backward_dq_wgmma(void* stream, const attn_bwd::PlanView& p,
                                   const attn_bwd::Dims& d, void* dq, const void* dout,
                                   const void* q, const void* k, const void* v, const float* stats);

// The same dQ warp-specialised (parallel_attention_bwd_dq_ws_sm90a.cu): one CTA per (query tile,
// pair of query heads of one kv head; d.group even), a consumer warpgroup a head sharing each
// stage's K and V, which a producer warp brings by tensor-map copies (p.tokens rows); dq
// bit-identical to the one-warpgroup kernel's. The backward takes it with the forward's
// warp-specialised variants (attention_wgmma 7, 8). Only where attention_wgmma_available().
Status attention_backward_dq_wgmma_ws(void* stream, const attn_bwd::PlanView& p,
                                      const attn_bwd::Dims& d, void* dq, const void* dout,
                                      const void* q, const void* k, const void* v,
                                      const float* stats);

// The same dQ with two warpgroups a CTA, one CTA per pair of query tiles (128 queries) and head,
// sharing each stage's K and V loads (parallel_attention_bwd_dq_wide_sm90a.cu): head_dim 128
// only; dq bit-identical to the one-warpgroup kernel's. Only where attention_wgmma_available().
Status attention_backward_dq_wgmma_wide(void* stream, const attn_bwd::PlanView& p,
                                        const attn_bwd::Dims& d, void* dq, const void* dout,
                                        const void* q, const void* k, const void* v,
                                        const float* stats);

}  // namespace npr
