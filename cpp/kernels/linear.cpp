#include "kernels/linear.h"

#include "kernels/gemm.h"

namespace npr {

void linear_forward(const CpuContext& ctx, float* y, const float* x, const float* W, int64_t rows,
                    int64_t in, int64_t out, float beta) {
  GemmShape g;
  g.m = rows;
  g.n = out;
  g.k = in;
  g.tb = Trans::kT;
  g.lda = in;
  g.ldb = in;
  g.ldc = out;
  g.beta = beta;
  (void)gemm_f32(ctx, g, x, W, y);
}

void linear_backward_x(const CpuContext& ctx, float* dx, const float* dy, const float* W,
                       int64_t rows, int64_t in, int64_t out, float beta) {
  GemmShape g;
  g.m = rows;
  g.n = in;
  g.k = out;
  g.lda = out;
  g.ldb = in;
  g.ldc = in;
  g.beta = beta;
  (void)gemm_f32(ctx, g, dy, W, dx);
}

void linear_backward_w(const CpuContext& ctx, float* dW, const float* dy, const float* x,
                       int64_t rows, int64_t in, int64_t out) {
  GemmShape g;
  g.m = out;
  g.n = in;
  g.k = rows;
  g.ta = Trans::kT;
  g.lda = out;
  g.ldb = in;
  g.ldc = in;
  g.beta = 1.0f;
  (void)gemm_f32(ctx, g, dy, x, dW);
}

}  // namespace npr
