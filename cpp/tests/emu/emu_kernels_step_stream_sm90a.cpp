// The emulator build of model/qwen3_cuda_step_kernel_stream_sm90a.cu (the streamed one-kernel
// step's launches).
#include "model/qwen3_cuda_step_kernel_stream_sm90a.cu"
