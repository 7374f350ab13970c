// Shared-memory tiled f32 GEMM (see gemm_cuda.h). Each block computes a 64 x 64 tile of C with
// 256 threads, each thread a 4 x 4 micro-tile; tiles of op(A) and op(B) 16 deep are staged in
// shared memory, loaded through the transpose flags so that one kernel serves every layout.
#include <cuda_runtime.h>

#include <string>

#include "core/cuda_device.h"
#include "core/cuda_launch.cuh"
#include "core/dynamic_shared.cuh"
#include "kernels/gemm_cuda.h"

namespace npr {

namespace {

constexpr int kTile = 64;
constexpr int kDepth = 16;
constexpr int kThreads = 256;  // 16 x 16, each computing 4 x 4

struct DeviceShape {
  long long m, n, k, lda, ldb, ldc;
  int ta, tb;
  float alpha, beta;
};

__device__ inline float op_a(const DeviceShape& s, const float* A, long long i, long long p) {
  return s.ta == 0 ? A[i * s.lda + p] : A[p * s.lda + i];
}
__device__ inline float op_b(const DeviceShape& s, const float* B, long long p, long long j) {
  return s.tb == 0 ? B[p * s.ldb + j] : B[j * s.ldb + p];
}

__global__ void gemm_tiled_kernel(DeviceShape s, const float* __restrict__ A,
                                  const float* __restrict__ B, float* __restrict__ C) {
  NPR_STATIC_SHARED(float, as, [kDepth][kTile + 1]);  // (k, m) slice of op(A)
  NPR_STATIC_SHARED(float, bs, [kDepth][kTile + 1]);  // (k, n) slice of op(B)
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const long long row0 = static_cast<long long>(blockIdx.y) * kTile;
  const long long col0 = static_cast<long long>(blockIdx.x) * kTile;
  float acc[4][4] = {};
  for (long long p0 = 0; p0 < s.k; p0 += kDepth) {
    for (int e = threadIdx.x; e < kDepth * kTile; e += kThreads) {
      const int kk = e / kTile, mm = e % kTile;
      const long long i = row0 + mm, j = col0 + mm, p = p0 + kk;
      as[kk][mm] = (i < s.m && p < s.k) ? op_a(s, A, i, p) : 0.0f;
      bs[kk][mm] = (j < s.n && p < s.k) ? op_b(s, B, p, j) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kDepth; ++kk) {
      float a[4], b[4];
#pragma unroll
      for (int r = 0; r < 4; ++r) a[r] = as[kk][ty + 16 * r];
#pragma unroll
      for (int c = 0; c < 4; ++c) b[c] = bs[kk][tx + 16 * c];
#pragma unroll
      for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int c = 0; c < 4; ++c) acc[r][c] = fmaf(a[r], b[c], acc[r][c]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const long long i = row0 + ty + 16 * r;
    if (i >= s.m) continue;
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      const long long j = col0 + tx + 16 * c;
      if (j >= s.n) continue;
      float* out = C + i * s.ldc + j;
      const float prior = s.beta == 0.0f ? 0.0f : s.beta * *out;
      *out = (s.alpha == 0.0f ? 0.0f : s.alpha * acc[r][c]) + prior;
    }
  }
}

// Device buffer freed on scope exit.
struct ScopedDeviceFloats {
  float* ptr = nullptr;
  ~ScopedDeviceFloats() {
    if (ptr) cudaFree(ptr);
  }
};

}  // namespace

Status gemm_f32_cuda(const GemmShape& s, const float* dA, const float* dB, float* dC,
                     void* stream) {
  NPR_TRY(gemm_check_shape(s));
  if (s.m == 0 || s.n == 0) return Status::ok();
  const long long grid_x = (s.n + kTile - 1) / kTile, grid_y = (s.m + kTile - 1) / kTile;
  if (grid_y > 65535) return Status::out_of_range("gemm (cuda): m too large for one launch");
  DeviceShape d{s.m,
                s.n,
                s.k,
                s.lda,
                s.ldb,
                s.ldc,
                s.ta == Trans::kT ? 1 : 0,
                s.tb == Trans::kT ? 1 : 0,
                s.alpha,
                s.beta};
  dim3 grid(static_cast<unsigned>(grid_x), static_cast<unsigned>(grid_y));
  NPR_LAUNCH(grid, kThreads, 0, static_cast<cudaStream_t>(stream), gemm_tiled_kernel)
  (d, dA, dB, dC);
  return cuda_status(cudaGetLastError(), "gemm (cuda): kernel launch");
}

Status gemm_f32_cuda_host(const GemmShape& s, const float* A, const float* B, float* C) {
  NPR_TRY(gemm_check_shape(s));
  if (cuda_info().devices == 0)
    return Status::unavailable("gemm (cuda): no CUDA device answers (" + cuda_info().reason + ")");
  int64_t na, nb, nc;
  gemm_min_elements(s, &na, &nb, &nc);
  ScopedDeviceFloats da, db, dc;
  NPR_TRY(cuda_status(cudaMalloc(&da.ptr, (na + 1) * sizeof(float)), "gemm (cuda): cudaMalloc(A)"));
  NPR_TRY(cuda_status(cudaMalloc(&db.ptr, (nb + 1) * sizeof(float)), "gemm (cuda): cudaMalloc(B)"));
  NPR_TRY(cuda_status(cudaMalloc(&dc.ptr, (nc + 1) * sizeof(float)), "gemm (cuda): cudaMalloc(C)"));
  NPR_TRY(cuda_status(cudaMemcpy(da.ptr, A, na * sizeof(float), cudaMemcpyHostToDevice),
                      "gemm (cuda): copy A"));
  NPR_TRY(cuda_status(cudaMemcpy(db.ptr, B, nb * sizeof(float), cudaMemcpyHostToDevice),
                      "gemm (cuda): copy B"));
  NPR_TRY(cuda_status(cudaMemcpy(dc.ptr, C, nc * sizeof(float), cudaMemcpyHostToDevice),
                      "gemm (cuda): copy C"));
  NPR_TRY(gemm_f32_cuda(s, da.ptr, db.ptr, dc.ptr, nullptr));
  NPR_TRY(cuda_status(cudaDeviceSynchronize(), "gemm (cuda): kernel"));
  NPR_TRY(cuda_status(cudaMemcpy(C, dc.ptr, nc * sizeof(float), cudaMemcpyDeviceToHost),
                      "gemm (cuda): copy C back"));
  return Status::ok();
}

}  // namespace npr
