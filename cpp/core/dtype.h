// Element types the runtime stores: f32, bf16 (as raw uint16 bits) and i32.
//
// bf16 conversion rounds to nearest even and keeps NaN a NaN (quiet), as PyTorch does.
#pragma once

#include <cstdint>
#include <cstring>

namespace npr {

enum class DType : int32_t { kF32 = 0, kBF16 = 1, kI32 = 2 };

inline int64_t dtype_size(DType t) {
  return t == DType::kBF16 ? 2 : 4;
}
const char* dtype_name(DType t);

struct bf16 {
  uint16_t bits;
};

inline float bf16_to_f32(bf16 v) {
  uint32_t u = static_cast<uint32_t>(v.bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline bf16 f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{static_cast<uint16_t>((u >> 16) | 0x0040u)};
  uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
  return bf16{static_cast<uint16_t>((u + rounding) >> 16)};
}

}  // namespace npr
