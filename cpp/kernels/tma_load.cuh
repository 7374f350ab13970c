// Hopper's tiled bulk copy (TMA) from global into shared memory through a tensor map
// (kernels/tma_map.h), completed on an mbarrier's transaction count as bulk_load.cuh's 1-D
// copies are: one thread issues a whole (box_rows, 64) bf16 box, which lands 128-byte swizzled
// as one column block of a wgmma sw128 tile. The map must be a __grid_constant__ kernel
// parameter (or in global memory behind a fence). Inside sm_90a .cu files (and the emulator).
#pragma once

#include <cstdint>

#include "kernels/tma_map.h"
#include "kernels/wgmma.cuh"

namespace npr::tma {

// The box of `map` whose first element is column x (a multiple of 8), row y, into the shared
// tile at dst (1024-aligned), counted against bar's transactions when it lands.
__device__ __forceinline__ void load_2d(uint32_t dst, const TmaMap2d* map, int x, int y,
                                        uint32_t bar) {
#if defined(NPR_EMU)
  emu::ptx::tensor_load_2d(dst, map, x, y, bar);
#elif NPR_SM90A_DEVICE_CODE
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%2, %3}], [%4];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(x), "r"(y), "r"(bar)
      : "memory");
#endif
}

}  // namespace npr::tma
