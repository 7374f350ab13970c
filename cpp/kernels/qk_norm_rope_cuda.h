// The decode step's attention inputs in one kernel on the device: from the rows of the stacked
// q|k|v projection (tokens, (heads + 2 kv_heads) * head_dim), the per-head RMSNorms of q and k,
// RoPE at the step's positions, q out as (tokens, heads, head_dim) for the attention, and k and
// v straight into their KV page slots. It equals rmsnorm_forward_cuda on the q and k heads, then
// rope_apply_cuda, then KvPagesCuda::write, rounding to the element type at the same points
// (the normalised values, then the rotated ones), with the same sum order; four launches and
// the k/v staging buffers become one launch. The tests compare it with that sequence.
#pragma once

#include <cstdint>

#include "core/cuda_context.h"
#include "core/status.h"

namespace npr {

// qkv (tokens, heads + 2 kv_heads, head_dim) type t; q_norm, k_norm (head_dim) fp32; cos, sin
// (tokens, head_dim / 2) fp32; slots (tokens): each token's page slot (block * block_tokens +
// offset); k_pages, v_pages (slots, kv_heads, head_dim) type t; q_out (tokens, heads, head_dim).
// pdl: a programmatic dependent launch (pdl.cuh) where the device supports it; same results
// (the decoder's candidate_kernels).
Status qk_norm_rope_write_cuda(CudaContext& ctx, DevDType t, void* q_out, void* k_pages,
                               void* v_pages, const void* qkv, const float* q_norm,
                               const float* k_norm, const float* cos, const float* sin,
                               const int32_t* slots, int64_t tokens, int64_t heads,
                               int64_t kv_heads, int64_t head_dim, float eps, bool pdl = false);

}  // namespace npr
