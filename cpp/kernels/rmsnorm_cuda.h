// RMSNorm on the device (CUDA twin of rmsnorm.h); one warp-or-block per row, fp32 math.
// The weight is always the fp32 master copy. Forward reads x of type tx and writes y of type ty
// (fp32 residual -> compute type for the layer norms; t -> t for the per-head q/k norms).
// Backward: dy, x and dx share one type; dw (dim) fp32 is accumulated through per-block partial
// sums reduced in a fixed order (scratch slot kScratchReduce): deterministic, no atomics.
#pragma once

#include <cstdint>

#include "core/cuda_context.h"
#include "core/status.h"

namespace npr {

// y (rows, dim) ty, rstd (rows) fp32 <- x (rows, dim) tx, w (dim) fp32. y may alias x if tx == ty.
Status rmsnorm_forward_cuda(CudaContext& ctx, DevDType tx, DevDType ty, void* y, float* rstd,
                            const void* x, const float* w, int64_t rows, int64_t dim, float eps);
// dx (rows, dim) <- dy, x (type t), w, rstd; dw (dim) += ... dx may alias dy, not x.
Status rmsnorm_backward_cuda(CudaContext& ctx, DevDType t, void* dx, float* dw, const void* dy,
                             const void* x, const float* w, const float* rstd, int64_t rows,
                             int64_t dim);

}  // namespace npr
