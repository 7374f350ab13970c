// Linear layer without bias, weights stored (out, in) like PyTorch: y = x . W^T.
// Forward is an NT GEMM, dx an NN GEMM, dW a TN GEMM accumulated into the gradient.
#pragma once

#include <cstdint>

#include "core/cpu_info.h"

namespace npr {

// y (rows, out) = x (rows, in) . W^T + beta * y; W (out, in).
void linear_forward(const CpuContext& ctx, float* y, const float* x, const float* W, int64_t rows,
                    int64_t in, int64_t out, float beta);
// dx (rows, in) = dy (rows, out) . W + beta * dx.
void linear_backward_x(const CpuContext& ctx, float* dx, const float* dy, const float* W,
                       int64_t rows, int64_t in, int64_t out, float beta);
// dW (out, in) += dy^T . x.
void linear_backward_w(const CpuContext& ctx, float* dW, const float* dy, const float* x,
                       int64_t rows, int64_t in, int64_t out);

}  // namespace npr
