// The emulator build of model/qwen3_cuda_step_kernel.cu (the one-kernel step's launcher).
#include "model/qwen3_cuda_step_kernel.cu"
