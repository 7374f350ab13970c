// GEMM on a CUDA device, f32, same layout contract as gemm.h (row-major, NN/NT/TN/TT).
//
// This is the first CUDA kernel: a shared-memory tiled GEMM, correct for any shape, that the
// CUDA backend's GEMM (cuBLAS or a tensor-core kernel) will be tested against. Plain C++ API.
#pragma once

#include "core/status.h"
#include "kernels/gemm.h"

namespace npr {

// Device pointers; `stream` is a cudaStream_t (null: the default stream). Asynchronous.
Status gemm_f32_cuda(const GemmShape& s, const float* dA, const float* dB, float* dC, void* stream);

// Host pointers: copies A, B (and C when beta != 0) to device 0, runs gemm_f32_cuda, copies C
// back and frees. For tests and the addon's `backend: 'cuda'` GEMM.
Status gemm_f32_cuda_host(const GemmShape& s, const float* A, const float* B, float* C);

}  // namespace npr
