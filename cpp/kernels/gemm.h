// GEMM, f32, row-major: C = alpha * op(A) * op(B) + beta * C.
//
// Shapes: C (M, N) with leading dimension ldc >= N.
//   op(A) (M, K): ta == kN reads A (M, K), lda >= K; ta == kT reads A stored (K, M), lda >= M.
//   op(B) (K, N): tb == kN reads B (K, N), ldb >= N; tb == kT reads B stored (N, K), ldb >= K.
// Linear layers keep weights as (out, in) like PyTorch, so forward is NT, dX is NN, dW is TN.
// beta == 0 overwrites C without reading it (NaN already in C does not propagate), as BLAS does.
// C must not overlap A or B. gemm_f32 is the fast path (packed, blocked, threaded, SIMD);
// gemm_f32_reference is the oracle: a plain triple loop accumulating in double.
#pragma once

#include <cstdint>

#include "core/cpu_info.h"
#include "core/status.h"

namespace npr {

enum class Trans : int { kN = 0, kT = 1 };

struct GemmShape {
  int64_t m = 0, n = 0, k = 0;
  Trans ta = Trans::kN, tb = Trans::kN;
  int64_t lda = 0, ldb = 0, ldc = 0;
  float alpha = 1.0f, beta = 0.0f;
};

// Ok when the shape is self-consistent (non-negative sizes, leading dimensions large enough);
// it does not know buffer lengths: callers that do check them with gemm_min_elements.
Status gemm_check_shape(const GemmShape& s);
// Elements each operand must hold for this shape (0 when the operand is not touched).
void gemm_min_elements(const GemmShape& s, int64_t* a, int64_t* b, int64_t* c);

Status gemm_f32(const CpuContext& ctx, const GemmShape& s, const float* A, const float* B,
                float* C);
Status gemm_f32_reference(const GemmShape& s, const float* A, const float* B, float* C);

}  // namespace npr
