// Hopper's bulk copies from global into shared memory (cp.async.bulk, sm_90) completed on an
// mbarrier's transaction count: one thread hands the copy engine whole rows of bytes, and any
// thread waits for them on the barrier's phase. Unlike cp.async, they take no registers or
// per-thread copy slots, and unlike cp.async groups they are tracked per barrier, not per
// thread, so a kernel can keep a ring of them in flight while other code of the same thread
// commits and waits on cp.async groups of its own (the one-kernel decode step's weight stream
// beside its attention's K / V copies). Inside sm_90a .cu files (and the emulator, which runs
// them) only.
//
// Order of use: one thread init()s each barrier (count 1), fence_init(), a CTA barrier; then per
// phase of a barrier: one thread calls arrive_expect_tx(bar, bytes of the phase's copies) and
// issues the copies; readers wait(bar, parity of the phase: 0, 1, 0, ...) before reading. Before
// a buffer is copied into again, every reader must be done with it (a CTA barrier).
#pragma once

#include <cstdint>

#include "kernels/wgmma.cuh"

namespace npr::bulk_load {

// mbarrier.init: the barrier at shared address bar expects `count` arrivals a phase.
__device__ __forceinline__ void init(uint32_t bar, uint32_t count) {
#if defined(NPR_EMU)
  emu::ptx::mbarrier_init(bar, count);
#elif NPR_SM90A_DEVICE_CODE
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
#endif
}

// Makes the initialised barriers visible to the copy engine (before the CTA barrier that
// publishes them).
__device__ __forceinline__ void fence_init() {
#if !defined(NPR_EMU) && NPR_SM90A_DEVICE_CODE
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#endif
}

// One arrival at bar, after adding `bytes` to the transactions its phase waits for.
__device__ __forceinline__ void arrive_expect_tx(uint32_t bar, uint32_t bytes) {
#if defined(NPR_EMU)
  emu::ptx::mbarrier_arrive_expect_tx(bar, bytes);
#elif NPR_SM90A_DEVICE_CODE
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes)
               : "memory");
#endif
}

// One arrival at bar (a consumer handing its buffer back to the thread that refills it).
__device__ __forceinline__ void arrive(uint32_t bar) {
#if defined(NPR_EMU)
  emu::ptx::mbarrier_arrive(bar);
#elif NPR_SM90A_DEVICE_CODE
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
#endif
}

// A wait that has not ended after this long never will (a copy that was never issued, a count
// that cannot be met): the kernel traps, so the launch fails with an error instead of hanging the
// device (a phase's copies take microseconds; this leaves room for a sanitizer's slowdown).
constexpr uint64_t kWaitTimeoutNs = 20'000'000'000ull;

// Waits until the phase of bar with this parity has completed.
__device__ __forceinline__ void wait(uint32_t bar, uint32_t parity) {
#if defined(NPR_EMU)
  emu::ptx::mbarrier_wait_parity(bar, parity);  // a wait that cannot end is the deadlock fault
#elif NPR_SM90A_DEVICE_CODE
  uint64_t t0 = 0;
  for (;;) {
    uint32_t done = 0;
    asm volatile(
        "{\n"
        ".reg .pred p;\n"
        "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
        "selp.u32 %0, 1, 0, p;\n"
        "}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
    if (done) return;
    uint64_t t;
    asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(t));
    if (t0 == 0)
      t0 = t;
    else if (t - t0 > kWaitTimeoutNs)
      __trap();
  }
#endif
}

// bytes (a multiple of 16) from global src to shared dst (both 16-byte aligned), counted
// against bar's transactions when they land.
__device__ __forceinline__ void copy(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
#if defined(NPR_EMU)
  emu::ptx::bulk_load(dst, src, bytes, bar);
#elif NPR_SM90A_DEVICE_CODE
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::
          "r"(dst),
      "l"(src), "r"(bytes), "r"(bar)
      : "memory");
#endif
}

}  // namespace npr::bulk_load
