#include "kernels/fma_peak.h"

#include <chrono>

namespace npr {

namespace fma_internal {
int fma_loop_portable(long iters, float* sink) {
  float c[12];
  for (int j = 0; j < 12; ++j) c[j] = static_cast<float>(j);
  for (long i = 0; i < iters; ++i)
    for (int j = 0; j < 12; ++j) c[j] = c[j] * 0.999999f + 1e-7f;
  float s = 0.f;
  for (int j = 0; j < 12; ++j) s += c[j];
  *sink = s;
  return 12 * 2;
}
}  // namespace fma_internal

Status fma_peak_gflops(SimdLevel level, double seconds, double* gflops) {
  NPR_TRY(check_simd(level));
  if (!(seconds > 0.0 && seconds <= 60.0))
    return Status::out_of_range("fma peak: seconds must be in (0, 60]");
  using clock = std::chrono::steady_clock;
  auto loop = fma_internal::fma_loop_portable;
#if defined(NPR_HAVE_X86_KERNELS)
  if (level == SimdLevel::kAvx512) loop = fma_internal::fma_loop_avx512;
  if (level == SimdLevel::kAvx2) loop = fma_internal::fma_loop_avx2;
#endif
  float sink = 0.f;
  long iters = 1 << 16;
  double best = 0.0;
  const auto deadline = clock::now() + std::chrono::duration<double>(seconds);
  do {
    const auto t0 = clock::now();
    const int flops_per_iter = loop(iters, &sink);
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    if (dt < 2e-3) {  // too short to time: grow the trial
      iters *= 4;
      continue;
    }
    const double g = static_cast<double>(iters) * flops_per_iter / dt / 1e9;
    if (g > best) best = g;
  } while (clock::now() < deadline);
  *gflops = best + 0.0 * sink;
  return Status::ok();
}

}  // namespace npr
