// Fused-attention tile kernels in plain C++ for CPUs without AVX2 (and non-x86 builds): the
// same templates over an 8-lane array the compiler may vectorise with whatever it targets.
#include <cmath>
#include <cstdint>

#include "core/sanitizer_noinline.h"
#include "kernels/parallel_attention_internal.h"

namespace {

using npr::attn_internal::kTile;

struct VPortable {
  struct vec {
    float v[8];
  };
  static constexpr int W = 8;
  static constexpr int kRegs = 16;
  template <typename F>
  static inline vec map(F f) {
    vec r;
    for (int i = 0; i < W; ++i) r.v[i] = f(i);
    return r;
  }
  static inline vec zero() { return vec{}; }
  static inline vec load(const float* p) {
    return map([&](int i) { return p[i]; });
  }
  static inline void store(float* p, vec x) {
    for (int i = 0; i < W; ++i) p[i] = x.v[i];
  }
  static inline vec load_n(const float* p, int n) {
    return map([&](int i) { return i < n ? p[i] : 0.0f; });
  }
  static inline void store_n(float* p, vec x, int n) {
    for (int i = 0; i < n; ++i) p[i] = x.v[i];
  }
  static inline vec bcast(float x) {
    return map([&](int) { return x; });
  }
  static inline vec fma(vec a, vec b, vec c) {
    return map([&](int i) { return std::fma(a.v[i], b.v[i], c.v[i]); });
  }
  static inline vec add(vec a, vec b) {
    return map([&](int i) { return a.v[i] + b.v[i]; });
  }
  static inline vec sub(vec a, vec b) {
    return map([&](int i) { return a.v[i] - b.v[i]; });
  }
  static inline vec mul(vec a, vec b) {
    return map([&](int i) { return a.v[i] * b.v[i]; });
  }
  static inline vec max(vec a, vec b) {
    return map([&](int i) { return a.v[i] > b.v[i] ? a.v[i] : b.v[i]; });
  }
  static inline float reduce(vec x) {
    float s = 0.0f;
    for (int i = 0; i < W; ++i) s += x.v[i];
    return s;
  }
  static inline float reduce_max(vec x) {
    float m = x.v[0];
    for (int i = 1; i < W; ++i) m = x.v[i] > m ? x.v[i] : m;
    return m;
  }
  static inline float lane0(vec x) { return x.v[0]; }
  static inline vec select(uint64_t bits, vec a, vec b) {
    return map([&](int i) { return (bits >> i) & 1u ? a.v[i] : b.v[i]; });
  }
  static inline vec round(vec x) {
    return map([&](int i) { return std::nearbyint(x.v[i]); });
  }
  static inline vec scale2(vec p, vec n) {
    return map([&](int i) { return std::ldexp(p.v[i], static_cast<int>(n.v[i])); });
  }
};

#include "kernels/parallel_attention_simd.inc"
// After the fused-attention templates: the decode tiles use their exp2v.
#include "kernels/decode_attention_simd.inc"

void nn(int64_t m, int64_t n, int64_t kk, const float* a, int64_t lda, const float* b, int64_t ldb,
        float* c, int64_t ldc, const float* row_scale, bool accumulate) {
  nn_impl<VPortable, 4, 2>(m, n, kk, a, lda, b, ldb, c, ldc, row_scale, accumulate);
}
void nn_t(int64_t m, int64_t n, int64_t kk, const float* a, int64_t lda, const float* b,
          int64_t ldb, float* c, int64_t ldc, const float* row_scale, bool accumulate) {
  nn_impl<VPortable, 4, 2, true>(m, n, kk, a, lda, b, ldb, c, ldc, row_scale, accumulate);
}

// Decode: up to 2 query vectors (16 rows); 4 x 16 value tiles.
constexpr int kDecVecs = 2;
void dec_values_fn(float* o, int64_t R, int64_t D, const float* p, int64_t rp, const float* v,
                   int64_t ldv, int n, const float* alpha) {
  dec_values<VPortable, 4, 2>(o, R, D, p, rp, v, ldv, n, alpha);
}

}  // namespace

namespace npr::attn_internal {
const AttnIsa kAttnPortable = {"portable",
                               nn,
                               nn_t,
                               softmax_tile<VPortable>,
                               grad_probs_tile<VPortable>,
                               VPortable::W,
                               kDecVecs,
                               dec_scores_nv<VPortable, kDecVecs>,
                               dec_softmax_nv<VPortable, kDecVecs>,
                               dec_values_fn};
}  // namespace npr::attn_internal
