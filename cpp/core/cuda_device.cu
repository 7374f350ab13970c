// The CUDA probe of a CUDA build. cudart is linked statically, so this runs (and answers
// cudaErrorInsufficientDriver or cudaErrorNoDevice) even on machines with no driver.
#include <cuda_profiler_api.h>
#include <cuda_runtime.h>

#include "core/cuda_device.h"

namespace npr {

const CudaInfo& cuda_info() {
  static const CudaInfo info = [] {
    CudaInfo i;
    i.compiled = true;
    cudaRuntimeGetVersion(&i.runtime_version);
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
      i.reason = cudaGetErrorName(err);
      cudaGetLastError();  // clear the sticky-free error so later calls start clean
      return i;
    }
    i.devices = count;
    if (count == 0) {
      i.reason = "cudaErrorNoDevice";
      return i;
    }
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) i.device_name = prop.name;
    return i;
  }();
  return info;
}

bool cuda_profiler_range(bool start) {
  if (cuda_info().devices == 0) return false;
  return (start ? cudaProfilerStart() : cudaProfilerStop()) == cudaSuccess;
}

}  // namespace npr
