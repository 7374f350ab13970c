// GEMM kernels in plain C++ for CPUs without AVX2 (and non-x86 builds): the same templates
// over an 8-lane array the compiler may vectorise with whatever the target offers.
#include <cstdint>

#include "core/sanitizer_noinline.h"
#include "kernels/gemm_internal.h"

namespace {

struct VPortable {
  struct vec {
    float v[8];
  };
  static constexpr int W = 8;
  static constexpr int kRegs = 16;
  static inline vec zero() { return vec{}; }
  static inline vec load(const float* p) {
    vec r;
    for (int i = 0; i < W; ++i) r.v[i] = p[i];
    return r;
  }
  static inline void store(float* p, vec x) {
    for (int i = 0; i < W; ++i) p[i] = x.v[i];
  }
  static inline vec load_n(const float* p, int n) {
    vec r{};
    for (int i = 0; i < n; ++i) r.v[i] = p[i];
    return r;
  }
  static inline void store_n(float* p, vec x, int n) {
    for (int i = 0; i < n; ++i) p[i] = x.v[i];
  }
  static inline vec bcast(float x) {
    vec r;
    for (int i = 0; i < W; ++i) r.v[i] = x;
    return r;
  }
  static inline vec in_reg(vec v) { return v; }
  static inline vec fma(vec a, vec b, vec c) {
    for (int i = 0; i < W; ++i) c.v[i] += a.v[i] * b.v[i];
    return c;
  }
  static inline void reduce4(vec a, vec b, vec c, vec d, float* out) {
    out[0] = reduce(a);
    out[1] = reduce(b);
    out[2] = reduce(c);
    out[3] = reduce(d);
  }
  static inline float reduce(vec x) {
    float s = 0.0f;
    for (int i = 0; i < W; ++i) s += x.v[i];
    return s;
  }
  static inline vec mul(vec a, vec b) {
    for (int i = 0; i < W; ++i) a.v[i] *= b.v[i];
    return a;
  }
  static inline vec keep_n(vec x, int n) {
    for (int i = n; i < W; ++i) x.v[i] = 0.0f;
    return x;
  }
  static inline void transpose(vec t[W]) {
    for (int i = 0; i < W; ++i)
      for (int j = i + 1; j < W; ++j) {
        const float x = t[i].v[j];
        t[i].v[j] = t[j].v[i];
        t[j].v[i] = x;
      }
  }
};

#include "kernels/gemm_simd.inc"

constexpr int kMr = 4;
constexpr int kNr = 16;

void micro(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n,
           float beta) {
  micro_kernel<VPortable, kMr>(kc, a, b, c, ldc, m, n, beta);
}
void dot(const float* a, int64_t lda, int64_t m, int64_t k, const float* b, int64_t ldb, int64_t n0,
         int64_t n1, float* c, int64_t ldc, float beta) {
  dot_nt<VPortable, 2, 2>(a, lda, m, k, b, ldb, n0, n1, c, ldc, beta);
}
void axpy(const float* a, int64_t m, int64_t k, const float* b, int64_t ldb, int64_t n0, int64_t n1,
          float* c, int64_t ldc, float beta) {
  axpy_nn<VPortable, 4, 2, 128>(a, m, k, b, ldb, n0, n1, c, ldc, beta);
}
void pack_a(const float* A, int64_t lda, bool a_trans, float alpha, int64_t i0, int64_t mc,
            int64_t p0, int64_t kc, float* dst) {
  pack_a_panels<VPortable, kMr>(A, lda, a_trans, alpha, i0, mc, p0, kc, dst);
}
void pack_b(const float* B, int64_t ldb, bool b_trans, int64_t j0, int64_t nc, int64_t p0,
            int64_t kc, float* dst) {
  pack_b_panels<VPortable, kNr>(B, ldb, b_trans, j0, nc, p0, kc, dst);
}

}  // namespace

namespace npr::gemm_internal {
const IsaKernels kPortableKernels = {
    "scalar",           kMr,   kNr,
    /*kc=*/256,
    /*mc=*/kMr * 16,
    /*nc=*/2048,
    /*skinny_max_m=*/8,
    /*skinny_cols=*/16, micro, dot, axpy, pack_a, pack_b,
};
}  // namespace npr::gemm_internal
