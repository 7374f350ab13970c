// RMSNorm over the last dimension: y = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps).
//
// Used for the decoder's layer norms (rows = tokens, dim = hidden) and Qwen3's per-head q/k
// norms (rows = tokens * heads, dim = head_dim). Forward saves rstd for backward.
// Backward: dx = rstd * (w*dy - xhat * mean(xhat * w*dy)) with xhat = x * rstd, and
// dw += sum over rows of dy * xhat (accumulated: callers zero dw once per step).
#pragma once

#include <cstdint>

#include "core/cpu_info.h"

namespace npr {

// y (rows, dim), rstd (rows) <- x (rows, dim), w (dim). y may alias x.
void rmsnorm_forward(const CpuContext& ctx, float* y, float* rstd, const float* x, const float* w,
                     int64_t rows, int64_t dim, float eps);
// dx (rows, dim) <- dy, x, w, rstd; dw (dim) += ... dx may alias dy, not x.
void rmsnorm_backward(const CpuContext& ctx, float* dx, float* dw, const float* dy, const float* x,
                      const float* w, const float* rstd, int64_t rows, int64_t dim);

// The oracle: double precision, one row at a time.
void rmsnorm_forward_reference(float* y, float* rstd, const float* x, const float* w, int64_t rows,
                               int64_t dim, float eps);
void rmsnorm_backward_reference(float* dx, float* dw, const float* dy, const float* x,
                                const float* w, int64_t rows, int64_t dim, float eps);

}  // namespace npr
