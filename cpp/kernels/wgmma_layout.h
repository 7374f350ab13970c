// The shared-memory tile layout of Hopper's warpgroup MMA with 128-byte swizzle ("sw128"), as
// plain constexpr arithmetic (no CUDA headers), so host tests can check it and the sm_90a
// kernels (wgmma.cuh) share it.
//
// A (rows, cols) bf16 tile (cols a multiple of 64) is stored as cols / 64 column blocks of
// rows x 128 bytes; in block b, element (r, c) sits at byte b * rows * 128 + r * 128 +
// (((c % 64) / 8) ^ (r % 8)) * 16 + (c % 8) * 2: the 16-byte chunk index XOR the row mod 8,
// the swizzle the hardware applies to absolute shared addresses (so a tile starts 1024-byte
// aligned). A K-major operand (rows = M or N, cols = K) is read 16 K-columns a step: step k0
// starts in block k0 / 64 at byte (k0 % 64) * 2, 8-row groups 1024 bytes apart. An N-major
// operand (rows = K, cols = N) is read 16 K-rows a step: step k0 starts at byte k0 * 128,
// 8-row groups 1024 bytes apart, column blocks rows * 128 bytes apart.
#pragma once

#include <cstdint>

#include "core/host_device.h"

namespace npr::wgmma {

NPR_HOST_DEVICE constexpr uint32_t sw128_offset(int rows, int r, int c) {
  return static_cast<uint32_t>((c / 64) * rows * 128 + r * 128 + (((c % 64) / 8) ^ (r % 8)) * 16 +
                               (c % 8) * 2);
}
// Start-address offsets of the k-step at k0 from the tile: K-major, N-major.
NPR_HOST_DEVICE constexpr uint32_t k_major_step(int rows, int k0) {
  return static_cast<uint32_t>((k0 / 64) * rows * 128 + (k0 % 64) * 2);
}
NPR_HOST_DEVICE constexpr uint32_t n_major_step(int k0) {
  return static_cast<uint32_t>(k0 * 128);
}
// Shared-memory matrix descriptor: start address, leading / stride byte offsets (16-byte
// units, 14 bits each), 128-byte swizzle (mode 1 in bits 62-63), base offset 0.
NPR_HOST_DEVICE constexpr uint64_t sw128_desc(uint32_t smem_addr, uint32_t lead_bytes,
                                              uint32_t stride_bytes) {
  return static_cast<uint64_t>((smem_addr & 0x3ffffu) >> 4) |
         (static_cast<uint64_t>((lead_bytes >> 4) & 0x3fffu) << 16) |
         (static_cast<uint64_t>((stride_bytes >> 4) & 0x3fffu) << 32) | (1ull << 62);
}
// Byte strides the descriptors carry: between 8-row groups, and (N-major) column blocks.
constexpr uint32_t kGroupStride = 1024;
NPR_HOST_DEVICE constexpr uint32_t column_block_stride(int rows) {
  return static_cast<uint32_t>(rows * 128);
}

// K-major operand: the 16 K-columns at k0 of a sw128 tile of `rows` rows at `tile`.
NPR_HOST_DEVICE constexpr uint64_t k_major_desc(uint32_t tile, int rows, int k0) {
  return sw128_desc(tile + k_major_step(rows, k0), 16, kGroupStride);
}
// N-major operand: the 16 K-rows at k0 of a sw128 tile of `rows` (K) rows at `tile`.
NPR_HOST_DEVICE constexpr uint64_t n_major_desc(uint32_t tile, int rows, int k0) {
  return sw128_desc(tile + n_major_step(k0), column_block_stride(rows), kGroupStride);
}

// Descriptor `desc` moved by `bytes` (a multiple of 16) along its start address; the field
// cannot carry over (shared addresses stay below 2^18).
NPR_HOST_DEVICE constexpr uint64_t desc_plus(uint64_t desc, uint32_t bytes) {
  return desc + (bytes >> 4);
}

}  // namespace npr::wgmma
