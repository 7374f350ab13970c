// Attention over a packed batch with grouped-query heads and a Structure (sibling steps never
// see each other). Causal within each sequence, explicit visibility from the Structure.
//
// Shapes: q (tokens, heads, head_dim); k, v (tokens, kv_heads, head_dim);
// out (tokens, heads, head_dim); lse (tokens, heads) = log-sum-exp of the scaled scores of each
// query row, saved for backward. Query head h uses kv head h / (heads / kv_heads).
//
// attention_forward_dense / attention_backward_dense are the dense-masked path: per (sequence,
// head) the full score matrix is formed with the GEMM, masked, soft-maxed and multiplied by V;
// memory O(L^2) per thread for a sequence of L tokens, and the masked work is done and thrown
// away. The model runs the fused block-sparse kernel instead (parallel_attention.h: plan once,
// run per layer, O(T) memory); the dense path stays as a second implementation for tests.
// The references are naive double-precision loops: the oracle for both.
#pragma once

#include <cstdint>

#include "core/cpu_info.h"
#include "core/status.h"
#include "core/structure.h"

namespace npr {

struct AttentionShape {
  int64_t heads = 0, kv_heads = 0, head_dim = 0;
  float scale = 1.0f;  // usually 1 / sqrt(head_dim)
};

Status attention_forward_dense(const CpuContext& ctx, float* out, float* lse, const float* q,
                               const float* k, const float* v, const AttentionShape& shape,
                               const StructureView& st);
// dq (tokens, heads, D), dk, dv (tokens, kv_heads, D) are overwritten.
Status attention_backward_dense(const CpuContext& ctx, float* dq, float* dk, float* dv,
                                const float* dout, const float* q, const float* k, const float* v,
                                const float* out, const float* lse, const AttentionShape& shape,
                                const StructureView& st);

void attention_forward_reference(float* out, float* lse, const float* q, const float* k,
                                 const float* v, const AttentionShape& shape,
                                 const StructureView& st);
void attention_backward_reference(float* dq, float* dk, float* dv, const float* dout,
                                  const float* q, const float* k, const float* v,
                                  const AttentionShape& shape, const StructureView& st);

}  // namespace npr
