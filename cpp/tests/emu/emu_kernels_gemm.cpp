// The emulator build of kernels/gemm.cu.
#include "kernels/gemm.cu"
