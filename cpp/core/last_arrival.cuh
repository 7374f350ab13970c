// The last of a known number of arrivals at a counter in device memory: work split over CTAs
// (a query's partial attention states, computed by different CTAs) is finished by whichever CTA
// completes its share last, with no grid barrier between. One thread of the arriving CTA calls
// arrive_last after a __syncthreads that follows the CTA's writes; the add is acquire-release
// at gpu scope, so those writes (cumulatively, through the __syncthreads) go before it, and the
// CTA that gets true sees every other arriver's writes once it has passed another
// __syncthreads. The last arriver resets the counter to zero: the next round of arrivals must
// be ordered after it (a grid barrier between rounds does that). Inside .cu files only.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace npr::arrival {

// Adds one arrival at *count; true for the arrival that makes it `expected`.
__device__ __forceinline__ bool arrive_last(uint32_t* count, uint32_t expected) {
#if defined(NPR_EMU)
  // One OS thread runs every emulated thread and a fiber gives way only where it waits: a
  // read-modify-write is atomic as written, and memory is coherent.
  if (++*count != expected) return false;
  *count = 0;
#else
  uint32_t old;
  asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], 1;\n"
               : "=r"(old)
               : "l"(count)
               : "memory");
  if (old + 1 != expected) return false;
  asm volatile("st.relaxed.gpu.global.u32 [%0], 0;\n" ::"l"(count) : "memory");
  // And a fence, as the grid barrier's waiter has once it has seen the count: the CTA's plain
  // loads after the caller's __syncthreads read what the other arrivers wrote, not lines an
  // earlier round left in this SM's L1. Once per last arrival.
  __threadfence();
#endif
  return true;
}

}  // namespace npr::arrival
