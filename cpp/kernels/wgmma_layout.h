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
// Byte strides the descriptors carry: between 8-row groups, and (N-major) column blocks.
constexpr uint32_t kGroupStride = 1024;
NPR_HOST_DEVICE constexpr uint32_t column_block_stride(int rows) {
  return static_cast<uint32_t>(rows * 128);
}

}  // namespace npr::wgmma
