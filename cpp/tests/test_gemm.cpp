// GEMM fast path vs the double-accumulating reference, on odd shapes, every transpose, every
// SIMD level this CPU runs, 1-3 threads, padded leading dimensions, alpha/beta, poisoned C.
#include <cmath>
#include <memory>
#include <string>

#include "core/thread_pool.h"
#include "kernels/gemm.h"
#include "tests/harness.h"
#include "tests/test_util.h"

namespace npr::test {
namespace {

struct ShapeCase {
  int64_t m, n, k;
};

std::string describe(const GemmShape& s, SimdLevel level, int threads) {
  return std::string(simd_name(level)) + " t" + std::to_string(threads) +
         " m=" + std::to_string(s.m) + " n=" + std::to_string(s.n) + " k=" + std::to_string(s.k) +
         (s.ta == Trans::kT ? " A^T" : " A") + (s.tb == Trans::kT ? " B^T" : " B") +
         " alpha=" + std::to_string(s.alpha) + " beta=" + std::to_string(s.beta);
}

// Runs one shape on the fast path and the reference and checks every element of C against
// the rounding bound 2*k*eps*(|alpha| sum|a||b| + |beta c|) (+ a tiny absolute floor).
void check_shape(Rng& rng, GemmShape s, SimdLevel level, ThreadPool* pool, int pad) {
  s.lda = (s.ta == Trans::kN ? s.k : s.m) + pad;
  s.ldb = (s.tb == Trans::kN ? s.n : s.k) + pad;
  s.ldc = s.n + pad;
  if (s.lda < 1) s.lda = 1;
  if (s.ldb < 1) s.ldb = 1;
  if (s.ldc < 1) s.ldc = 1;
  const int64_t a_rows = s.ta == Trans::kN ? s.m : s.k;
  const int64_t b_rows = s.tb == Trans::kN ? s.k : s.n;
  std::vector<float> A = random_vector(rng, a_rows * s.lda + 1);
  std::vector<float> B = random_vector(rng, b_rows * s.ldb + 1);
  std::vector<float> C0 =
      s.beta == 0.0f ? poisoned(s.m * s.ldc + 1) : random_vector(rng, s.m * s.ldc + 1);
  std::vector<float> C = C0, R = C0;

  CpuContext ctx{pool, level};
  CHECK_OK(gemm_f32(ctx, s, A.data(), B.data(), C.data()));
  CHECK_OK(gemm_f32_reference(s, A.data(), B.data(), R.data()));

  // The bound, from the reference run on absolute values.
  std::vector<float> absA(A.size()), absB(B.size()), bound(C0.size());
  for (size_t i = 0; i < A.size(); ++i) absA[i] = std::fabs(A[i]);
  for (size_t i = 0; i < B.size(); ++i) absB[i] = std::fabs(B[i]);
  for (size_t i = 0; i < C0.size(); ++i) bound[i] = s.beta == 0.0f ? 0.0f : std::fabs(C0[i]);
  GemmShape sb = s;
  sb.alpha = std::fabs(s.alpha);
  sb.beta = std::fabs(s.beta);
  CHECK_OK(gemm_f32_reference(sb, absA.data(), absB.data(), bound.data()));

  const double gamma = 2.0 * static_cast<double>(s.k + 2) * 1.1920929e-7;
  int bad = 0;
  for (int64_t i = 0; i < s.m; ++i) {
    for (int64_t j = 0; j < s.n; ++j) {
      const double got = C[i * s.ldc + j], want = R[i * s.ldc + j];
      const double tol = gamma * bound[i * s.ldc + j] + 1e-30;
      if (!(std::fabs(got - want) <= tol)) {
        if (bad++ < 3)
          CHECK_MSG(false, describe(s, level, pool ? pool->size() : 1) + ": C[" +
                               std::to_string(i) + "," + std::to_string(j) +
                               "] = " + std::to_string(got) + ", want " + std::to_string(want));
      }
    }
    // Padding columns between rows must be left exactly as they were.
    for (int64_t j = s.n; j < s.ldc && i + 1 < s.m; ++j) {
      const float before = C0[i * s.ldc + j], after = C[i * s.ldc + j];
      const bool same = (std::isnan(before) && std::isnan(after)) || before == after;
      if (!same && bad++ < 3) CHECK_MSG(false, describe(s, level, 1) + ": wrote into padding");
    }
  }
}

const ShapeCase kOddShapes[] = {
    {1, 1, 1},      {1, 7, 17},    {2, 97, 33},   {3, 17, 513},   {4, 129, 64},   {5, 33, 7},
    {6, 256, 97},   {7, 1, 97},    {8, 513, 17},  {9, 31, 16},    {13, 61, 200},  {16, 97, 257},
    {17, 17, 17},   {23, 7, 300},  {31, 64, 1},   {64, 97, 129},  {97, 97, 97},   {127, 33, 513},
    {129, 257, 65}, {200, 45, 31}, {513, 17, 97}, {37, 700, 300}, {300, 37, 600},
};

ThreadPool* pool_of(int threads) {
  static std::unique_ptr<ThreadPool> pools[4];
  if (threads <= 1) return nullptr;
  if (!pools[threads]) pools[threads] = std::make_unique<ThreadPool>(threads);
  return pools[threads].get();
}

}  // namespace

TEST(gemm_fast_matches_reference_all_layouts) {
  Rng rng(1234);
  for (SimdLevel level : runnable_simd_levels()) {
    for (const ShapeCase& c : kOddShapes) {
      for (int t = 0; t < 4; ++t) {
        GemmShape s;
        s.m = c.m;
        s.n = c.n;
        s.k = c.k;
        s.ta = (t & 1) ? Trans::kT : Trans::kN;
        s.tb = (t & 2) ? Trans::kT : Trans::kN;
        check_shape(rng, s, level, pool_of(1 + (c.m + c.n) % 3), 0);
      }
    }
  }
}

TEST(gemm_alpha_beta_and_padding) {
  Rng rng(99);
  const float alphas[] = {1.0f, -0.5f, 2.0f};
  const float betas[] = {0.0f, 1.0f, 0.25f};
  for (SimdLevel level : runnable_simd_levels()) {
    for (const ShapeCase& c :
         {ShapeCase{5, 97, 300}, ShapeCase{33, 17, 513}, ShapeCase{130, 70, 260}}) {
      for (int i = 0; i < 3; ++i) {
        GemmShape s;
        s.m = c.m;
        s.n = c.n;
        s.k = c.k;
        s.alpha = alphas[i];
        s.beta = betas[(i + 1) % 3];
        s.ta = i == 1 ? Trans::kT : Trans::kN;
        s.tb = i == 2 ? Trans::kN : Trans::kT;
        check_shape(rng, s, level, pool_of(2), 3 + i);
      }
    }
  }
}

TEST(gemm_skinny_decode_shapes) {
  Rng rng(7);
  for (SimdLevel level : runnable_simd_levels()) {
    for (int64_t m = 1; m <= 17; ++m) {
      for (Trans tb : {Trans::kT, Trans::kN}) {
        GemmShape s;
        s.m = m;
        s.n = 1000 + m;  // not a multiple of any vector width
        s.k = 257 + 2 * m;
        s.tb = tb;
        check_shape(rng, s, level, pool_of(2), 0);
      }
    }
    // A decode batch against the MLP down projection: m rows of k no longer fit L1, so the NT
    // kernel runs k in ranges (odd k: the last range is short) accumulating into C, with beta.
    for (int64_t m : {2, 5, 8, 11}) {
      GemmShape s;
      s.m = m;
      s.n = 389;
      s.k = 3001 + m;
      s.tb = Trans::kT;
      s.beta = m == 8 ? 0.5f : 0.0f;
      check_shape(rng, s, level, pool_of(2), 0);
    }
  }
}

// K and N past the AVX-512 cache blocks (kc 768, nc 1024): several K blocks accumulating into C
// (split evenly, not a multiple of 16) and several N blocks, every layout, alpha and beta; M = 13
// runs the skinny path, whose NN kernel also accumulates K chunks into C.
TEST(gemm_multiple_cache_blocks) {
  Rng rng(31);
  for (SimdLevel level : runnable_simd_levels()) {
    for (int t = 0; t < 8; ++t) {
      GemmShape s;
      s.m = t < 4 ? 29 : 13;
      s.n = 1061;
      s.k = 1555;
      s.alpha = t % 4 == 1 ? -0.5f : 1.0f;
      s.beta = t % 4 == 2 || t == 4 ? 0.25f : 0.0f;
      s.ta = (t & 1) ? Trans::kT : Trans::kN;
      s.tb = (t & 2) ? Trans::kT : Trans::kN;
      check_shape(rng, s, level, pool_of(1 + t % 2), t % 2);
    }
  }
}

TEST(gemm_degenerate_sizes) {
  Rng rng(5);
  for (SimdLevel level : runnable_simd_levels()) {
    for (const ShapeCase& c :
         {ShapeCase{0, 5, 5}, ShapeCase{5, 0, 5}, ShapeCase{5, 5, 0}, ShapeCase{0, 0, 0}}) {
      GemmShape s;
      s.m = c.m;
      s.n = c.n;
      s.k = c.k;
      s.beta = 0.5f;
      check_shape(rng, s, level, pool_of(2), 0);
      s.beta = 0.0f;  // k == 0, beta == 0: C becomes exactly zero
      check_shape(rng, s, level, nullptr, 1);
    }
  }
}

TEST(gemm_rejects_bad_shapes) {
  GemmShape s;
  s.m = 4;
  s.n = 4;
  s.k = 4;
  s.lda = 3;  // < k
  s.ldb = 4;
  s.ldc = 4;
  Status st = gemm_check_shape(s);
  CHECK(st.code() == StatusCode::kOutOfRange);
  CHECK(st.message().find("lda") != std::string::npos);
  s.lda = 4;
  s.m = -1;
  CHECK(gemm_check_shape(s).code() == StatusCode::kOutOfRange);
  s.m = int64_t{1} << 62;
  s.lda = int64_t{1} << 62;
  CHECK(gemm_check_shape(s).code() == StatusCode::kOutOfRange);  // overflows int64
}

}  // namespace npr::test
