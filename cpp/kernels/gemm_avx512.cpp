// GEMM kernels for AVX-512F (compiled with -mavx512f -mfma; chosen at run time).
#include <immintrin.h>

#include <cstdint>

#include "kernels/gemm_internal.h"

namespace {

struct V512 {
  using vec = __m512;
  static constexpr int W = 16;
  static inline vec zero() { return _mm512_setzero_ps(); }
  static inline vec load(const float* p) { return _mm512_loadu_ps(p); }
  static inline void store(float* p, vec v) { _mm512_storeu_ps(p, v); }
  static inline __mmask16 mask(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static inline vec load_n(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static inline void store_n(float* p, vec v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  static inline vec bcast(float x) { return _mm512_set1_ps(x); }
  static inline vec fma(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
  static inline float reduce(vec v) { return _mm512_reduce_add_ps(v); }
};

#include "kernels/gemm_simd.inc"

#ifndef TUNE_MR
#define TUNE_MR 12
#define TUNE_KC 256
#define TUNE_MC 12
#define TUNE_NC 3072
#endif
constexpr int kMr = TUNE_MR;

void micro(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n,
           float beta) {
  micro_kernel<V512, kMr>(kc, a, b, c, ldc, m, n, beta);
}
void dot(const float* a, int64_t m, int64_t k, const float* b, int64_t ldb, int64_t n0,
         int64_t n1, float* c, int64_t ldc, float beta) {
  dot_nt<V512, 4, 4>(a, m, k, b, ldb, n0, n1, c, ldc, beta);
}
void axpy(const float* a, int64_t m, int64_t k, const float* b, int64_t ldb, int64_t n0,
          int64_t n1, float* c, int64_t ldc, float beta) {
  axpy_nn<V512, 6, 4>(a, m, k, b, ldb, n0, n1, c, ldc, beta);
}

}  // namespace

namespace npr::gemm_internal {
const IsaKernels kAvx512Kernels = {
    "avx512", kMr, 32, /*kc=*/TUNE_KC, /*mc=*/kMr * TUNE_MC, /*nc=*/TUNE_NC,
    /*skinny_max_m=*/16, /*skinny_cols=*/64, micro, dot, axpy,
};
}  // namespace npr::gemm_internal
