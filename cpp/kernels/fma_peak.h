// FMA peak probe: the FP32 FLOP/s one core reaches with a given SIMD level, measured with
// independent FMA chains (enough to fill both FMA pipes), so that benchmarks can report
// figures as a fraction of the peak of the machine they run on.
#pragma once

#include "core/cpu_info.h"
#include "core/status.h"

namespace npr {

// Runs on the calling thread for about `seconds` (best of several short trials) and writes
// the FP32 GFLOP/s reached (a multiply-add counts 2).
Status fma_peak_gflops(SimdLevel level, double seconds, double* gflops);

namespace fma_internal {
// Runs `iters` iterations of 12 independent FMA chains; returns flops per iteration.
int fma_loop_portable(long iters, float* sink);
#if defined(NPR_HAVE_X86_KERNELS)
int fma_loop_avx2(long iters, float* sink);
int fma_loop_avx512(long iters, float* sink);
#endif
}  // namespace fma_internal

}  // namespace npr
