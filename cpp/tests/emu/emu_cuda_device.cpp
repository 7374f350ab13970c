// The emulator build's cuda_info (core/cuda_device.h): one device, emu_cuda_api.h's.
#include "core/cuda_device.h"

namespace npr {

const CudaInfo& cuda_info() {
  static const CudaInfo info{true, 1, "", 0, "the kernel emulator's device"};
  return info;
}

}  // namespace npr
