// GEMM kernels for AVX2 + FMA (compiled with -mavx2 -mfma; chosen at run time).
#include <immintrin.h>

#include <cstdint>

#include "core/sanitizer_noinline.h"
#include "kernels/gemm_internal.h"

namespace {

struct V256 {
  using vec = __m256;
  static constexpr int W = 8;
  static constexpr int kRegs = 16;
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
  // A loaded value pinned in a register: otherwise GCC folds the load into every FMA that uses
  // it, and a row of a feeding NB FMAs costs NB loads, which set the pace of a skinny tile.
  static inline vec in_reg(vec v) {
    asm("" : "+x"(v));
    return v;
  }
  // Same tree as the AVX-512 one, over two 128-bit lanes.
  static inline void reduce4(vec a, vec b, vec c, vec d, float* out) {
    const vec ab = _mm256_add_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));
    const vec cd = _mm256_add_ps(_mm256_unpacklo_ps(c, d), _mm256_unpackhi_ps(c, d));
    const __m256d abd = _mm256_castps_pd(ab), cdd = _mm256_castps_pd(cd);
    const vec s = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(abd, cdd)),
                                _mm256_castpd_ps(_mm256_unpackhi_pd(abd, cdd)));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1)));
  }
  static inline float reduce(vec v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static inline vec mul(vec a, vec b) { return _mm256_mul_ps(a, b); }
  static inline vec keep_n(vec v, int n) { return _mm256_and_ps(v, _mm256_castsi256_ps(mask(n))); }
  // 8 x 8 in place: 4 x 4 transposes inside each 128-bit lane, then the lanes are swapped into
  // place.
  static inline void transpose(vec t[8]) {
    __m256d u[8];
    for (int q = 0; q < 8; q += 4) {  // rows q..q+3
      const vec lo01 = _mm256_unpacklo_ps(t[q], t[q + 1]),
                hi01 = _mm256_unpackhi_ps(t[q], t[q + 1]);
      const vec lo23 = _mm256_unpacklo_ps(t[q + 2], t[q + 3]);
      const vec hi23 = _mm256_unpackhi_ps(t[q + 2], t[q + 3]);
      // u[q + c], 128-bit lane l: rows q..q+3 of column 4 l + c.
      u[q + 0] = _mm256_unpacklo_pd(_mm256_castps_pd(lo01), _mm256_castps_pd(lo23));
      u[q + 1] = _mm256_unpackhi_pd(_mm256_castps_pd(lo01), _mm256_castps_pd(lo23));
      u[q + 2] = _mm256_unpacklo_pd(_mm256_castps_pd(hi01), _mm256_castps_pd(hi23));
      u[q + 3] = _mm256_unpackhi_pd(_mm256_castps_pd(hi01), _mm256_castps_pd(hi23));
    }
    for (int c = 0; c < 4; ++c) {
      const vec a = _mm256_castpd_ps(u[c]), b = _mm256_castpd_ps(u[4 + c]);
      t[c] = _mm256_permute2f128_ps(a, b, 0x20);
      t[4 + c] = _mm256_permute2f128_ps(a, b, 0x31);
    }
  }
};

#include "kernels/gemm_simd.inc"

constexpr int kMr = 6;
constexpr int kNr = 16;

void micro(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n,
           float beta) {
  micro_kernel_edge<V256, kMr>(kc, a, b, c, ldc, m, n, beta);
}
void dot(const float* a, int64_t lda, int64_t m, int64_t k, const float* b, int64_t ldb, int64_t n0,
         int64_t n1, float* c, int64_t ldc, float beta) {
  dot_nt<V256, 4, 3>(a, lda, m, k, b, ldb, n0, n1, c, ldc, beta);
}
void axpy(const float* a, int64_t m, int64_t k, const float* b, int64_t ldb, int64_t n0, int64_t n1,
          float* c, int64_t ldc, float beta) {
  axpy_nn<V256, 6, 2, 128>(a, m, k, b, ldb, n0, n1, c, ldc, beta);
}
void pack_a(const float* A, int64_t lda, bool a_trans, float alpha, int64_t i0, int64_t mc,
            int64_t p0, int64_t kc, float* dst) {
  pack_a_panels<V256, kMr>(A, lda, a_trans, alpha, i0, mc, p0, kc, dst);
}
void pack_b(const float* B, int64_t ldb, bool b_trans, int64_t j0, int64_t nc, int64_t p0,
            int64_t kc, float* dst) {
  pack_b_panels<V256, kNr>(B, ldb, b_trans, j0, nc, p0, kc, dst);
}

}  // namespace

namespace npr::gemm_internal {
const IsaKernels kAvx2Kernels = {
    "avx2",
    kMr,
    kNr,
    /*kc=*/256,
    /*mc=*/kMr * 16,
    /*nc=*/3072,
    /*skinny_max_m=*/16,
    /*skinny_cols=*/32,
    micro,
    dot,
    axpy,
    pack_a,
    pack_b,
};
}  // namespace npr::gemm_internal
