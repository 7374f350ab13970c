// Rotary embedding on the device at explicit positions (CUDA twin of rope.h). The cos/sin
// table is the host RopeTable (angles in double) uploaded once per batch; inverse = backward.
#pragma once

#include <cstdint>

#include "core/cuda_context.h"
#include "core/status.h"

namespace npr {

// x (tokens, heads, head_dim) of type t, rotated in place; cos, sin (tokens, head_dim / 2) fp32.
Status rope_apply_cuda(CudaContext& ctx, DevDType t, void* x, const float* cos, const float* sin,
                       int64_t tokens, int64_t heads, int64_t head_dim, bool inverse);

}  // namespace npr
