// Hopper's bulk reduction from shared to global memory (cp.reduce.async.bulk, sm_90): one thread
// hands the copy engine a whole shared buffer of fp32 sums to add into global memory, instead of
// every thread issuing red.global.add for its own elements. The backward's two-warpgroup dK / dV
// kernel sums its atomic dQ this way (FlashAttention-3 does the same). Inside sm_90a .cu files
// (and the emulator, which runs them) only.
//
// Order of use: every thread writes its part of the buffer, then fence_proxy_async_shared()
// (wgmma.cuh: generic-proxy writes become visible to the async proxy), then a CTA barrier, then
// one thread calls add_f32 and commit; before the buffer is written again that thread waits with
// wait_read<0>() (the engine has read it) and a barrier passes that on. Before the kernel exits
// it waits with wait_all<0>().
#pragma once

#include <cstdint>

#include "kernels/wgmma.cuh"

namespace npr::bulk {

// dst[0 .. bytes / 4) += the fp32 values at shared address src (both 16-byte aligned, bytes a
// multiple of 16), asynchronously, in this thread's current bulk group.
__device__ __forceinline__ void add_f32(float* dst, uint32_t src, uint32_t bytes) {
#if defined(NPR_EMU)
  emu::ptx::bulk_reduce_add_f32(dst, src, static_cast<int>(bytes));
#elif NPR_SM90A_DEVICE_CODE
  asm volatile(
      "cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 [%0], [%1], %2;\n" ::"l"(dst),
      "r"(src), "r"(bytes)
      : "memory");
#endif
}

// Closes this thread's current bulk group.
__device__ __forceinline__ void commit() {
#if defined(NPR_EMU)
  emu::ptx::bulk_commit();
#elif NPR_SM90A_DEVICE_CODE
  asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
#endif
}

// Waits until at most N of this thread's bulk groups still read their shared source.
template <int N>
__device__ __forceinline__ void wait_read() {
#if defined(NPR_EMU)
  emu::ptx::bulk_wait(N);
#elif NPR_SM90A_DEVICE_CODE
  asm volatile("cp.async.bulk.wait_group.read %0;\n" ::"n"(N) : "memory");
#endif
}

// Waits until at most N of this thread's bulk groups are incomplete (writes done).
template <int N>
__device__ __forceinline__ void wait_all() {
#if defined(NPR_EMU)
  emu::ptx::bulk_wait(N);
#elif NPR_SM90A_DEVICE_CODE
  asm volatile("cp.async.bulk.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

}  // namespace npr::bulk
