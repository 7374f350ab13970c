// Small device ops the model strings together: type casts, residual adds, row gathers.
#pragma once

#include <cstdint>

#include "core/cuda_context.h"
#include "core/status.h"

namespace npr {

// dst (n) of type to <- src (n) of type from (fp32 <-> bf16, or a copy when equal).
Status cast_cuda(CudaContext& ctx, DevDType from, DevDType to, void* dst, const void* src,
                 int64_t n);
// y (n) += x (n), fp32.
Status add_cuda(CudaContext& ctx, float* y, const float* x, int64_t n);
// dst (count, dim) fp32 = src[rows[r]] for r < count; rows (count) int32 device.
Status gather_rows_cuda(CudaContext& ctx, float* dst, const float* src, const int32_t* rows,
                        int64_t count, int64_t dim);

}  // namespace npr
