#include "kernels/rmsnorm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/parallel.h"

namespace npr {
namespace {

// Sum of x^2 in 16 interleaved partial sums (added in a fixed order): one running float sum is
// a chain of dependent adds, ~4 cycles an element, which made the q/k norms of an 8-row decode
// step cost as much as their whole layer's elementwise work. The partials vectorise.
float sum_of_squares(const float* x, int64_t n) {
  constexpr int kParts = 16;
  float part[kParts] = {};
  int64_t i = 0;
  for (; i + kParts <= n; i += kParts)
    for (int j = 0; j < kParts; ++j) part[j] += x[i + j] * x[i + j];
  float ss = 0.0f;
  for (; i < n; ++i) ss += x[i] * x[i];
  for (int j = 0; j < kParts; ++j) ss += part[j];
  return ss;
}

}  // namespace

void rmsnorm_forward(const CpuContext& ctx, float* y, float* rstd, const float* x, const float* w,
                     int64_t rows, int64_t dim, float eps) {
  // At least ~32K elements a thread: waking the pool costs more than normalising the q/k heads
  // of a decode batch (8 tokens x 16 heads x 128 = 16K elements, twice per layer).
  const int64_t grain = std::max<int64_t>(16, (int64_t{1} << 15) / std::max<int64_t>(1, dim));
  parallel_rows(ctx, rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * dim;
      float* yr = y + r * dim;
      const float s = 1.0f / std::sqrt(sum_of_squares(xr, dim) / static_cast<float>(dim) + eps);
      rstd[r] = s;
      for (int64_t i = 0; i < dim; ++i) yr[i] = xr[i] * s * w[i];
    }
  });
}

void rmsnorm_backward(const CpuContext& ctx, float* dx, float* dw, const float* dy, const float* x,
                      const float* w, const float* rstd, int64_t rows, int64_t dim) {
  // dw is a sum over rows: each chunk accumulates its own partial, added in chunk order so
  // the result does not depend on timing.
  const int threads = ctx.pool ? ctx.pool->size() : 1;
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(threads, rows / 16));
  std::vector<float> partial(static_cast<size_t>(chunks * dim), 0.0f);  // (chunks, dim)
  auto body = [&](int64_t c) {
    const int64_t r0 = rows * c / chunks, r1 = rows * (c + 1) / chunks;
    float* pw = partial.data() + c * dim;
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * dim;
      const float* dyr = dy + r * dim;
      float* dxr = dx + r * dim;
      const float s = rstd[r];
      float dot = 0.0f;  // sum of xhat * w * dy
      for (int64_t i = 0; i < dim; ++i) {
        dot += xr[i] * s * w[i] * dyr[i];
        pw[i] += dyr[i] * xr[i] * s;
      }
      const float mean = dot / static_cast<float>(dim);
      for (int64_t i = 0; i < dim; ++i) dxr[i] = s * (w[i] * dyr[i] - xr[i] * s * mean);
    }
  };
  if (chunks == 1) {
    body(0);
  } else {
    ctx.pool->parallel_for(chunks, [&](int64_t c, int) { body(c); });
  }
  for (int64_t c = 0; c < chunks; ++c)
    for (int64_t i = 0; i < dim; ++i) dw[i] += partial[c * dim + i];
}

void rmsnorm_forward_reference(float* y, float* rstd, const float* x, const float* w, int64_t rows,
                               int64_t dim, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0.0;
    for (int64_t i = 0; i < dim; ++i) ss += static_cast<double>(x[r * dim + i]) * x[r * dim + i];
    const double s = 1.0 / std::sqrt(ss / dim + eps);
    rstd[r] = static_cast<float>(s);
    for (int64_t i = 0; i < dim; ++i)
      y[r * dim + i] = static_cast<float>(x[r * dim + i] * s * w[i]);
  }
}

void rmsnorm_backward_reference(float* dx, float* dw, const float* dy, const float* x,
                                const float* w, int64_t rows, int64_t dim, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    const float* dyr = dy + r * dim;
    double ss = 0.0;
    for (int64_t i = 0; i < dim; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const double s = 1.0 / std::sqrt(ss / dim + eps);
    double dot = 0.0;
    for (int64_t i = 0; i < dim; ++i) dot += xr[i] * s * w[i] * dyr[i];
    for (int64_t i = 0; i < dim; ++i) {
      dx[r * dim + i] = static_cast<float>(s * (w[i] * dyr[i] - xr[i] * s * dot / dim));
      dw[i] += static_cast<float>(dyr[i] * xr[i] * s);
    }
  }
}

}  // namespace npr
