// The emulator build of core/host_staging.cu (page-locked staging over emu_cuda_api.h's host
// allocations).
#include "core/host_staging.cu"
