// Linear layers on the device (weights (out, in) like PyTorch), the CUDA twin of linear.h.
// x, dy and W are of type `t` (the compute type); y / dx are of type `out_t` (fp32 where the
// result accumulates into the residual stream or a sum of several GEMMs); dW is always the fp32
// gradient, accumulated.
#pragma once

#include <cstdint>

#include "core/cuda_context.h"
#include "core/status.h"

namespace npr {

// y (rows, out) = x (rows, in) . W^T + beta * y.
Status linear_forward_cuda(CudaContext& ctx, DevDType t, DevDType out_t, void* y, const void* x,
                           const void* W, int64_t rows, int64_t in, int64_t out, float beta);
// dx (rows, in) = dy (rows, out) . W + beta * dx.
Status linear_backward_x_cuda(CudaContext& ctx, DevDType t, DevDType out_t, void* dx,
                              const void* dy, const void* W, int64_t rows, int64_t in, int64_t out,
                              float beta);
// dW (out, in) fp32 += dy^T . x.
Status linear_backward_w_cuda(CudaContext& ctx, DevDType t, float* dW, const void* dy,
                              const void* x, int64_t rows, int64_t in, int64_t out);

}  // namespace npr
