// Internal to the GEMM: the per-ISA kernel table that gemm.cpp drives.
//
// Each ISA variant (gemm_avx512.cpp, gemm_avx2.cpp, gemm_portable.cpp) fills one IsaKernels
// from the same templates (gemm_simd.inc) with its own vector type and tile sizes.
#pragma once

#include <cstdint>

#include "core/cpu_info.h"

namespace npr::gemm_internal {

struct IsaKernels {
  const char* name;
  int mr, nr;        // register tile of the packed path
  int kc, mc, nc;    // cache blocks: kc multiple of 1, mc of mr, nc of nr
  int skinny_max_m;  // M at or below this skips packing and streams B once
  int skinny_cols;   // column granularity of the skinny kernels (thread split unit)

  // Packed micro-kernel. a: packed (kc, mr), b: packed (kc, nr).
  // C (m, n) = A_panel . B_panel + beta * C for m <= mr, n <= nr; beta == 0 never reads C.
  void (*micro)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n,
                float beta);
  // Skinny NT: a (m, k) rows lda apart with alpha applied; b stored (N, k) with ldb.
  // C[0:m, n0:n1] = a . b[n0:n1]^T + beta * C.
  void (*dot_nt)(const float* a, int64_t lda, int64_t m, int64_t k, const float* b, int64_t ldb,
                 int64_t n0, int64_t n1, float* c, int64_t ldc, float beta);
  // Skinny NN: a (m, k) contiguous rows with alpha applied; b stored (k, N) with ldb.
  // C[0:m, n0:n1] = a . b[:, n0:n1] + beta * C.
  void (*axpy_nn)(const float* a, int64_t m, int64_t k, const float* b, int64_t ldb, int64_t n0,
                  int64_t n1, float* c, int64_t ldc, float beta);
  // Packs op(A)[i0 : i0+mc, p0 : p0+kc] times alpha into ceil(mc / mr) panels (kc, mr), rows
  // past mc zero. a_trans: A stored (K, M) with lda, else (M, K).
  void (*pack_a)(const float* A, int64_t lda, bool a_trans, float alpha, int64_t i0, int64_t mc,
                 int64_t p0, int64_t kc, float* dst);
  // Packs op(B)[p0 : p0+kc, j0 : j0+nc] into ceil(nc / nr) panels (kc, nr), columns past nc
  // zero. b_trans: B stored (N, K) with ldb, else (K, N).
  void (*pack_b)(const float* B, int64_t ldb, bool b_trans, int64_t j0, int64_t nc, int64_t p0,
                 int64_t kc, float* dst);
};

extern const IsaKernels kPortableKernels;
#if defined(NPR_HAVE_X86_KERNELS)
extern const IsaKernels kAvx2Kernels;
extern const IsaKernels kAvx512Kernels;
#endif

}  // namespace npr::gemm_internal
