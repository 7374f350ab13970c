// GEMM kernels for AVX-512F (compiled with -mavx512f -mfma; chosen at run time).
#include <immintrin.h>

#include <cstdint>

#include "core/sanitizer_noinline.h"
#include "kernels/gemm_internal.h"

namespace {

struct V512 {
  using vec = __m512;
  static constexpr int W = 16;
  static constexpr int kRegs = 32;
  static inline vec zero() { return _mm512_setzero_ps(); }
  static inline vec load(const float* p) { return _mm512_loadu_ps(p); }
  static inline void store(float* p, vec v) { _mm512_storeu_ps(p, v); }
  static inline __mmask16 mask(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static inline vec load_n(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static inline void store_n(float* p, vec v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  static inline vec bcast(float x) { return _mm512_set1_ps(x); }
  static inline vec fma(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
  // A loaded value pinned in a register: otherwise GCC folds the load into every FMA that uses
  // it, and a row of a feeding NB FMAs costs NB loads, which set the pace of a skinny tile.
  static inline vec in_reg(vec v) {
    asm("" : "+v"(v));
    return v;
  }
  static inline vec mul(vec a, vec b) { return _mm512_mul_ps(a, b); }
  static inline float reduce(vec v) { return _mm512_reduce_add_ps(v); }
  // Within each 128-bit lane: (a0+a2, b0+b2, a1+a3, b1+b3), then the 64-bit halves give
  // (a, b, c, d) lane sums; finally the four lanes are added.
  static inline void reduce4(vec a, vec b, vec c, vec d, float* out) {
    const vec ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
    const vec cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
    const __m512d abd = _mm512_castps_pd(ab), cdd = _mm512_castps_pd(cd);
    const vec s = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(abd, cdd)),
                                _mm512_castpd_ps(_mm512_unpackhi_pd(abd, cdd)));
    const __m256 h =
        _mm256_add_ps(_mm512_castps512_ps256(s),
                      _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1)));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
  }
  static inline vec keep_n(vec v, int n) { return _mm512_maskz_mov_ps(mask(n), v); }
  // 16 x 16 in place: 32-bit then 64-bit interleaves give 4 x 4 transposes inside each 128-bit
  // lane, then two rounds of 128-bit lane shuffles move those blocks into place.
  static inline void transpose(vec t[16]) {
    __m512d u[16];
    for (int q = 0; q < 16; q += 4) {  // rows q..q+3
      const vec lo01 = _mm512_unpacklo_ps(t[q], t[q + 1]),
                hi01 = _mm512_unpackhi_ps(t[q], t[q + 1]);
      const vec lo23 = _mm512_unpacklo_ps(t[q + 2], t[q + 3]);
      const vec hi23 = _mm512_unpackhi_ps(t[q + 2], t[q + 3]);
      // u[q + c], 128-bit lane l: rows q..q+3 of column 4 l + c.
      u[q + 0] = _mm512_unpacklo_pd(_mm512_castps_pd(lo01), _mm512_castps_pd(lo23));
      u[q + 1] = _mm512_unpackhi_pd(_mm512_castps_pd(lo01), _mm512_castps_pd(lo23));
      u[q + 2] = _mm512_unpacklo_pd(_mm512_castps_pd(hi01), _mm512_castps_pd(hi23));
      u[q + 3] = _mm512_unpackhi_pd(_mm512_castps_pd(hi01), _mm512_castps_pd(hi23));
    }
    for (int c = 0; c < 4; ++c) {
      const vec a = _mm512_castpd_ps(u[c]), b = _mm512_castpd_ps(u[4 + c]);
      const vec e = _mm512_castpd_ps(u[8 + c]), f = _mm512_castpd_ps(u[12 + c]);
      const vec v0 = _mm512_shuffle_f32x4(a, b, 0x88), v1 = _mm512_shuffle_f32x4(a, b, 0xDD);
      const vec w0 = _mm512_shuffle_f32x4(e, f, 0x88), w1 = _mm512_shuffle_f32x4(e, f, 0xDD);
      t[c] = _mm512_shuffle_f32x4(v0, w0, 0x88);
      t[4 + c] = _mm512_shuffle_f32x4(v1, w1, 0x88);
      t[8 + c] = _mm512_shuffle_f32x4(v0, w0, 0xDD);
      t[12 + c] = _mm512_shuffle_f32x4(v1, w1, 0xDD);
    }
  }
};

#include "kernels/gemm_simd.inc"

// Register tile 12 x 32 (24 zmm accumulators). Cache blocks, measured on a 2-core Sapphire
// Rapids class VM (48 KiB L1d, 2 MiB L2): kc 768 (the driver splits K evenly, so K = 1024 runs
// 2 x 512) keeps C tile traffic low and streams the (kc, 32) B panel from L2 fine; mc 96 keeps
// the A block (96, kc) in L2; nc 1024 bounds the packed B block to a few MiB.
constexpr int kMr = 12;
constexpr int kNr = 32;

void micro(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n,
           float beta) {
  micro_kernel_edge<V512, kMr>(kc, a, b, c, ldc, m, n, beta);
}
void dot(const float* a, int64_t lda, int64_t m, int64_t k, const float* b, int64_t ldb, int64_t n0,
         int64_t n1, float* c, int64_t ldc, float beta) {
  dot_nt<V512, 4, 4>(a, lda, m, k, b, ldb, n0, n1, c, ldc, beta);
}
// 8 rows x 64 columns per skinny NN tile: M = 16 is two row groups over an L1-resident chunk
// of B; measured ahead of 6 x 64 and 8 x 48 for M = 1..16 (B is memory bound, wide rows help).
void axpy(const float* a, int64_t m, int64_t k, const float* b, int64_t ldb, int64_t n0, int64_t n1,
          float* c, int64_t ldc, float beta) {
  axpy_nn<V512, 8, 4, 128>(a, m, k, b, ldb, n0, n1, c, ldc, beta);
}
void pack_a(const float* A, int64_t lda, bool a_trans, float alpha, int64_t i0, int64_t mc,
            int64_t p0, int64_t kc, float* dst) {
  pack_a_panels<V512, kMr>(A, lda, a_trans, alpha, i0, mc, p0, kc, dst);
}
void pack_b(const float* B, int64_t ldb, bool b_trans, int64_t j0, int64_t nc, int64_t p0,
            int64_t kc, float* dst) {
  pack_b_panels<V512, kNr>(B, ldb, b_trans, j0, nc, p0, kc, dst);
}

}  // namespace

namespace npr::gemm_internal {
const IsaKernels kAvx512Kernels = {
    "avx512",
    kMr,
    kNr,
    /*kc=*/768,
    /*mc=*/kMr * 8,
    /*nc=*/1024,
    /*skinny_max_m=*/16,
    /*skinny_cols=*/64,
    micro,
    dot,
    axpy,
    pack_a,
    pack_b,
};
}  // namespace npr::gemm_internal
