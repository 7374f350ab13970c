// Helpers shared by the C++ tests: a seeded RNG, poisoned buffers, the SIMD levels to cover.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/cpu_info.h"
#include "core/dtype.h"

namespace npr::test {

// SplitMix64: small, seedable, identical everywhere.
struct Rng {
  uint64_t state;
  explicit Rng(uint64_t seed) : state(seed) {}
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [-1, 1).
  float uniform() { return static_cast<float>((next() >> 40) * (1.0 / (1ull << 24)) * 2.0 - 1.0); }
  int64_t below(int64_t n) { return static_cast<int64_t>(next() % static_cast<uint64_t>(n)); }
};

inline std::vector<float> random_vector(Rng& rng, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = rng.uniform();
  return v;
}

// A buffer every element of which is NaN: an element a kernel forgot to write stays NaN.
inline std::vector<float> poisoned(int64_t n) {
  return std::vector<float>(static_cast<size_t>(n), std::numeric_limits<float>::quiet_NaN());
}

// max |a - b| divided by max |b| (NaN anywhere: infinity): errors on the tensor's own scale.
inline double max_rel(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0.0, scale = 1e-6;
  for (size_t i = 0; i < a.size(); ++i) {
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
    const double d = std::fabs(static_cast<double>(a[i]) - b[i]);
    if (!(d <= m)) m = std::isnan(d) ? INFINITY : d;
  }
  return m / scale;
}

// Each element rounded through bf16 (the inputs a bf16-mode oracle should see).
inline std::vector<float> bf16_rounded(std::vector<float> v) {
  for (float& x : v) x = bf16_to_f32(f32_to_bf16(x));
  return v;
}

// ||a - b|| / ||b|| over all elements (NaN anywhere -> infinity).
inline double rel_norm_error(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    if (std::isnan(d)) return INFINITY;
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  if (a.size() != b.size()) return INFINITY;
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

// Every SIMD level this machine can run: the AVX2 path is tested on AVX-512 machines too.
// max |a - b| over all elements (NaN anywhere -> infinity).
inline double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - b[i]);
    m = std::isnan(d) ? INFINITY : std::max(m, d);
  }
  return m;
}

inline std::vector<SimdLevel> runnable_simd_levels() {
  std::vector<SimdLevel> levels;
  for (SimdLevel l : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512})
    if (check_simd(l).is_ok()) levels.push_back(l);
  return levels;
}

}  // namespace npr::test
