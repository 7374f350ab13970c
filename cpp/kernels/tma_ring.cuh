// The ring of shared-memory buffers a producer warp fills by tensor-map copies and consumer
// warps drain, as the warp-specialised attention kernels (parallel_attention_*_ws_sm90a.cu)
// use it: buffer j % kStages for item j, a full mbarrier per buffer (the copies' bytes, one
// arrival: the producer's expect_tx) and an empty one (one arrival per consumer warp once its
// MMAs on the buffer are done). Use u = j / kStages of a buffer is the u-th phase of both
// barriers. Plus the one-box-per-column-block load of a (rows, D) wgmma sw128 tile. Inside sm_90a
// .cu files (and the emulator).
#pragma once

#include <cstdint>

#include "kernels/bulk_load.cuh"
#include "kernels/tma_load.cuh"
#include "kernels/tma_map.h"
#include "kernels/wgmma.cuh"

namespace npr::tma_ring {

// A (Rows, D) sw128 tile at dst from `map` (boxes of Rows x 64): column x, row y onwards, D / 64
// copies counted against bar. With BufRows > Rows, dst is row r0 (a multiple of 8) of a
// (BufRows, D) tile, whose column blocks lie BufRows * 128 bytes apart: the rows land there.
template <int Rows, int D, int BufRows = Rows>
__device__ __forceinline__ void load_tile(uint32_t dst, const TmaMap2d* map, int x, int64_t y,
                                          uint32_t bar) {
  static_assert(BufRows >= Rows && Rows % 8 == 0, "whole 8-row swizzle groups");
#pragma unroll
  for (int cb = 0; cb < D / 64; ++cb)
    tma::load_2d(dst + cb * wgmma::column_block_stride(BufRows), map, x + 64 * cb,
                 static_cast<int>(y), bar);
}

// The ring's 2 kStages mbarriers from shared address bars (8-aligned): full ones, then empty.
template <int kStages>
struct Ring {
  uint32_t bars;

  __device__ __forceinline__ uint32_t full(int64_t j) const {
    return bars + 8 * static_cast<uint32_t>(j % kStages);
  }
  __device__ __forceinline__ uint32_t empty(int64_t j) const {
    return bars + 8 * static_cast<uint32_t>(kStages + j % kStages);
  }
  // By one thread, before the CTA barrier that publishes them (with bulk_load::fence_init).
  __device__ __forceinline__ void init(uint32_t consumer_warps) const {
    for (int s = 0; s < kStages; ++s) {
      bulk_load::init(full(s), 1);
      bulk_load::init(empty(s), consumer_warps);
    }
  }
  // Producer: waits until item j may take its buffer (use u - 1's consumers handed it back),
  // then announces `bytes` of copies for item j; the copies follow on full(j).
  __device__ __forceinline__ void acquire(int64_t j, uint32_t bytes) const {
    if (j >= kStages) bulk_load::wait(empty(j), static_cast<uint32_t>((j / kStages - 1) & 1));
    bulk_load::arrive_expect_tx(full(j), bytes);
  }
  // Consumer: waits for item j's copies.
  __device__ __forceinline__ void wait_full(int64_t j) const {
    bulk_load::wait(full(j), static_cast<uint32_t>((j / kStages) & 1));
  }
  // Consumer warp, once its MMAs on item j's buffer are done: lane 0 hands it back.
  __device__ __forceinline__ void release(int64_t j, int lane) const {
    if (lane == 0) bulk_load::arrive(empty(j));
  }
  // Waits until item n - 1 (the last) has been handed back by every consumer warp: the producer
  // warp leaves no earlier, since consumers may still meet barriers until then.
  __device__ __forceinline__ void drain(int64_t n) const {
    if (n > 0) bulk_load::wait(empty(n - 1), static_cast<uint32_t>(((n - 1) / kStages) & 1));
  }
};

}  // namespace npr::tma_ring
