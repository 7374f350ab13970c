// AdamW and the sum of squares on the device (see adamw_cuda.h).
//
// The step is one elementwise pass with adamw_step's fp32 formula (constants with the bias
// corrections computed on the host in double, exactly as the CPU does); when a bf16 compute copy
// is given, the new p is rounded to it (nearest even) in the same pass.
// sum_squares: a block count fixed by n alone (at most kSumBlocks), each thread a grid-stride sum
// in double, a fixed tree per block into scratch, then one block adds the partials in a fixed
// order: same n and data, same bits, on any device.
#include <cuda_runtime.h>

#include <cmath>
#include <string>

#include "core/cuda_check.cuh"
#include "core/cuda_dtype.cuh"
#include "core/cuda_launch.cuh"
#include "core/dynamic_shared.cuh"
#include "kernels/adamw_cuda.h"

namespace npr {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535;
constexpr int64_t kSumBlocks = 1024;

struct StepConsts {
  float b1, b2, c1, c2, step_size, inv_sqrt_bc2, decay, eps, grad_scale;
};

__global__ void adamw_kernel(float* p, float* m, float* v, const float* g, int64_t n, StepConsts k,
                             __nv_bfloat16* compute) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const float gi = g[i] * k.grad_scale;
    const float mi = k.b1 * m[i] + k.c1 * gi;
    const float vi = k.b2 * v[i] + k.c2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float pi = p[i] * k.decay - k.step_size * mi / (sqrtf(vi) * k.inv_sqrt_bc2 + k.eps);
    p[i] = pi;
    if (compute) compute[i] = __float2bfloat16_rn(pi);
  }
}

// Tree sum of s over the block (blockDim.x == kThreads) in a fixed pairing; result in thread 0.
__device__ double block_tree_sum(double s, double* smem /* (kThreads) */) {
  smem[threadIdx.x] = s;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) smem[threadIdx.x] += smem[threadIdx.x + w];
    __syncthreads();
  }
  return smem[0];
}

// partial (gridDim.x) double: each block's sum of g^2.
__global__ void sum_squares_partial_kernel(double* partial, const float* g, int64_t n) {
  NPR_STATIC_SHARED(double, smem, [kThreads]);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  double s = 0.0;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const double x = g[i];
    s += x * x;
  }
  const double total = block_tree_sum(s, smem);
  if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

// *out = sum of partial (count), one block.
__global__ void sum_partials_kernel(double* out, const double* partial, int64_t count) {
  NPR_STATIC_SHARED(double, smem, [kThreads]);
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += kThreads) s += partial[i];
  const double total = block_tree_sum(s, smem);
  if (threadIdx.x == 0) *out = total;
}

}  // namespace

Status adamw_step_cuda(CudaContext& ctx, float* p, float* m, float* v, const float* g, int64_t n,
                       const AdamWParams& a, void* compute_bf16) {
  if (n < 0) return Status::invalid("adamw_step_cuda: n must be >= 0, got " + std::to_string(n));
  if (a.step < 1)
    return Status::invalid("adamw_step_cuda: step is 1-based (after increment), got " +
                           std::to_string(a.step));
  if (n == 0) return Status::ok();
  if (!p || !m || !v || !g)
    return Status::invalid("adamw_step_cuda: null device pointer (p, m, v or g)");
  const double bc1 = 1.0 - std::pow(static_cast<double>(a.beta1), static_cast<double>(a.step));
  const double bc2 = 1.0 - std::pow(static_cast<double>(a.beta2), static_cast<double>(a.step));
  StepConsts k;
  k.b1 = a.beta1;
  k.b2 = a.beta2;
  k.c1 = 1.0f - a.beta1;
  k.c2 = 1.0f - a.beta2;
  k.step_size = static_cast<float>(a.lr / bc1);
  k.inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
  k.decay = 1.0f - a.lr * a.weight_decay;
  k.eps = a.eps;
  k.grad_scale = a.grad_scale;
  int64_t blocks = (n + kThreads - 1) / kThreads;
  if (blocks > kMaxBlocks) blocks = kMaxBlocks;
  NPR_LAUNCH(static_cast<unsigned>(blocks), kThreads, 0, static_cast<cudaStream_t>(ctx.stream()),
             adamw_kernel)
  (p, m, v, g, n, k, static_cast<__nv_bfloat16*>(compute_bf16));
  return cuda_launch_status("adamw_step_cuda");
}

Status sum_squares_cuda(CudaContext& ctx, const float* g, int64_t n, double* out) {
  if (!out) return Status::invalid("sum_squares_cuda: out is null");
  if (n < 0) return Status::invalid("sum_squares_cuda: n must be >= 0, got " + std::to_string(n));
  *out = 0.0;
  if (n == 0) return Status::ok();
  if (!g) return Status::invalid("sum_squares_cuda: g is null");
  int64_t blocks = (n + kThreads - 1) / kThreads;
  if (blocks > kSumBlocks) blocks = kSumBlocks;
  void* scratch = nullptr;
  NPR_TRY(ctx.scratch(CudaContext::kScratchReduce, (blocks + 1) * 8, &scratch));
  double* partial = static_cast<double*>(scratch);  // (blocks), then the total
  cudaStream_t st = static_cast<cudaStream_t>(ctx.stream());
  NPR_LAUNCH(static_cast<unsigned>(blocks), kThreads, 0, st, sum_squares_partial_kernel)
  (partial, g, n);
  NPR_TRY(cuda_launch_status("sum_squares_cuda (partials)"));
  NPR_LAUNCH(1, kThreads, 0, st, sum_partials_kernel)(partial + blocks, partial, blocks);
  NPR_TRY(cuda_launch_status("sum_squares_cuda (total)"));
  double total = 0.0;
  NPR_TRY(ctx.download(&total, partial + blocks, 8, "sum_squares_cuda (download)"));
  *out = total;
  return Status::ok();
}

}  // namespace npr
