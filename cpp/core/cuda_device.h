// What the CUDA backend can do in this process: compiled in or not, how many devices answer,
// and why none does (the CUDA error name, e.g. cudaErrorNoDevice or
// cudaErrorInsufficientDriver). Plain C++: usable from the addon and tests without nvcc.
#pragma once

#include <string>

namespace npr {

struct CudaInfo {
  bool compiled = false;  // the .cu sources are in this binary
  int devices = 0;        // devices that answered cudaGetDeviceCount
  std::string reason;     // why devices == 0 (empty when devices > 0)
  int runtime_version = 0;
  std::string device_name;  // first device, when there is one
};

// Probes once and caches: the driver is asked a single time per process.
const CudaInfo& cuda_info();

// Starts (true) or stops (false) the stretch a profiler records when told to wait for it
// (`ncu --profile-from-start off`, `nsys --capture-range=cudaProfilerApi`). False when CUDA is
// absent or the call failed; harmless without a profiler.
bool cuda_profiler_range(bool start);

}  // namespace npr
