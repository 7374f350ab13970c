// The emulator build of model/qwen3_cuda_model.cu.
#include "model/qwen3_cuda_model.cu"
