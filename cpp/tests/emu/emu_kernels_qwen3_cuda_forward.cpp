// The emulator build of model/qwen3_cuda_forward.cu.
#include "model/qwen3_cuda_forward.cu"
