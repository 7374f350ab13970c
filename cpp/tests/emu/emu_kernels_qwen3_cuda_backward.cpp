// The emulator build of model/qwen3_cuda_backward.cu.
#include "model/qwen3_cuda_backward.cu"
