#include "kernels/rope.h"

#include <cmath>

#include "kernels/parallel.h"

namespace npr {

void rope_table_build(RopeTable* table, const int32_t* positions, int64_t tokens, int64_t head_dim,
                      double theta) {
  const int64_t half = head_dim / 2;
  table->tokens = tokens;
  table->half = half;
  table->cos.resize(static_cast<size_t>(tokens * half));
  table->sin.resize(static_cast<size_t>(tokens * half));
  std::vector<double> inv_freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i)
    inv_freq[i] = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t i = 0; i < half; ++i) {
      const double a = static_cast<double>(positions[t]) * inv_freq[i];
      table->cos[t * half + i] = static_cast<float>(std::cos(a));
      table->sin[t * half + i] = static_cast<float>(std::sin(a));
    }
  }
}

void rope_apply(const CpuContext& ctx, float* x, const RopeTable& table, int64_t heads,
                int64_t head_dim, bool inverse) {
  const int64_t half = table.half;
  const float sign = inverse ? -1.0f : 1.0f;
  parallel_rows(ctx, table.tokens, 32, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const float* c = table.cos.data() + t * half;
      const float* s = table.sin.data() + t * half;
      for (int64_t h = 0; h < heads; ++h) {
        float* v = x + (t * heads + h) * head_dim;
        for (int64_t i = 0; i < half; ++i) {
          const float a = v[i], b = v[i + half], si = sign * s[i];
          v[i] = a * c[i] - b * si;
          v[i + half] = b * c[i] + a * si;
        }
      }
    }
  });
}

void rope_apply_reference(float* x, const int32_t* positions, int64_t tokens, int64_t heads,
                          int64_t head_dim, double theta, bool inverse) {
  const int64_t half = head_dim / 2;
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x + (t * heads + h) * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const double ang = positions[t] *
                           std::pow(theta, -2.0 * i / static_cast<double>(head_dim)) *
                           (inverse ? -1.0 : 1.0);
        const double a = v[i], b = v[i + half];
        v[i] = static_cast<float>(a * std::cos(ang) - b * std::sin(ang));
        v[i + half] = static_cast<float>(b * std::cos(ang) + a * std::sin(ang));
      }
    }
  }
}

}  // namespace npr
