// GEMM on a CUDA device, same layout contract as gemm.h (row-major, NN/NT/TN/TT, alpha, beta).
//
// gemm_cuda takes the element types of A and B (equal) and of C: (fp32, fp32), (bf16, bf16) and
// (bf16, fp32); accumulation is always fp32. It runs cuBLAS (cublasGemmEx, fp32 compute, no TF32)
// where the build links it and the context allows it, else the hand-written kernels: the tiled
// SIMT kernel for fp32 and a tensor-core kernel (mma.sync m16n8k16 bf16, fp32 accumulators) for
// bf16. gemm_f32_cuda is the plain tiled SIMT kernel: the oracle the others are tested against.
#pragma once

#include "core/cuda_context.h"
#include "core/status.h"
#include "kernels/gemm.h"

namespace npr {

// Device pointers; asynchronous on ctx's stream.
Status gemm_cuda(CudaContext& ctx, const GemmShape& s, DevDType ab, DevDType c, const void* dA,
                 const void* dB, void* dC);

// The tiled SIMT fp32 kernel (any shape); `stream` is a cudaStream_t (null: default stream).
Status gemm_f32_cuda(const GemmShape& s, const float* dA, const float* dB, float* dC, void* stream);

// Host pointers: copies A, B (and C when beta != 0) to device 0, runs gemm_f32_cuda, copies C
// back and frees. For tests and the addon's `backend: 'cuda'` GEMM.
Status gemm_f32_cuda_host(const GemmShape& s, const float* A, const float* B, float* C);

}  // namespace npr
