// Fused-attention tile kernels for AVX-512F (compiled with x86-64-v4; chosen at run time).
#include <immintrin.h>

#include <cstdint>

#include "core/sanitizer_noinline.h"
#include "kernels/parallel_attention_internal.h"

namespace {

using npr::attn_internal::kTile;

struct V512 {
  using vec = __m512;
  static constexpr int W = 16;
  static constexpr int kRegs = 32;
  static inline __mmask16 mask(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static inline vec zero() { return _mm512_setzero_ps(); }
  static inline vec load(const float* p) { return _mm512_loadu_ps(p); }
  static inline void store(float* p, vec v) { _mm512_storeu_ps(p, v); }
  static inline vec load_n(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static inline void store_n(float* p, vec v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  static inline vec bcast(float x) { return _mm512_set1_ps(x); }
  static inline vec fma(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
  static inline vec add(vec a, vec b) { return _mm512_add_ps(a, b); }
  static inline vec sub(vec a, vec b) { return _mm512_sub_ps(a, b); }
  static inline vec mul(vec a, vec b) { return _mm512_mul_ps(a, b); }
  static inline vec max(vec a, vec b) { return _mm512_max_ps(a, b); }
  static inline float reduce(vec v) { return _mm512_reduce_add_ps(v); }
  static inline float reduce_max(vec v) { return _mm512_reduce_max_ps(v); }
  static inline float lane0(vec v) { return _mm512_cvtss_f32(v); }
  static inline vec select(uint64_t bits, vec a, vec b) {
    return _mm512_mask_blend_ps(static_cast<__mmask16>(bits & 0xFFFFu), b, a);
  }
  static inline vec round(vec x) {
    return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  static inline vec scale2(vec p, vec n) { return _mm512_scalef_ps(p, n); }
};

#include "kernels/parallel_attention_simd.inc"
// After the fused-attention templates: the decode tiles use their exp2v.
#include "kernels/decode_attention_simd.inc"

// 6 x 64 register tile: 24 accumulators, 4 B vectors and one broadcast of the 32 zmm.
void nn(int64_t m, int64_t n, int64_t kk, const float* a, int64_t lda, const float* b, int64_t ldb,
        float* c, int64_t ldc, const float* row_scale, bool accumulate) {
  nn_impl<V512, 6, 4>(m, n, kk, a, lda, b, ldb, c, ldc, row_scale, accumulate);
}
void nn_t(int64_t m, int64_t n, int64_t kk, const float* a, int64_t lda, const float* b,
          int64_t ldb, float* c, int64_t ldc, const float* row_scale, bool accumulate) {
  nn_impl<V512, 6, 4, true>(m, n, kk, a, lda, b, ldb, c, ldc, row_scale, accumulate);
}

// Decode: up to 4 query vectors (64 rows: 8 branches of GQA 8, or 16 of 4); 6 x 64 value tiles.
constexpr int kDecVecs = 4;
void dec_values_fn(float* o, int64_t R, int64_t D, const float* p, int64_t rp, const float* v,
                   int64_t ldv, int n, const float* alpha) {
  dec_values<V512, 6, 4>(o, R, D, p, rp, v, ldv, n, alpha);
}

}  // namespace

namespace npr::attn_internal {
const AttnIsa kAttnAvx512 = {"avx512",
                             nn,
                             nn_t,
                             softmax_tile<V512>,
                             grad_probs_tile<V512>,
                             V512::W,
                             kDecVecs,
                             dec_scores_nv<V512, kDecVecs>,
                             dec_softmax_nv<V512, kDecVecs>,
                             dec_values_fn};
}  // namespace npr::attn_internal
