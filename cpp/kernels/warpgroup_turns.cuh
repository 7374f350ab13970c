// FlashAttention-3's ping-pong between the two consumer warpgroups of a warp-specialised Hopper
// kernel: they take turns issuing their MMAs, so that one's softmax runs under the other's. Named
// barrier 1 + hh is warpgroup hh's: it waits there (its own arrivals and the other's), and
// arrives at the other's when its MMAs are issued. Warpgroup 0 goes first: warpgroup 1 arrives
// once at the start. Both must take the same number of turns. With kOn false every call is
// empty. Inside .cu files (and the emulator).
#pragma once

#include "kernels/named_barrier.cuh"

namespace npr {

template <bool kOn>
struct WarpgroupTurns {
  int hh;         // this warpgroup: 0 or 1
  int consumers;  // the threads of both warpgroups

  __device__ __forceinline__ void start() const {
    if (kOn && hh == 1) yield();
  }
  // Before issuing: waits for the other warpgroup to have issued.
  __device__ __forceinline__ void take() const {
    if constexpr (kOn) named_barrier::sync(1 + hh, consumers);
  }
  // After issuing: lets the other warpgroup issue.
  __device__ __forceinline__ void yield() const {
    if constexpr (kOn) named_barrier::arrive(2 - hh, consumers);
  }
};

}  // namespace npr
