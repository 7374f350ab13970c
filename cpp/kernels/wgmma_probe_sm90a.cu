// wgmma_probe (wgmma_probe.h): the launcher of wgmma_probe_kernel.cuh's kernel. Compiled for
// sm_90a only (CMakeLists.txt).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <string>

#include "core/cuda_check.cuh"
#include "kernels/wgmma_probe.h"
#include "kernels/wgmma_probe_kernel.cuh"

namespace npr {

Status wgmma_probe(WgmmaProbe kind, const uint16_t* a, const uint16_t* b, float* d) {
  const char* what = "wgmma_probe";
  wgmma_probe_dev::probe_kernel<<<1, 128>>>(static_cast<int>(kind), a, b, d);
  NPR_TRY(cuda_launch_status(what));
  return cuda_status(cudaDeviceSynchronize(), what);
}

}  // namespace npr
