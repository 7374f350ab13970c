// gemm_cuda against gemm_f32_reference: every (A/B, C) element-type pair, every transpose pair,
// odd shapes (edge tiles, k not a multiple of the 32-deep step), padded and unaligned leading
// dimensions (the kernel's element-wise load path) and aligned ones (its cp.async path), one
// shape big enough for the 128 x 128 tiles, alpha/beta, k == 0, and the errors. Each case runs
// on the hand-written kernels (gemm_path kKernel) and, where the build has cuBLAS, on cuBLAS
// (kCublas). C is poisoned (NaN) when beta == 0, and the padding columns of C must come back
// untouched. fp32: max error within the k-scaled rounding bound of test_cuda.cpp; bf16 (inputs
// rounded to bf16 on the host, so the oracle sees what the device sees): ||C - R|| / ||R|| <
// 1e-2.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/gemm.h"
#include "tests/harness.h"
#include "tests/test_util.h"
#if defined(NPR_WITH_CUDA)
#include "kernels/gemm_cuda.h"
#include "tests/test_cuda_util.h"
#endif

namespace npr::test {

#if defined(NPR_WITH_CUDA)
namespace {

const char* path_name(CudaGemmPath p) {
  return p == CudaGemmPath::kCublas ? "cublas" : "kernel";
}

GemmShape make_shape(int64_t m, int64_t n, int64_t k, int t, int64_t pad, float alpha, float beta) {
  GemmShape s;
  s.m = m;
  s.n = n;
  s.k = k;
  s.ta = (t & 1) ? Trans::kT : Trans::kN;
  s.tb = (t & 2) ? Trans::kT : Trans::kN;
  s.lda = (s.ta == Trans::kN ? k : m) + pad;
  s.ldb = (s.tb == Trans::kN ? n : k) + pad;
  s.ldc = n + pad;
  if (s.lda < 1) s.lda = 1;
  if (s.ldb < 1) s.ldb = 1;
  s.alpha = alpha;
  s.beta = beta;
  return s;
}

std::string describe(const GemmShape& s, DevDType ab, DevDType c, CudaGemmPath p) {
  return std::string(path_name(p)) + " " + dev_dtype_name(ab) + "->" + dev_dtype_name(c) +
         " m=" + std::to_string(s.m) + " n=" + std::to_string(s.n) + " k=" + std::to_string(s.k) +
         " ta=" + (s.ta == Trans::kT ? "T" : "N") + " tb=" + (s.tb == Trans::kT ? "T" : "N") +
         " lda=" + std::to_string(s.lda) + " ldb=" + std::to_string(s.ldb) +
         " ldc=" + std::to_string(s.ldc) + " alpha=" + std::to_string(s.alpha) +
         " beta=" + std::to_string(s.beta);
}

// One shape and type pair: random inputs, one reference, every GEMM path compared against it.
void check_gemm(CudaContext& ctx, Rng& rng, const GemmShape& s, DevDType ab, DevDType c) {
  int64_t na = 0, nb = 0, nc = 0;
  gemm_min_elements(s, &na, &nb, &nc);
  std::vector<float> A = random_vector(rng, na), B = random_vector(rng, nb);
  std::vector<float> C0 = s.beta == 0.0f ? poisoned(nc) : random_vector(rng, nc);
  if (ab == DevDType::kBF16) {
    A = bf16_rounded(A);
    B = bf16_rounded(B);
  }
  if (c == DevDType::kBF16) C0 = bf16_rounded(C0);
  // Padding columns of C hold a marker the GEMM must not touch.
  for (int64_t i = 0; i < s.m; ++i)
    for (int64_t j = s.n; j < s.ldc && i * s.ldc + j < nc; ++j) C0[i * s.ldc + j] = 7.0f;
  std::vector<float> R = C0;
  CHECK_OK(gemm_f32_reference(s, A.data(), B.data(), R.data()));

  DeviceBuffer dA = to_device(ctx, A, ab), dB = to_device(ctx, B, ab);
  GemmPathScope scope(ctx);
  for (CudaGemmPath p : gemm_paths(ctx)) {
    ctx.gemm_path = p;
    DeviceBuffer dC = to_device(ctx, C0, c);
    const std::string what = describe(s, ab, c, p);
    Status st = gemm_cuda(ctx, s, ab, c, dA.get(), dB.get(), dC.get());
    CHECK_MSG(st.is_ok(), what + ": " + st.to_string());
    if (!st.is_ok()) continue;
    CHECK_OK(ctx.sync("gemm_cuda test"));
    std::vector<float> out = to_host(ctx, dC, nc, c);
    std::vector<float> got, want;  // the (m, n) entries
    bool padding_kept = true;
    for (int64_t i = 0; i < s.m; ++i) {
      for (int64_t j = 0; j < s.n; ++j) {
        got.push_back(out[i * s.ldc + j]);
        want.push_back(R[i * s.ldc + j]);
      }
      for (int64_t j = s.n; j < s.ldc && i * s.ldc + j < nc; ++j)
        padding_kept = padding_kept && out[i * s.ldc + j] == 7.0f;
    }
    CHECK_MSG(padding_kept, what + ": wrote into the padding columns of C");
    if (ab == DevDType::kF32) {
      double max_err = 0.0;
      for (size_t i = 0; i < got.size(); ++i) {
        const double e = std::fabs(static_cast<double>(got[i]) - want[i]);
        if (!(e <= max_err)) max_err = std::isnan(e) ? INFINITY : e;
      }
      const double tol = 4.0 * s.k * 1.2e-7 + 1e-6;
      CHECK_MSG(max_err <= tol, what + ": max error " + std::to_string(max_err));
    } else {
      const double err = rel_norm_error(got, want);
      CHECK_MSG(err < 1e-2, what + ": relative error " + std::to_string(err));
    }
  }
}

constexpr DevDType kPairs[3][2] = {{DevDType::kF32, DevDType::kF32},
                                   {DevDType::kBF16, DevDType::kBF16},
                                   {DevDType::kBF16, DevDType::kF32}};

// (alpha, beta) per transpose pair: plain, negative alpha, accumulate, both scaled.
constexpr float kScales[4][2] = {{1.0f, 0.0f}, {-0.5f, 0.0f}, {1.0f, 1.0f}, {0.5f, -0.75f}};

}  // namespace
#endif

TEST(cuda_gemm_all_types_and_layouts) {
#if !defined(NPR_WITH_CUDA)
  SKIP("CUDA not compiled into this build");
#else
  CudaContext& ctx = cuda_test_context();
  Rng rng(101);
  // m, n, k, padding of every leading dimension.
  const int64_t shapes[][4] = {{1, 1, 1, 0},      {7, 17, 97, 0},     {97, 513, 17, 0},
                               {130, 70, 260, 0}, {513, 97, 129, 0},  {64, 64, 64, 0},
                               {128, 256, 64, 0}, {200, 264, 136, 0}, {33, 40, 72, 8},
                               {45, 29, 51, 3},   {1, 3072, 1024, 0}};
  for (auto& sh : shapes)
    for (int t = 0; t < 4; ++t)
      for (auto& pair : kPairs)
        check_gemm(ctx, rng,
                   make_shape(sh[0], sh[1], sh[2], t, sh[3], kScales[t][0], kScales[t][1]), pair[0],
                   pair[1]);
#endif
}

TEST(cuda_gemm_bf16_large_tiles) {
#if !defined(NPR_WITH_CUDA)
  SKIP("CUDA not compiled into this build");
#else
  // Enough 128 x 128 tiles to fill an H100 (132 SMs), so the big-tile kernel runs; m is not a
  // tile multiple, k is a multiple of 8 but not of 32.
  CudaContext& ctx = cuda_test_context();
  Rng rng(102);
  for (int t = 0; t < 4; ++t)
    for (DevDType c : {DevDType::kBF16, DevDType::kF32})
      check_gemm(ctx, rng, make_shape(1541, 1536, 72, t, 0, kScales[t][0], kScales[t][1]),
                 DevDType::kBF16, c);
#endif
}

TEST(cuda_gemm_k_zero_and_alpha_zero) {
#if !defined(NPR_WITH_CUDA)
  SKIP("CUDA not compiled into this build");
#else
  CudaContext& ctx = cuda_test_context();
  Rng rng(103);
  for (auto& pair : kPairs) {
    check_gemm(ctx, rng, make_shape(5, 7, 0, 0, 0, 1.0f, 0.5f), pair[0], pair[1]);  // C = beta C
    check_gemm(ctx, rng, make_shape(5, 7, 0, 3, 0, 1.0f, 0.0f), pair[0], pair[1]);  // C = 0
    check_gemm(ctx, rng, make_shape(19, 23, 40, 1, 0, 0.0f, 2.0f), pair[0], pair[1]);
  }
#endif
}

TEST(cuda_gemm_reports_bad_calls) {
#if !defined(NPR_WITH_CUDA)
  SKIP("CUDA not compiled into this build");
#else
  CudaContext& ctx = cuda_test_context();
  GemmPathScope scope(ctx);
  DeviceBuffer buf = to_device(ctx, std::vector<float>(64, 0.0f), DevDType::kF32);
  GemmShape s = make_shape(4, 4, 4, 0, 0, 1.0f, 0.0f);
  Status st = gemm_cuda(ctx, s, DevDType::kF32, DevDType::kBF16, buf.get(), buf.get(), buf.get());
  CHECK(st.code() == StatusCode::kInvalidArgument);
  CHECK(st.message().find("not supported") != std::string::npos);
  GemmShape bad = s;
  bad.lda = 3;  // < k
  st = gemm_cuda(ctx, bad, DevDType::kF32, DevDType::kF32, buf.get(), buf.get(), buf.get());
  CHECK(st.code() == StatusCode::kOutOfRange);
  CHECK(st.message().find("lda") != std::string::npos);
  if (!ctx.has_cublas()) {
    ctx.gemm_path = CudaGemmPath::kCublas;
    st = gemm_cuda(ctx, s, DevDType::kF32, DevDType::kF32, buf.get(), buf.get(), buf.get());
    CHECK(st.code() == StatusCode::kUnavailable);
  }
#endif
}

}  // namespace npr::test
