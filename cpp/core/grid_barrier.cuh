// A barrier across every CTA of a persistent kernel (the one-kernel decode step), for grids whose
// CTAs are all resident at once (a cooperative launch guarantees it). One arrival counter in
// device memory, zeroed before the launch and never reset inside it: barrier e of the kernel
// waits until the counter reaches e x gridDim.x, so no CTA can run into the next barrier's
// count. Writes before a barrier are visible to every thread after it: the CTA syncs, thread 0
// arrives with a release add (one fence, as cooperative groups' fence + atomic), spins with
// relaxed loads and fences once it has seen the count (PTX's acquire pattern), and the CTA syncs
// again.
//
// A barrier that waits longer than timeout_ns (some CTA never arrived: not all were resident,
// or another kernel holds SMs) sets *broken, and every barrier of the launch after that stops
// waiting; what the kernel computes then is garbage, so it also sets *broken_host (host-mapped
// memory, written on that path only: a read of it would cross the bus) for the host to say so
// instead of returning it. Never a hang. Inside .cu files only.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace npr::grid {

#if defined(NPR_EMU)
// The emulator build (cpp/tests/emu): every load here is a poll of the spin loop, so it gives
// way to the other threads first; the timer is the emulated clock.
__device__ __forceinline__ uint32_t load_relaxed(const uint32_t* p) {
  emu::spin_wait();
  return *reinterpret_cast<const volatile uint32_t*>(p);
}
__device__ __forceinline__ void add_release(uint32_t* p, uint32_t v) {
  emu::ptx::red_add_u32(p, v);
}
__device__ __forceinline__ uint64_t now_ns() {
  return emu::clock_ns();
}
#else
__device__ __forceinline__ uint32_t load_relaxed(const uint32_t* p) {
  uint32_t v;
  asm volatile("ld.relaxed.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
  return v;
}

__device__ __forceinline__ void add_release(uint32_t* p, uint32_t v) {
  asm volatile("red.release.gpu.global.add.u32 [%0], %1;\n" ::"l"(p), "r"(v) : "memory");
}

__device__ __forceinline__ uint64_t now_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(t));
  return t;
}
#endif

struct Barrier {
  uint32_t* count;       // device memory, zeroed before the launch
  int32_t* broken;       // device memory, zeroed before the launch
  int32_t* broken_host;  // host-mapped, set to 1 on a timeout
  uint64_t timeout_ns;   // longest wait at one barrier
};

// One thread spins until *count reaches target (or the launch's barriers broke, or this wait
// passed b's timeout: then it breaks them), then fences: what the adds before target released
// is visible to its CTA after a __syncthreads.
__device__ __forceinline__ void wait_count(const Barrier& b, const uint32_t* count,
                                           uint32_t target) {
  volatile int32_t* broken = b.broken;
  uint64_t t0 = 0;
  while (load_relaxed(count) < target) {
    if (*broken) break;
    const uint64_t t = now_ns();
    if (t0 == 0) {
      t0 = t;
    } else if (t - t0 > b.timeout_ns) {
      *broken = 1;
      *reinterpret_cast<volatile int32_t*>(b.broken_host) = 1;
      break;
    }
  }
  __threadfence();
}

// Every thread of every CTA calls it the same number of times; `epoch` counts the calls (a
// per-thread register, the same in every thread).
__device__ __forceinline__ void sync(const Barrier& b, uint32_t& epoch) {
  __syncthreads();
  ++epoch;
  if (threadIdx.x == 0) {
    add_release(b.count, 1u);  // cumulative: the CTA's writes before the __syncthreads go first
    wait_count(b, b.count, epoch * gridDim.x);
  }
  __syncthreads();
}

}  // namespace npr::grid
