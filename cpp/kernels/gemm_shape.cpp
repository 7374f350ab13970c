// gemm.h's shape checks (gemm_check_shape, gemm_min_elements): plain host code, shared by the
// CPU GEMM and the CUDA one (gemm.cu), so that the kernel emulator's build (cpp/tests/emu) has
// them without the CPU kernels.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>

#include "core/tensor.h"
#include "kernels/gemm.h"

namespace npr {

Status gemm_check_shape(const GemmShape& s) {
  if (s.m < 0 || s.n < 0 || s.k < 0)
    return Status::out_of_range("gemm: sizes must be non-negative, got m=" + std::to_string(s.m) +
                                " n=" + std::to_string(s.n) + " k=" + std::to_string(s.k));
  const int64_t lda_min = std::max<int64_t>(1, s.ta == Trans::kN ? s.k : s.m);
  const int64_t ldb_min = std::max<int64_t>(1, s.tb == Trans::kN ? s.n : s.k);
  const int64_t ldc_min = std::max<int64_t>(1, s.n);
  if (s.lda < lda_min)
    return Status::out_of_range("gemm: lda must be >= " + std::to_string(lda_min) + ", got " +
                                std::to_string(s.lda));
  if (s.ldb < ldb_min)
    return Status::out_of_range("gemm: ldb must be >= " + std::to_string(ldb_min) + ", got " +
                                std::to_string(s.ldb));
  if (s.ldc < ldc_min)
    return Status::out_of_range("gemm: ldc must be >= " + std::to_string(ldc_min) + ", got " +
                                std::to_string(s.ldc));
  int64_t a, b, c;
  gemm_min_elements(s, &a, &b, &c);
  if (a < 0 || b < 0 || c < 0) return Status::out_of_range("gemm: operand sizes overflow int64");
  return Status::ok();
}

void gemm_min_elements(const GemmShape& s, int64_t* a, int64_t* b, int64_t* c) {
  // Elements spanned by a row-major (rows, cols) operand with leading dimension ld; -1 on
  // overflow.
  auto span = [](int64_t rows, int64_t cols, int64_t ld) -> int64_t {
    if (rows == 0 || cols == 0) return 0;
    int64_t r;
    if (mul_overflows(rows - 1, ld, &r) || r > INT64_MAX - cols) return -1;
    return r + cols;
  };
  const bool touches_ab = s.k > 0 && s.m > 0 && s.n > 0;
  *a = touches_ab ? (s.ta == Trans::kN ? span(s.m, s.k, s.lda) : span(s.k, s.m, s.lda)) : 0;
  *b = touches_ab ? (s.tb == Trans::kN ? span(s.k, s.n, s.ldb) : span(s.n, s.k, s.ldb)) : 0;
  *c = span(s.m, s.n, s.ldc);
}

}  // namespace npr
