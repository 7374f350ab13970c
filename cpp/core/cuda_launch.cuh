// Inside .cu files only: a kernel launch that needs more than 48 KB of dynamic shared memory and
// wants as many CTAs an SM as that allows, with every CUDA status checked and named.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "core/cuda_check.cuh"
#include "core/status.h"

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
#if !defined(NPR_EMU)
  kernel<<<grid, threads, static_cast<size_t>(smem), stream>>>(static_cast<Args&&>(args)...);
  return cuda_launch_status(what);
#else
  // The emulator build (cpp/tests/emu): the grid runs on the CPU, faults come back named.
  (void)stream;
  const std::string fault = ::emu::launch(grid, threads, smem, [&] { kernel(args...); });
  if (!fault.empty()) return Status(StatusCode::kCuda, std::string(what) + ": " + fault);
  return Status::ok();
#endif
}

}  // namespace npr
