// The emulator build of model/qwen3_cuda_decode.cu.
#include "model/qwen3_cuda_decode.cu"
