// Where the hardware reads element (mn, k) of a wgmma operand that a shared-memory matrix
// descriptor with 128-byte swizzle describes, per the PTX ISA's canonical layouts (T = 8 bf16
// per 16 bytes): K-major ((8, m), (T, 2)) : ((8T, SBO), (1, T)); MN-major ((T, 8, m), (8, 2)) :
// ((1, T, LBO), (8T, SBO)); then the swizzle on the absolute shared address, bits 4..6 ^= bits
// 7..9. Written from the ISA's text, independently of kernels/wgmma_layout.h (which the kernels
// use to store their tiles): test_wgmma_layout.cpp checks the two agree, and the emulator
// (emu_ptx.cpp) reads wgmma operands through this.
#pragma once

#include <cstdint>

namespace emu {

inline uint32_t wgmma_sw128_address(uint64_t desc, bool k_major, int mn, int k) {
  const uint32_t start = static_cast<uint32_t>(desc & 0x3fffu) << 4;
  const uint32_t lbo = static_cast<uint32_t>((desc >> 16) & 0x3fffu) << 4;
  const uint32_t sbo = static_cast<uint32_t>((desc >> 32) & 0x3fffu) << 4;
  const uint32_t off = k_major ? (mn % 8) * 128 + (mn / 8) * sbo + k * 2
                               : (mn % 64) * 2 + (mn / 64) * lbo + (k % 8) * 128 + (k / 8) * sbo;
  const uint32_t a = start + off;
  return a ^ (((a >> 7) & 7u) << 4);
}

// The descriptor's layout type (bits 62..63: 1 = 128-byte swizzle) and base offset (49..51).
inline int wgmma_desc_swizzle(uint64_t desc) {
  return static_cast<int>(desc >> 62);
}
inline int wgmma_desc_base_offset(uint64_t desc) {
  return static_cast<int>((desc >> 49) & 7u);
}

}  // namespace emu
