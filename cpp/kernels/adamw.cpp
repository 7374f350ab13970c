#include "kernels/adamw.h"

#include <cmath>
#include <vector>

#include "kernels/parallel.h"

namespace npr {

void adamw_step(const CpuContext& ctx, float* p, float* m, float* v, const float* g, int64_t n,
                const AdamWParams& a) {
  const double bc1 = 1.0 - std::pow(static_cast<double>(a.beta1), static_cast<double>(a.step));
  const double bc2 = 1.0 - std::pow(static_cast<double>(a.beta2), static_cast<double>(a.step));
  const float step_size = static_cast<float>(a.lr / bc1);
  const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
  const float decay = 1.0f - a.lr * a.weight_decay;
  const float b1 = a.beta1, b2 = a.beta2, c1 = 1.0f - a.beta1, c2 = 1.0f - a.beta2;
  parallel_rows(ctx, n, 1 << 15, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const float gi = g[i] * a.grad_scale;
      const float mi = b1 * m[i] + c1 * gi;
      const float vi = b2 * v[i] + c2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      p[i] = p[i] * decay - step_size * mi / (std::sqrt(vi) * inv_sqrt_bc2 + a.eps);
    }
  });
}

void adamw_step_reference(float* p, float* m, float* v, const float* g, int64_t n,
                          const AdamWParams& a) {
  const double bc1 = 1.0 - std::pow(static_cast<double>(a.beta1), static_cast<double>(a.step));
  const double bc2 = 1.0 - std::pow(static_cast<double>(a.beta2), static_cast<double>(a.step));
  for (int64_t i = 0; i < n; ++i) {
    const double gi = static_cast<double>(g[i]) * a.grad_scale;
    double pi = p[i];
    pi -= static_cast<double>(a.lr) * a.weight_decay * pi;
    const double mi = a.beta1 * static_cast<double>(m[i]) + (1.0 - a.beta1) * gi;
    const double vi = a.beta2 * static_cast<double>(v[i]) + (1.0 - a.beta2) * gi * gi;
    pi -= a.lr / bc1 * mi / (std::sqrt(vi / bc2) + a.eps);
    p[i] = static_cast<float>(pi);
    m[i] = static_cast<float>(mi);
    v[i] = static_cast<float>(vi);
  }
}

double sum_squares(const CpuContext& ctx, const float* g, int64_t n) {
  const int threads = ctx.pool ? ctx.pool->size() : 1;
  std::vector<double> partial(static_cast<size_t>(threads), 0.0);
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(threads, n / (1 << 15)));
  auto body = [&](int64_t c) {
    const int64_t i0 = n * c / chunks, i1 = n * (c + 1) / chunks;
    double s = 0.0;
    for (int64_t i = i0; i < i1; ++i) s += static_cast<double>(g[i]) * g[i];
    partial[c] = s;
  };
  if (chunks == 1) {
    body(0);
  } else {
    ctx.pool->parallel_for(chunks, [&](int64_t c, int) { body(c); });
  }
  double total = 0.0;
  for (int64_t c = 0; c < chunks; ++c) total += partial[c];
  return total;
}

}  // namespace npr
