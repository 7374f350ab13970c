// The emulator build of kernels/gemm_shape.cpp (host code the emulated CUDA host code calls).
#include "kernels/gemm_shape.cpp"
