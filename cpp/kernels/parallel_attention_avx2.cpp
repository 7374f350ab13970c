// Fused-attention tile kernels for AVX2 + FMA (compiled with x86-64-v3; chosen at run time).
#include <immintrin.h>

#include <cstdint>

#include "core/sanitizer_noinline.h"
#include "kernels/parallel_attention_internal.h"

namespace {

using npr::attn_internal::kTile;

struct V256 {
  using vec = __m256;
  static constexpr int W = 8;
  static constexpr int kRegs = 16;
  static inline __m256i mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static inline vec zero() { return _mm256_setzero_ps(); }
  static inline vec load(const float* p) { return _mm256_loadu_ps(p); }
  static inline void store(float* p, vec v) { _mm256_storeu_ps(p, v); }
  static inline vec load_n(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static inline void store_n(float* p, vec v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
  static inline vec bcast(float x) { return _mm256_set1_ps(x); }
  static inline vec fma(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
  static inline vec add(vec a, vec b) { return _mm256_add_ps(a, b); }
  static inline vec sub(vec a, vec b) { return _mm256_sub_ps(a, b); }
  static inline vec mul(vec a, vec b) { return _mm256_mul_ps(a, b); }
  static inline vec max(vec a, vec b) { return _mm256_max_ps(a, b); }
  static inline float reduce(vec v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
  }
  static inline float reduce_max(vec v) {
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
  }
  static inline float lane0(vec v) { return _mm256_cvtss_f32(v); }
  static inline vec select(uint64_t bits, vec a, vec b) {
    const __m256i lane = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256i on = _mm256_cmpeq_epi32(
        _mm256_and_si256(_mm256_set1_epi32(static_cast<int>(bits & 0xFFu)), lane), lane);
    return _mm256_blendv_ps(b, a, _mm256_castsi256_ps(on));
  }
  static inline vec round(vec x) {
    return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  // n in [-126, 1]: build 2^n from its exponent bits.
  static inline vec scale2(vec p, vec n) {
    const __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
  }
};

#include "kernels/parallel_attention_simd.inc"
// After the fused-attention templates: the decode tiles use their exp2v.
#include "kernels/decode_attention_simd.inc"

// 6 x 16 register tile: 12 accumulators, 2 B vectors and one broadcast of the 16 ymm.
void nn(int64_t m, int64_t n, int64_t kk, const float* a, int64_t lda, const float* b, int64_t ldb,
        float* c, int64_t ldc, const float* row_scale, bool accumulate) {
  nn_impl<V256, 6, 2>(m, n, kk, a, lda, b, ldb, c, ldc, row_scale, accumulate);
}
void nn_t(int64_t m, int64_t n, int64_t kk, const float* a, int64_t lda, const float* b,
          int64_t ldb, float* c, int64_t ldc, const float* row_scale, bool accumulate) {
  nn_impl<V256, 6, 2, true>(m, n, kk, a, lda, b, ldb, c, ldc, row_scale, accumulate);
}

// Decode: up to 2 query vectors (16 rows); 6 x 16 value tiles (12 accumulators).
constexpr int kDecVecs = 2;
void dec_values_fn(float* o, int64_t R, int64_t D, const float* p, int64_t rp, const float* v,
                   int64_t ldv, int n, const float* alpha) {
  dec_values<V256, 6, 2>(o, R, D, p, rp, v, ldv, n, alpha);
}

}  // namespace

namespace npr::attn_internal {
const AttnIsa kAttnAvx2 = {"avx2",
                           nn,
                           nn_t,
                           softmax_tile<V256>,
                           grad_probs_tile<V256>,
                           V256::W,
                           kDecVecs,
                           dec_scores_nv<V256, kDecVecs>,
                           dec_softmax_nv<V256, kDecVecs>,
                           dec_values_fn};
}  // namespace npr::attn_internal
