// exp(x) for x <= 0 in a form the compiler vectorises (std::exp is a libm call per element
// unless the build allows -ffast-math): 2^(x log2 e) = 2^i 2^f with i the nearest integer and
// |f| <= 1/2, 2^f by its degree-6 Taylor polynomial (relative error < 2e-7), 2^i written into the
// exponent bits. Inputs below -87 give ~1e-38 instead of 0, which no sum of probabilities (and no
// sigmoid) can tell apart. Used by the decode attention's softmax and by SwiGLU's sigmoid.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace npr {

inline float exp_nonpositive(float x) {
  const float t = std::max(x * 1.44269504088896341f, -126.0f);
  const float r = std::rint(t);
  const float f = t - r;
  float p = 1.5403530e-4f;
  p = p * f + 1.3333558e-3f;
  p = p * f + 9.6181291e-3f;
  p = p * f + 5.5504109e-2f;
  p = p * f + 2.4022651e-1f;
  p = p * f + 6.9314718e-1f;
  p = p * f + 1.0f;
  const int32_t bits = (static_cast<int32_t>(r) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// y[i] = exp(x[i]) for x[i] <= 0 (y may alias x).
inline void exp_nonpositive(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = exp_nonpositive(x[i]);
}

// The logistic sigmoid from exp of a non-positive argument: with t = e^-|g|, 1 / (1 + t) for
// g >= 0 and t / (1 + t) below, so that no exponent can overflow.
inline float sigmoid(float g) {
  const float t = exp_nonpositive(-std::fabs(g));
  return (g >= 0.0f ? 1.0f : t) / (1.0f + t);
}

}  // namespace npr
