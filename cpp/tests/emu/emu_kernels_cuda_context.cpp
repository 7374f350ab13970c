// The emulator build of core/cuda_context.cu (CudaContext, DeviceAllocator, DeviceBuffer over
// emu_cuda_api.h's device memory).
#include "core/cuda_context.cu"
