// A CTA barrier other than __syncthreads' (barrier 0) that threads may reach at different
// places in their code: `barrier.sync id, count`, the non-.aligned form (bar.sync and
// __syncthreads are .aligned: every thread of the CTA must execute the same instruction). The
// ping-pong forward (parallel_attention_fwd_pipelined_sm90a.cu) has its two warpgroups meet at
// one barrier from two different points of their loops. Inside .cu files (and the emulator).
#pragma once

namespace npr::named_barrier {

// Waits until `count` threads (a multiple of 32) have arrived at barrier `id` (1..15).
__device__ __forceinline__ void sync(int id, int count) {
#if defined(NPR_EMU)
  emu::named_barrier_sync(id, static_cast<unsigned>(count));
#elif defined(__CUDA_ARCH__)
  asm volatile("barrier.sync %0, %1;\n" ::"r"(id), "r"(count) : "memory");
#endif
}

// Counts this thread at barrier `id` without waiting (threads that sync on it wait for these).
__device__ __forceinline__ void arrive(int id, int count) {
#if defined(NPR_EMU)
  emu::named_barrier_arrive(id, static_cast<unsigned>(count));
#elif defined(__CUDA_ARCH__)
  asm volatile("barrier.arrive %0, %1;\n" ::"r"(id), "r"(count) : "memory");
#endif
}

}  // namespace npr::named_barrier
