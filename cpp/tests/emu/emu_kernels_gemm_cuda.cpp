// The emulator build of kernels/gemm_cuda.cu.
#include "kernels/gemm_cuda.cu"
