// Tensor maps for Hopper's tiled bulk copies (TMA): the 128-byte CUtensorMap a kernel takes as a
// __grid_constant__ parameter and hands to cp.async.bulk.tensor (kernels/tma_load.cuh). Plain
// C++ here, so that parameter structs can hold one without cuda.h; made by tma_map.cu through
// the driver's cuTensorMapEncodeTiled (reached through the runtime's driver entry point, so the
// addon does not link libcuda), or in the emulator build as the emulator's own encoding.
#pragma once

#include <cstdint>

#include "core/status.h"

namespace npr {

// A CUtensorMap's bytes (64-aligned, as the hardware wants them). Not in the emulator build:
// there kernels are host functions whose parameters the launch wrappers pass by value, and
// clang (14, the AddressSanitizer build, AVX-512) copied a 64-aligned argument with aligned
// 64-byte moves into a stack slot it had not aligned, a fault whenever the fiber's stack pointer
// was not a multiple of 64. Nothing in the emulator needs the alignment.
#if defined(NPR_EMU)
#define NPR_TMA_MAP_ALIGN 8
#else
#define NPR_TMA_MAP_ALIGN 64
#endif
struct alignas(NPR_TMA_MAP_ALIGN) TmaMap2d {
  unsigned char bytes[128];
};

// A map of the bf16 matrix at base: `rows` rows of `inner` elements, `ld` elements apart
// (ld >= inner; base 16-byte aligned, ld a multiple of 8), read in boxes of box_rows rows x 64
// elements (128 bytes) with the 128-byte swizzle, so that a box lands in shared memory as one
// column block of a wgmma sw128 tile (wgmma_layout.h); elements outside the matrix land as zeros.
Status make_tma_map_bf16_2d(TmaMap2d* out, const void* base, int64_t inner, int64_t rows,
                            int64_t ld, int box_rows);

// Whether make_tma_map_bf16_2d can encode here: the driver has cuTensorMapEncodeTiled (always in
// the emulator build). A caller choosing between the tensor-map kernels and the cp.async ones asks
// this once, so that a driver without the encoder gets the cp.async kernels, not an error.
bool tma_maps_available();

}  // namespace npr
