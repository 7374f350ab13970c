#include "kernels/swiglu.h"

#include <algorithm>
#include <cmath>

#include "kernels/fast_exp.h"
#include "kernels/parallel.h"

namespace npr {

void swiglu_forward(const CpuContext& ctx, float* h, const float* gate, const float* up,
                    int64_t n) {
  parallel_rows(ctx, n, 1 << 14, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float g = gate[i];
      h[i] = g * sigmoid(g) * up[i];
    }
  });
}

void swiglu_forward_stacked(const CpuContext& ctx, float* h, const float* gu, int64_t rows,
                            int64_t inter) {
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(1, inter));
  parallel_rows(ctx, rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* gate = gu + r * 2 * inter;
      const float* up = gate + inter;
      float* hr = h + r * inter;
      for (int64_t i = 0; i < inter; ++i) hr[i] = gate[i] * sigmoid(gate[i]) * up[i];
    }
  });
}

void swiglu_backward(const CpuContext& ctx, float* dgate, float* dup, const float* dh,
                     const float* gate, const float* up, int64_t n) {
  parallel_rows(ctx, n, 1 << 14, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float g = gate[i], u = up[i], d = dh[i];
      const float sg = 1.0f / (1.0f + std::exp(-g));
      dgate[i] = d * u * sg * (1.0f + g * (1.0f - sg));
      dup[i] = d * g * sg;
    }
  });
}

void swiglu_forward_reference(float* h, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double g = gate[i];
    h[i] = static_cast<float>(g / (1.0 + std::exp(-g)) * up[i]);
  }
}

void swiglu_backward_reference(float* dgate, float* dup, const float* dh, const float* gate,
                               const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double g = gate[i], u = up[i], d = dh[i];
    const double sg = 1.0 / (1.0 + std::exp(-g));
    dgate[i] = static_cast<float>(d * u * (sg + g * sg * (1.0 - sg)));
    dup[i] = static_cast<float>(d * g * sg);
  }
}

}  // namespace npr
