// GEMM kernels for AVX2 + FMA (compiled with -mavx2 -mfma; chosen at run time).
#include <immintrin.h>

#include <cstdint>

#include "kernels/gemm_internal.h"

namespace {

struct V256 {
  using vec = __m256;
  static constexpr int W = 8;
  static inline vec zero() { return _mm256_setzero_ps(); }
  static inline vec load(const float* p) { return _mm256_loadu_ps(p); }
  static inline void store(float* p, vec v) { _mm256_storeu_ps(p, v); }
  static inline __m256i mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static inline vec load_n(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static inline void store_n(float* p, vec v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
  static inline vec bcast(float x) { return _mm256_set1_ps(x); }
  static inline vec fma(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
  static inline float reduce(vec v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};

#include "kernels/gemm_simd.inc"

constexpr int kMr = 6;

void micro(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n,
           float beta) {
  micro_kernel<V256, kMr>(kc, a, b, c, ldc, m, n, beta);
}
void dot(const float* a, int64_t m, int64_t k, const float* b, int64_t ldb, int64_t n0,
         int64_t n1, float* c, int64_t ldc, float beta) {
  dot_nt<V256, 2, 4>(a, m, k, b, ldb, n0, n1, c, ldc, beta);
}
void axpy(const float* a, int64_t m, int64_t k, const float* b, int64_t ldb, int64_t n0,
          int64_t n1, float* c, int64_t ldc, float beta) {
  axpy_nn<V256, 6, 2>(a, m, k, b, ldb, n0, n1, c, ldc, beta);
}

}  // namespace

namespace npr::gemm_internal {
const IsaKernels kAvx2Kernels = {
    "avx2", kMr, 16, /*kc=*/256, /*mc=*/kMr * 16, /*nc=*/3072,
    /*skinny_max_m=*/16, /*skinny_cols=*/32, micro, dot, axpy,
};
}  // namespace npr::gemm_internal
