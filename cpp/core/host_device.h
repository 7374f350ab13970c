// NPR_HOST_DEVICE marks a function that host code and CUDA kernels both call (the counter RNG,
// the per-token policy-loss term): __host__ __device__ under nvcc, nothing for the C++ compiler.
#pragma once

#if defined(__CUDACC__)
#define NPR_HOST_DEVICE __host__ __device__
#else
#define NPR_HOST_DEVICE
#endif
