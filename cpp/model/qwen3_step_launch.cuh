// The one-kernel decode step's typed launches (see qwen3_cuda_step_kernel.h): at most
// kMaxCtasPerSm CTAs an SM, all resident (a cooperative launch). Included by the launcher
// (qwen3_cuda_step_kernel.cu: the plain kernel) and by qwen3_cuda_step_kernel_stream_sm90a.cu
// (the streamed one, whose bulk copies and mbarriers are sm_90's). Inside .cu files only.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "core/cuda_check.cuh"
#include "core/status.h"
#include "model/qwen3_step_kernel.cuh"

namespace npr::onestep {

constexpr int kMaxCtasPerSm = 4;

// The streamed kernel (STREAM = true), where this build has it:
// qwen3_cuda_step_kernel_stream_sm90a.cu (or, without sm_90a kernels, the launcher's fallback that
// says so).
bool streamed_compiled();
Status launch_streamed(int64_t rows, const Params& p, int64_t smem, int64_t* grid, cudaStream_t st);

template <int M, int D, bool STREAM>
Status launch_typed(const Params& p, int64_t smem, int64_t* grid, cudaStream_t st) {
  auto* kernel = step_kernel<M, D, STREAM>;
  const char* op = STREAM ? "decode (cuda, one-kernel step, streamed weights)"
                          : "decode (cuda, one-kernel step)";
  // An error some earlier call left behind is not this launch's: clear it before launching.
  (void)cudaGetLastError();
  // The opt-in belongs to the kernel, process-wide: another decoder (another model size) may
  // have set it to its own size since, so it is set on every launch (microseconds).
  NPR_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(smem)),
               op);
  if (*grid == 0) {  // first launch at this shape: the grid
    int dev = 0, sms = 0, per_sm = 0, coop = 0;
    NPR_CUDA_TRY(cudaGetDevice(&dev), op);
    NPR_CUDA_TRY(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), op);
    NPR_CUDA_TRY(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, dev), op);
    if (!coop)
      return Status::invalid(std::string(op) + ": the device cannot launch cooperative kernels");
    NPR_CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads,
                                                               static_cast<size_t>(smem)),
                 op);
    if (per_sm < 1)
      return Status::invalid(std::string(op) + ": not one CTA fits an SM with " +
                             std::to_string(smem) + " bytes of shared memory");
    *grid = static_cast<int64_t>(std::min(per_sm, kMaxCtasPerSm)) * sms;
  }
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(static_cast<unsigned>(*grid));
  cfg.blockDim = dim3(kThreads);
  cfg.dynamicSmemBytes = static_cast<size_t>(smem);
  cfg.stream = st;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeCooperative;
  attr[0].val.cooperative = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  NPR_CUDA_TRY(cudaLaunchKernelEx(&cfg, kernel, p), op);
  return cuda_launch_status(op);
}

template <bool STREAM>
Status launch_rows(int64_t rows, const Params& p, int64_t smem, int64_t* grid, cudaStream_t st) {
  constexpr int D = kHeadDim;
  switch (rows) {
    case 1: return launch_typed<1, D, STREAM>(p, smem, grid, st);
    case 2: return launch_typed<2, D, STREAM>(p, smem, grid, st);
    case 3: return launch_typed<3, D, STREAM>(p, smem, grid, st);
    case 4: return launch_typed<4, D, STREAM>(p, smem, grid, st);
    case 5: return launch_typed<5, D, STREAM>(p, smem, grid, st);
    case 6: return launch_typed<6, D, STREAM>(p, smem, grid, st);
    case 7: return launch_typed<7, D, STREAM>(p, smem, grid, st);
    default: return launch_typed<8, D, STREAM>(p, smem, grid, st);
  }
}

}  // namespace npr::onestep
