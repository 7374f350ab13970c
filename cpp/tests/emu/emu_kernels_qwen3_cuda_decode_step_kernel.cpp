// The emulator build of model/qwen3_cuda_decode_step_kernel.cu.
#include "model/qwen3_cuda_decode_step_kernel.cu"
