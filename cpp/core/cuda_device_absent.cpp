// The CUDA probe of a CPU-only build: the .cu sources were not compiled in.
#include "core/cuda_device.h"

namespace npr {

const CudaInfo& cuda_info() {
  static const CudaInfo info = [] {
    CudaInfo i;
    i.reason =
        "not compiled: no nvcc was found when the addon was built (NPR_CUDA=auto) or "
        "NPR_CUDA=off; rebuild with nvcc on PATH and NPR_CUDA=on";
    return i;
  }();
  return info;
}

bool cuda_profiler_range(bool) {
  return false;
}

}  // namespace npr
