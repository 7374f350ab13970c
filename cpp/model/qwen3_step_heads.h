// Which kv head's attention reads each column tile of a decode step's stacked q|k|v projection:
// the one-kernel step's per-head readiness counts (qwen3_step_kernel.cuh, head_flags), where a
// kv head's attention starts once that head's tiles are written. The projection has
// (heads + 2 kv_heads) head_dim columns: the query heads, then the keys', then the values'; query
// head j belongs to kv head j / (heads / kv_heads). A tile is tile_cols columns inside one head
// (head_dim a multiple of tile_cols). Plain C++, so that the tests check it on the host.
#pragma once

#include <cstdint>

#include "core/host_device.h"

namespace npr {

NPR_HOST_DEVICE inline int qkv_tile_kv_head(int64_t tile, int64_t tile_cols, int heads,
                                            int kv_heads, int head_dim) {
  const int64_t head = tile * tile_cols / head_dim;  // of the heads + 2 kv_heads stacked
  if (head < heads) return static_cast<int>(head / (heads / kv_heads));
  return static_cast<int>((head - heads) % kv_heads);
}

// The tiles of one kv head a layer: its heads / kv_heads query heads, its key and its value.
NPR_HOST_DEVICE inline int64_t qkv_tiles_per_kv_head(int64_t tile_cols, int heads, int kv_heads,
                                                     int head_dim) {
  return static_cast<int64_t>(heads / kv_heads + 2) * head_dim / tile_cols;
}

}  // namespace npr
