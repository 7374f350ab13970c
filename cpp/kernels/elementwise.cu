// Small device ops (see elementwise_cuda.h): fp32 <-> bf16 casts (round to nearest even, as the
// host's f32_to_bf16), the fp32 residual add, and row gathers. Grid-stride loops with 64-bit
// indices. A gather row index < 0 writes a NaN row (the caller validates indices; a NaN makes a
// bad one visible rather than reading outside src); there is no upper bound to check against.
#include <cuda_runtime.h>

#include <string>

#include "core/cuda_check.cuh"
#include "core/cuda_dtype.cuh"
#include "core/cuda_launch.cuh"
#include "kernels/elementwise_cuda.h"

namespace npr {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535;

unsigned grid_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < kMaxBlocks ? b : kMaxBlocks);
}

__device__ __forceinline__ int64_t first_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_stride() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

template <typename From, typename To>
__global__ void cast_kernel(To* dst, const From* src, int64_t n) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) dst[i] = from_f32<To>(to_f32(src[i]));
}

__global__ void add_kernel(float* y, const float* x, int64_t n) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) y[i] += x[i];
}

// dst (count, dim) = src[rows[r]].
__global__ void gather_rows_kernel(float* dst, const float* src, const int32_t* rows, int64_t count,
                                   int64_t dim) {
  const int64_t total = count * dim;
  for (int64_t e = first_index(); e < total; e += grid_stride()) {
    const int64_t r = e / dim, c = e % dim;
    const int64_t from = rows[r];
    dst[e] = from >= 0 ? src[from * dim + c] : __int_as_float(0x7fc00000);
  }
}

}  // namespace

Status cast_cuda(CudaContext& ctx, DevDType from, DevDType to, void* dst, const void* src,
                 int64_t n) {
  if (n < 0) return Status::invalid("cast_cuda: n must be >= 0, got " + std::to_string(n));
  if (n == 0) return Status::ok();
  if (!dst || !src) return Status::invalid("cast_cuda: null device pointer (dst or src)");
  cudaStream_t st = static_cast<cudaStream_t>(ctx.stream());
  if (from == to) {
    if (dst == src) return Status::ok();
    NPR_CUDA_TRY(cudaMemcpyAsync(dst, src, static_cast<size_t>(n * dev_dtype_size(from)),
                                 cudaMemcpyDeviceToDevice, st),
                 "cast_cuda (copy)");
    return Status::ok();
  }
  using B = __nv_bfloat16;
  if (from == DevDType::kF32) {
    NPR_LAUNCH(grid_for(n), kThreads, 0, st, cast_kernel<float, B>)
    (static_cast<B*>(dst), static_cast<const float*>(src), n);
  } else {
    NPR_LAUNCH(grid_for(n), kThreads, 0, st, cast_kernel<B, float>)
    (static_cast<float*>(dst), static_cast<const B*>(src), n);
  }
  return cuda_launch_status("cast_cuda");
}

Status add_cuda(CudaContext& ctx, float* y, const float* x, int64_t n) {
  if (n < 0) return Status::invalid("add_cuda: n must be >= 0, got " + std::to_string(n));
  if (n == 0) return Status::ok();
  if (!y || !x) return Status::invalid("add_cuda: null device pointer (y or x)");
  NPR_LAUNCH(grid_for(n), kThreads, 0, static_cast<cudaStream_t>(ctx.stream()), add_kernel)
  (y, x, n);
  return cuda_launch_status("add_cuda");
}

Status gather_rows_cuda(CudaContext& ctx, float* dst, const float* src, const int32_t* rows,
                        int64_t count, int64_t dim) {
  if (count < 0 || dim <= 0)
    return Status::invalid("gather_rows_cuda: expected count >= 0 and dim > 0, got count " +
                           std::to_string(count) + ", dim " + std::to_string(dim));
  if (count == 0) return Status::ok();
  if (!dst || !src || !rows)
    return Status::invalid("gather_rows_cuda: null device pointer (dst, src or rows)");
  NPR_LAUNCH(grid_for(count * dim), kThreads, 0, static_cast<cudaStream_t>(ctx.stream()),
             gather_rows_kernel)
  (dst, src, rows, count, dim);
  return cuda_launch_status("gather_rows_cuda");
}

}  // namespace npr
