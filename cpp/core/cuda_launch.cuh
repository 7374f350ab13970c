// Inside .cu files only: kernel launches the emulator build (cpp/tests/emu) can run too. A plain
// launch, and one that needs more than 48 KB of dynamic shared memory and wants as many CTAs an
// SM as that allows, with every CUDA status checked and named.
#pragma once

#include <cuda_runtime.h>

#include "core/cuda_check.cuh"
#include "core/status.h"

// NPR_LAUNCH(grid, threads, smem, stream, kernel)(args...): the triple-chevron launch; in the
// emulator build the grid runs on the CPU (emu_cuda_launch.h), and a fault is the sticky error
// later calls find, as a GPU's is. The kernel goes last, so the commas of a template's arguments
// stay inside __VA_ARGS__.
#if !defined(NPR_EMU)
#define NPR_LAUNCH(grid, threads, smem, stream, ...) __VA_ARGS__<<<grid, threads, smem, stream>>>
#else
#define NPR_LAUNCH(grid, threads, smem, stream, ...) \
  ::emu::cuda::KernelLaunch(grid, threads, smem, stream, __VA_ARGS__)
#endif

namespace npr {

// Opts `kernel` into `smem` bytes of dynamic shared memory and the maximum shared carveout of the
// unified L1 / shared storage, then launches it on `stream` with `args`. Errors name `what`.
template <typename... Params, typename... Args>
Status launch_with_shared(void (*kernel)(Params...), unsigned grid, unsigned threads, int smem,
                          cudaStream_t stream, const char* what, Args&&... args) {
  NPR_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem),
               what);
  NPR_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                    cudaSharedmemCarveoutMaxShared),
               what);
  NPR_LAUNCH(grid, threads, static_cast<size_t>(smem), stream, kernel)
  (static_cast<Args&&>(args)...);
  return cuda_launch_status(what);
}

}  // namespace npr
