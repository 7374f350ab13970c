// CUDA vs CPU. Runs where a CUDA device answers; elsewhere each case skips with the reason.
#include <cmath>
#include <string>

#include "core/cuda_device.h"
#include "kernels/gemm.h"
#include "tests/harness.h"
#include "tests/test_util.h"
#if defined(NPR_WITH_CUDA)
#include "kernels/gemm_cuda.h"
#endif

namespace npr::test {

TEST(cuda_probe_is_consistent) {
  const CudaInfo& info = cuda_info();
#if defined(NPR_WITH_CUDA)
  CHECK(info.compiled);
#else
  CHECK(!info.compiled);
#endif
  CHECK(info.devices >= 0);
  CHECK((info.devices > 0) == info.reason.empty());
  std::printf("    cuda: compiled=%d devices=%d reason='%s' device='%s'\n", info.compiled,
              info.devices, info.reason.c_str(), info.device_name.c_str());
}

TEST(cuda_gemm_matches_cpu_reference) {
#if !defined(NPR_WITH_CUDA)
  SKIP("CUDA not compiled into this build");
#else
  if (cuda_info().devices == 0) SKIP("no CUDA device answers: " + cuda_info().reason);
  Rng rng(11);
  const int64_t shapes[][3] = {{1, 1, 1},    {7, 17, 97},     {97, 513, 17}, {513, 97, 129},
                               {64, 64, 64}, {1, 3072, 1024}, {130, 70, 260}};
  for (auto& sh : shapes) {
    for (int t = 0; t < 4; ++t) {
      GemmShape s;
      s.m = sh[0];
      s.n = sh[1];
      s.k = sh[2];
      s.ta = (t & 1) ? Trans::kT : Trans::kN;
      s.tb = (t & 2) ? Trans::kT : Trans::kN;
      s.lda = s.ta == Trans::kN ? s.k : s.m;
      s.ldb = s.tb == Trans::kN ? s.n : s.k;
      s.ldc = s.n;
      s.alpha = t == 3 ? 0.5f : 1.0f;
      s.beta = t == 2 ? 1.0f : 0.0f;
      std::vector<float> A = random_vector(rng, s.m * s.k), B = random_vector(rng, s.k * s.n);
      std::vector<float> C0 = s.beta == 0.0f ? poisoned(s.m * s.n) : random_vector(rng, s.m * s.n);
      std::vector<float> C = C0, R = C0;
      CHECK_OK(gemm_f32_cuda_host(s, A.data(), B.data(), C.data()));
      CHECK_OK(gemm_f32_reference(s, A.data(), B.data(), R.data()));
      double max_err = 0.0;
      for (size_t i = 0; i < C.size(); ++i) {
        double e = std::fabs(static_cast<double>(C[i]) - R[i]);
        if (!(e <= max_err)) max_err = std::isnan(e) ? INFINITY : e;
      }
      const double tol = 4.0 * s.k * 1.2e-7 + 1e-6;
      CHECK_MSG(max_err <= tol, "cuda gemm m=" + std::to_string(s.m) + " n=" + std::to_string(s.n) +
                                    " k=" + std::to_string(s.k) + " t=" + std::to_string(t) +
                                    ": max error " + std::to_string(max_err));
    }
  }
#endif
}

}  // namespace npr::test
