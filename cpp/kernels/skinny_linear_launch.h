// Host helpers shared by the skinny linear launchers (skinny_linear.cu, skinny_linear_rmsnorm.cu):
// argument checks, the 16-byte-path test and the dispatch on the batch's row count.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>

#include "core/status.h"
#include "kernels/skinny_linear_cuda.h"

namespace npr::skinny {

inline Status check_call(const char* op, const void* y, const void* x, const void* W, int64_t rows,
                         int64_t in, int64_t out) {
  if (rows < 1 || rows > kSkinnyMaxRows || in <= 0 || out <= 0)
    return Status::invalid(std::string(op) +
                           ": expected 1 <= rows <= " + std::to_string(kSkinnyMaxRows) +
                           " and in, out > 0 (got rows=" + std::to_string(rows) +
                           " in=" + std::to_string(in) + " out=" + std::to_string(out) + ")");
  if (!y || !x || !W) return Status::invalid(std::string(op) + ": null device pointer");
  return Status::ok();
}

// The prefetch range for the next kernel: none, or bytes > 0 from a non-null pointer.
inline Status check_ahead(const char* op, const L2Ahead& a) {
  if (a.bytes < 0 || (a.bytes > 0 && !a.p))
    return Status::invalid(std::string(op) + ": the L2 prefetch range needs a pointer and " +
                           "bytes >= 0 (got bytes=" + std::to_string(a.bytes) + ")");
  return Status::ok();
}

// Whether rows of x and W start on 16 bytes (the chunked path); x null: x is staged (aligned).
inline bool vector_ok(const void* x, const void* W, int64_t in) {
  return in % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(W) % 16 == 0;
}

// Calls f(std::integral_constant<int, M>, std::bool_constant<VEC>) for the runtime rows, vec.
template <typename F>
Status with_rows(int64_t rows, bool vec, F&& f) {
  auto v = [&](auto m) { return vec ? f(m, std::true_type{}) : f(m, std::false_type{}); };
  switch (rows) {
    case 1: return v(std::integral_constant<int, 1>{});
    case 2: return v(std::integral_constant<int, 2>{});
    case 3: return v(std::integral_constant<int, 3>{});
    case 4: return v(std::integral_constant<int, 4>{});
    case 5: return v(std::integral_constant<int, 5>{});
    case 6: return v(std::integral_constant<int, 6>{});
    case 7: return v(std::integral_constant<int, 7>{});
    default: return v(std::integral_constant<int, 8>{});
  }
}

}  // namespace npr::skinny
