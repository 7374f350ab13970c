// Register hand-over between the warpgroups of a warp-specialised sm_90a kernel (setmaxnreg):
// a CTA of 384 threads at one CTA an SM starts at 168 registers a thread (ptxas' share of the
// register file, given __launch_bounds__(384, 1): without the minimum-blocks bound ptxas ignores
// setmaxnreg); the producer warpgroup gives registers back (shrink) and the consumer
// warpgroups take them (grow), so that their code is allocated past 168 without spilling.
// Every warp of a warpgroup executes the same call; the counts must add up across the CTA (the
// hardware's grow waits until the pool holds them). The emulator does not model registers:
// there both are no-ops. Inside sm_90a .cu files (and the emulator).
#pragma once

namespace npr::warpgroup_regs {

template <int N>
__device__ __forceinline__ void shrink() {
  static_assert(N >= 24 && N <= 256 && N % 8 == 0, "setmaxnreg takes 24..256, a multiple of 8");
#if !defined(NPR_EMU) && defined(__CUDA_ARCH__)
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}

template <int N>
__device__ __forceinline__ void grow() {
  static_assert(N >= 24 && N <= 256 && N % 8 == 0, "setmaxnreg takes 24..256, a multiple of 8");
#if !defined(NPR_EMU) && defined(__CUDA_ARCH__)
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}

}  // namespace npr::warpgroup_regs
