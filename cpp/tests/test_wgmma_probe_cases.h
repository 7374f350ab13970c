// The wgmma probe's cases (kernels/wgmma_probe.h), for the GPU test and the emulator's: small
// integer operands (every product and sum exact in fp32), the probe's output compared bit for
// bit with a host matmul, a failure naming the wrapper and the first wrong (row, col).
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "kernels/wgmma_probe.h"
#include "tests/harness.h"
#include "tests/test_util.h"

namespace npr::test {

// Runs the probe `kind` on a, b (bf16 bits) and returns its `out` floats.
using WgmmaProbeRun = std::function<std::vector<float>(
    WgmmaProbe kind, const std::vector<uint16_t>& a, const std::vector<uint16_t>& b, int64_t out)>;

namespace wgmma_probe_cases {

// Integers in [-3, 3] as bf16 bits (exact), and their values.
struct IntMatrix {
  std::vector<float> value;
  std::vector<uint16_t> bits;
};
inline IntMatrix int_matrix(Rng& rng, int64_t n) {
  IntMatrix m;
  for (int64_t i = 0; i < n; ++i) {
    const float v = static_cast<float>(static_cast<int>(rng.below(7)) - 3);
    uint32_t u;
    std::memcpy(&u, &v, 4);
    m.value.push_back(v);
    m.bits.push_back(static_cast<uint16_t>(u >> 16));  // small integers: the low half is zero
  }
  return m;
}

// First mismatch as "(row, col): got vs want", or empty.
inline std::string first_mismatch(const std::vector<float>& got, const std::vector<float>& want,
                                  int64_t cols) {
  for (size_t i = 0; i < want.size(); ++i)
    if (i >= got.size() || got[i] != want[i])
      return "(" + std::to_string(i / cols) + ", " + std::to_string(i % cols) +
             "): " + (i < got.size() ? std::to_string(got[i]) : std::string("missing")) + " vs " +
             std::to_string(want[i]);
  return "";
}

}  // namespace wgmma_probe_cases

// Every wrapper of the probe against a host matmul.
inline void check_wgmma_probe(const WgmmaProbeRun& run) {
  using wgmma_probe_cases::first_mismatch;
  using wgmma_probe_cases::int_matrix;
  using wgmma_probe_cases::IntMatrix;
  Rng rng(99);
  {  // d (64, 64) = a (64, 128) b (64, 128)^T, both K-major, 8 k-steps over two column blocks.
    const IntMatrix a = int_matrix(rng, 64 * 128), b = int_matrix(rng, 64 * 128);
    std::vector<float> want(64 * 64, 0.0f);
    for (int m = 0; m < 64; ++m)
      for (int n = 0; n < 64; ++n)
        for (int k = 0; k < 128; ++k)
          want[m * 64 + n] += a.value[m * 128 + k] * b.value[n * 128 + k];
    const std::string bad =
        first_mismatch(run(WgmmaProbe::kSsKMajor, a.bits, b.bits, 64 * 64), want, 64);
    CHECK_MSG(bad.empty(), "m64n64k16, A and B K-major from shared memory: " + bad);
  }
  for (int N : {128, 64}) {  // d (64, N) = a (64, 64) b (64, N): A from registers, B N-major.
    const IntMatrix a = int_matrix(rng, 64 * 64), b = int_matrix(rng, 64 * N);
    std::vector<float> want(64 * N, 0.0f);
    for (int m = 0; m < 64; ++m)
      for (int n = 0; n < N; ++n)
        for (int k = 0; k < 64; ++k) want[m * N + n] += a.value[m * 64 + k] * b.value[k * N + n];
    const WgmmaProbe kind = N == 128 ? WgmmaProbe::kRsN128 : WgmmaProbe::kRsN64;
    const std::string bad = first_mismatch(run(kind, a.bits, b.bits, 64 * N), want, N);
    CHECK_MSG(bad.empty(), "m64n" + std::to_string(N) + "k16, A from registers, B N-major: " + bad);
  }
  {  // d (64, 64) [m][n] = sum_k a[k][m] b[k][64 + n]: A M-major, B N-major (second block).
    const IntMatrix a = int_matrix(rng, 64 * 64), b = int_matrix(rng, 64 * 128);
    std::vector<float> want(64 * 64, 0.0f);
    for (int m = 0; m < 64; ++m)
      for (int n = 0; n < 64; ++n)
        for (int k = 0; k < 64; ++k)
          want[m * 64 + n] += a.value[k * 64 + m] * b.value[k * 128 + 64 + n];
    const std::string bad =
        first_mismatch(run(WgmmaProbe::kSsTransposed, a.bits, b.bits, 64 * 64), want, 64);
    CHECK_MSG(bad.empty(), "m64n64k16, A M-major and B N-major from shared memory: " + bad);
  }
}

}  // namespace npr::test
