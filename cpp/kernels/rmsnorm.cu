// RMSNorm on the device (see rmsnorm_cuda.h), fp32 math over float or bf16 storage.
//
// Forward and the dx half of backward are row kernels: a warp per row when dim <= 256 (Qwen3's
// per-head q/k norms, dim = head_dim), a 256-thread block per row above (the hidden-size norms).
// Row sums are butterfly warp sums then warp partials added in warp order: deterministic.
// dw is a separate column pass: the rows are cut into at most kMaxChunks fixed chunks (chosen from
// the row count alone), each (chunk, 32-column tile) block writes its partial column sums to
// scratch, and a second kernel adds the partials into dw in a fixed order. No atomics anywhere.
// The column pass runs before dx is written, because dx may alias dy.
#include <cuda_runtime.h>

#include <string>

#include "core/cuda_check.cuh"
#include "core/cuda_dtype.cuh"
#include "core/cuda_launch.cuh"
#include "core/dynamic_shared.cuh"
#include "kernels/rmsnorm_cuda.h"
#include "kernels/rmsnorm_rows.cuh"

namespace npr {

namespace {

using namespace rmsnorm_rows;
constexpr int64_t kMaxChunks = 512;       // dw partials: at most (512, dim) floats of scratch
constexpr int64_t kMinRowsPerChunk = 64;  // ... and at least 64 rows in each chunk
constexpr int kColTile = 32;              // dw column pass: 32 columns x 8 row lanes per block
constexpr int kRowLanes = kThreads / kColTile;

// dot = sum over the row of x * s * w * dy (the mean term of dx).
template <typename T>
__device__ __forceinline__ float row_dot(const T* dyr, const T* xr, const float* w, float s,
                                         int64_t dim, int lane, int nlanes) {
  float dot = 0.0f;
  for (int64_t i = lane; i < dim; i += nlanes) dot += to_f32(xr[i]) * s * w[i] * to_f32(dyr[i]);
  return dot;
}

// dx = s * (w * dy - x * s * dot / dim). Each element's dy is read by the thread that writes
// the same element of dx, after the row reduction: dx may alias dy.
template <typename T>
__device__ __forceinline__ void backward_row(T* dxr, const T* dyr, const T* xr, const float* w,
                                             float s, float dot, int64_t dim, int lane,
                                             int nlanes) {
  const float mean = dot / static_cast<float>(dim);
  for (int64_t i = lane; i < dim; i += nlanes)
    dxr[i] = from_f32<T>(s * (w[i] * to_f32(dyr[i]) - to_f32(xr[i]) * s * mean));
}

template <typename T>
__global__ void rmsnorm_dx_warp_kernel(T* dx, const T* dy, const T* x, const float* w,
                                       const float* rstd, int64_t rows, int64_t dim) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlockWarp + threadIdx.x / 32;
  if (row >= rows) return;
  const int lane = threadIdx.x % 32;
  const int64_t off = row * dim;
  const float s = rstd[row];
  const float dot = warp_sum(row_dot(dy + off, x + off, w, s, dim, lane, 32));
  backward_row(dx + off, dy + off, x + off, w, s, dot, dim, lane, 32);
}

template <typename T>
__global__ void rmsnorm_dx_block_kernel(T* dx, const T* dy, const T* x, const float* w,
                                        const float* rstd, int64_t rows, int64_t dim) {
  NPR_STATIC_SHARED(float, smem, [kThreads / 32]);
  const int64_t row = blockIdx.x;
  if (row >= rows) return;
  const int64_t off = row * dim;
  const float s = rstd[row];
  const float dot = block_sum(row_dot(dy + off, x + off, w, s, dim, threadIdx.x, kThreads), smem);
  backward_row(dx + off, dy + off, x + off, w, s, dot, dim, threadIdx.x, kThreads);
}

// partial (chunks, dim): partial[b][c] = sum over rows r of chunk b of dy[r][c] * x[r][c] * s[r].
// Block (kColTile, kRowLanes); grid (column tiles, chunks). Lane ty sums rows r0+ty, r0+ty+8, ...
// then the 8 lane sums are added in lane order.
template <typename T>
__global__ void rmsnorm_dw_partial_kernel(float* partial, const T* dy, const T* x,
                                          const float* rstd, int64_t rows, int64_t dim,
                                          int64_t rows_per_chunk) {
  NPR_STATIC_SHARED(float, smem, [kRowLanes][kColTile + 1]);
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kColTile + threadIdx.x;
  const int64_t b = blockIdx.y;
  const int64_t r0 = b * rows_per_chunk;
  const int64_t r1 = r0 + rows_per_chunk < rows ? r0 + rows_per_chunk : rows;
  float acc = 0.0f;
  if (c < dim) {
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kRowLanes)
      acc += to_f32(dy[r * dim + c]) * to_f32(x[r * dim + c]) * rstd[r];
  }
  smem[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < dim) {
    float s = 0.0f;
#pragma unroll
    for (int k = 0; k < kRowLanes; ++k) s += smem[k][threadIdx.x];
    partial[b * dim + c] = s;
  }
}

// dw[c] += sum over chunks of partial[b][c]. Block (kColTile, kRowLanes): lane ty sums chunks
// ty, ty + 8, ... in order (8 independent load streams per column), then the 8 lane sums are added
// in lane order. A fixed order for a given chunk count.
__global__ void rmsnorm_dw_reduce_kernel(float* dw, const float* partial, int64_t chunks,
                                         int64_t dim) {
  NPR_STATIC_SHARED(float, smem, [kRowLanes][kColTile + 1]);
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kColTile + threadIdx.x;
  float acc = 0.0f;
  if (c < dim) {
#pragma unroll 4
    for (int64_t b = threadIdx.y; b < chunks; b += kRowLanes) acc += partial[b * dim + c];
  }
  smem[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < dim) {
    float s = 0.0f;
#pragma unroll
    for (int k = 0; k < kRowLanes; ++k) s += smem[k][threadIdx.x];
    dw[c] += s;
  }
}

Status check_shape(const char* op, int64_t rows, int64_t dim) {
  if (rows < 0 || dim <= 0)
    return Status::invalid(std::string(op) + ": expected rows >= 0 and dim > 0, got rows " +
                           std::to_string(rows) + ", dim " + std::to_string(dim));
  if (rows > 0x7fffffffLL)  // one block (or a warp of an 8-row block) per row
    return Status::out_of_range(std::string(op) + ": rows " + std::to_string(rows) +
                                " exceeds 2^31 - 1; split the call");
  return Status::ok();
}

template <typename Tx, typename Ty>
Status launch_forward(cudaStream_t st, void* y, float* rstd, const void* x, const float* w,
                      int64_t rows, int64_t dim, float eps) {
  if (dim <= kWarpRowMaxDim) {
    const int64_t blocks = (rows + kRowsPerBlockWarp - 1) / kRowsPerBlockWarp;
    NPR_LAUNCH(static_cast<unsigned>(blocks), kThreads, 0, st, rmsnorm_forward_warp_kernel<Tx, Ty>)
    (static_cast<Ty*>(y), rstd, static_cast<const Tx*>(x), w, rows, dim, eps);
  } else {
    NPR_LAUNCH(static_cast<unsigned>(rows), kThreads, 0, st, rmsnorm_forward_block_kernel<Tx, Ty>)
    (static_cast<Ty*>(y), rstd, static_cast<const Tx*>(x), w, rows, dim, eps);
  }
  return cuda_launch_status("rmsnorm_forward_cuda");
}

template <typename T>
Status launch_backward(CudaContext& ctx, void* dx, float* dw, const void* dy, const void* x,
                       const float* w, const float* rstd, int64_t rows, int64_t dim) {
  cudaStream_t st = static_cast<cudaStream_t>(ctx.stream());
  const T* dyt = static_cast<const T*>(dy);
  const T* xt = static_cast<const T*>(x);
  // dw partials first: dx may alias dy.
  int64_t chunks = (rows + kMinRowsPerChunk - 1) / kMinRowsPerChunk;
  if (chunks > kMaxChunks) chunks = kMaxChunks;
  const int64_t rows_per_chunk = (rows + chunks - 1) / chunks;
  chunks = (rows + rows_per_chunk - 1) / rows_per_chunk;  // no empty chunk
  void* scratch = nullptr;
  NPR_TRY(ctx.scratch(CudaContext::kScratchReduce, chunks * dim * 4, &scratch));
  float* partial = static_cast<float*>(scratch);  // (chunks, dim)
  const dim3 pgrid(static_cast<unsigned>((dim + kColTile - 1) / kColTile),
                   static_cast<unsigned>(chunks));
  NPR_LAUNCH(pgrid, dim3(kColTile, kRowLanes), 0, st, rmsnorm_dw_partial_kernel<T>)
  (partial, dyt, xt, rstd, rows, dim, rows_per_chunk);
  NPR_TRY(cuda_launch_status("rmsnorm_backward_cuda (dw partials)"));
  NPR_LAUNCH(pgrid.x, dim3(kColTile, kRowLanes), 0, st, rmsnorm_dw_reduce_kernel)
  (dw, partial, chunks, dim);
  NPR_TRY(cuda_launch_status("rmsnorm_backward_cuda (dw reduce)"));
  if (dim <= kWarpRowMaxDim) {
    const int64_t blocks = (rows + kRowsPerBlockWarp - 1) / kRowsPerBlockWarp;
    NPR_LAUNCH(static_cast<unsigned>(blocks), kThreads, 0, st, rmsnorm_dx_warp_kernel<T>)
    (static_cast<T*>(dx), dyt, xt, w, rstd, rows, dim);
  } else {
    NPR_LAUNCH(static_cast<unsigned>(rows), kThreads, 0, st, rmsnorm_dx_block_kernel<T>)
    (static_cast<T*>(dx), dyt, xt, w, rstd, rows, dim);
  }
  return cuda_launch_status("rmsnorm_backward_cuda (dx)");
}

}  // namespace

Status rmsnorm_forward_cuda(CudaContext& ctx, DevDType tx, DevDType ty, void* y, float* rstd,
                            const void* x, const float* w, int64_t rows, int64_t dim, float eps) {
  NPR_TRY(check_shape("rmsnorm_forward_cuda", rows, dim));
  if (rows == 0) return Status::ok();
  if (!y || !rstd || !x || !w)
    return Status::invalid("rmsnorm_forward_cuda: null device pointer (y, rstd, x or w)");
  if (y == x && tx != ty)
    return Status::invalid("rmsnorm_forward_cuda: y may alias x only when both have one type");
  cudaStream_t st = static_cast<cudaStream_t>(ctx.stream());
  const bool xf = tx == DevDType::kF32, yf = ty == DevDType::kF32;
  if (xf && yf) return launch_forward<float, float>(st, y, rstd, x, w, rows, dim, eps);
  if (xf) return launch_forward<float, __nv_bfloat16>(st, y, rstd, x, w, rows, dim, eps);
  if (yf) return launch_forward<__nv_bfloat16, float>(st, y, rstd, x, w, rows, dim, eps);
  return launch_forward<__nv_bfloat16, __nv_bfloat16>(st, y, rstd, x, w, rows, dim, eps);
}

Status rmsnorm_backward_cuda(CudaContext& ctx, DevDType t, void* dx, float* dw, const void* dy,
                             const void* x, const float* w, const float* rstd, int64_t rows,
                             int64_t dim) {
  NPR_TRY(check_shape("rmsnorm_backward_cuda", rows, dim));
  if (rows == 0) return Status::ok();
  if (!dx || !dw || !dy || !x || !w || !rstd)
    return Status::invalid("rmsnorm_backward_cuda: null device pointer (dx, dw, dy, x, w or rstd)");
  if (dx == x) return Status::invalid("rmsnorm_backward_cuda: dx may alias dy, not x");
  if (t == DevDType::kF32) return launch_backward<float>(ctx, dx, dw, dy, x, w, rstd, rows, dim);
  return launch_backward<__nv_bfloat16>(ctx, dx, dw, dy, x, w, rstd, rows, dim);
}

}  // namespace npr
