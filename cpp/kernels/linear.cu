// Linear layers on the device (see linear_cuda.h): three gemm_cuda calls with the layouts of
// linear.cpp. Forward y = x . W^T is NT, dx = dy . W is NN, dW += dy^T . x is TN with beta 1
// into the fp32 gradient. No kernels of their own; bias-free like the CPU twin.
#include <string>

#include "kernels/gemm_cuda.h"
#include "kernels/linear_cuda.h"

namespace npr {

namespace {

Status check_sizes(const char* what, int64_t rows, int64_t in, int64_t out) {
  if (rows < 0 || in <= 0 || out <= 0)
    return Status::invalid(std::string(what) +
                           ": rows must be >= 0 and in, out > 0 (got rows=" + std::to_string(rows) +
                           " in=" + std::to_string(in) + " out=" + std::to_string(out) + ")");
  return Status::ok();
}

}  // namespace

Status linear_forward_cuda(CudaContext& ctx, DevDType t, DevDType out_t, void* y, const void* x,
                           const void* W, int64_t rows, int64_t in, int64_t out, float beta) {
  NPR_TRY(check_sizes("linear_forward_cuda", rows, in, out));
  GemmShape g;  // y (rows, out) = x (rows, in) . W (out, in)^T
  g.m = rows;
  g.n = out;
  g.k = in;
  g.tb = Trans::kT;
  g.lda = in;
  g.ldb = in;
  g.ldc = out;
  g.beta = beta;
  return gemm_cuda(ctx, g, t, out_t, x, W, y);
}

Status linear_backward_x_cuda(CudaContext& ctx, DevDType t, DevDType out_t, void* dx,
                              const void* dy, const void* W, int64_t rows, int64_t in, int64_t out,
                              float beta) {
  NPR_TRY(check_sizes("linear_backward_x_cuda", rows, in, out));
  GemmShape g;  // dx (rows, in) = dy (rows, out) . W (out, in)
  g.m = rows;
  g.n = in;
  g.k = out;
  g.lda = out;
  g.ldb = in;
  g.ldc = in;
  g.beta = beta;
  return gemm_cuda(ctx, g, t, out_t, dy, W, dx);
}

Status linear_backward_w_cuda(CudaContext& ctx, DevDType t, float* dW, const void* dy,
                              const void* x, int64_t rows, int64_t in, int64_t out) {
  NPR_TRY(check_sizes("linear_backward_w_cuda", rows, in, out));
  GemmShape g;  // dW (out, in) += dy (rows, out)^T . x (rows, in)
  g.m = out;
  g.n = in;
  g.k = rows;
  g.ta = Trans::kT;
  g.lda = out;
  g.ldb = in;
  g.ldc = in;
  g.beta = 1.0f;
  return gemm_cuda(ctx, g, t, DevDType::kF32, dy, x, dW);
}

}  // namespace npr
