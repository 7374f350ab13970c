// The fused block-sparse parallel attention on the device: the CUDA twin of
// parallel_attention.h, running the SAME AttentionPlan (tiles of kAttnTile tokens classified
// FULL / PARTIAL / SKIP from the Structure once per batch), uploaded once per batch by
// DeviceAttentionPlan and reused by every layer and by backward. SKIP tiles are never loaded.
//
// Flash-style forward with online softmax (lse saved for backward), GQA, packed varlen
// sequences. bf16 mode with head_dim 64 or 128 runs tensor cores (mma.sync m16n8k16, fp32
// accumulation); the fp32 mode and other head dims run a SIMT kernel of the same structure.
// Backward recomputes P from lse: one kernel per (kv head, key tile) sums dK, dV over the tile's
// column list, another per (query tile, head) sums dQ over its row list; no floating-point
// atomics, so every run is bit-identical (the deterministic mode the isolation tests use, on
// while ctx.deterministic is). With ctx.deterministic off, bf16 at head dims 64 / 128 adds dQ
// into fp32 sums with atomics from the dK/dV kernel instead (fewer GEMMs; dq's last bits then
// vary between runs; dk, dv do not).
//
// Shapes as attention.h: q (tokens, heads, D); k, v (tokens, kv_heads, D); out like q, all of
// type t; lse (tokens, heads) fp32, natural log. dq, dk, dv like q, k, v (type t), overwritten.
#pragma once

#include <cstdint>

#include "core/cuda_context.h"
#include "core/status.h"
#include "kernels/attention.h"
#include "kernels/parallel_attention.h"

namespace npr {

// The plan's arrays on the device (owned here, freed with it).
class DeviceAttentionPlan {
 public:
  Status upload(CudaContext& ctx, const AttentionPlan& plan);
  int64_t tokens() const { return tokens_; }
  int64_t tiles() const { return tiles_; }
  int64_t bytes() const;

  // Device arrays (see AttentionPlan for meaning), valid after upload.
  DeviceBuffer seq_start, seq_len, seq_tile0;  // (sequences) int64
  DeviceBuffer tile_seq;                       // (tiles) int32
  DeviceBuffer row_ptr, col_ptr;               // (tiles + 1) int64
  DeviceBuffer row_pairs, col_pairs;           // AttnTilePair
  DeviceBuffer masks;                          // (partial tiles, kAttnTile) uint64
  int64_t sequences = 0, partial_tiles = 0;

 private:
  int64_t tokens_ = 0, tiles_ = 0;
};

Status attention_forward_cuda(CudaContext& ctx, DevDType t, const DeviceAttentionPlan& plan,
                              void* out, float* lse, const void* q, const void* k, const void* v,
                              const AttentionShape& shape);
// Whether attention_forward_cuda runs the Hopper wgmma kernel for this type and shape (16-byte
// aligned tensors given): the context asks for it (attention_wgmma), the shape has an even GQA
// group and head_dim 64 or 128 in bf16, and the build and device can run it.
bool attention_forward_uses_wgmma(const CudaContext& ctx, DevDType t, const AttentionShape& shape);

Status attention_backward_cuda(CudaContext& ctx, DevDType t, const DeviceAttentionPlan& plan,
                               void* dq, void* dk, void* dv, const void* dout, const void* q,
                               const void* k, const void* v, const void* out, const float* lse,
                               const AttentionShape& shape);

}  // namespace npr
