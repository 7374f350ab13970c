// SwiGLU on the device (see swiglu_cuda.h): grid-stride elementwise kernels, fp32 math with the
// accurate expf (no fast-math intrinsics), the formulas of swiglu.cpp. Backward loads gate, up
// and dh of an element into registers before writing dgate/dup of that same element, which is
// what makes dgate == gate and dup == up aliasing safe.
#include <cuda_runtime.h>

#include <string>

#include "core/cuda_check.cuh"
#include "core/cuda_dtype.cuh"
#include "core/cuda_launch.cuh"
#include "kernels/swiglu_cuda.h"

namespace npr {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535;

template <typename T>
__global__ void swiglu_forward_kernel(T* h, const T* gate, const T* up, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const float g = to_f32(gate[i]);
    h[i] = from_f32<T>(g / (1.0f + expf(-g)) * to_f32(up[i]));
  }
}

template <typename T>
__global__ void swiglu_backward_kernel(T* dgate, T* dup, const T* dh, const T* gate, const T* up,
                                       int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const float g = to_f32(gate[i]), u = to_f32(up[i]), d = to_f32(dh[i]);
    const float sg = 1.0f / (1.0f + expf(-g));
    dgate[i] = from_f32<T>(d * u * sg * (1.0f + g * (1.0f - sg)));
    dup[i] = from_f32<T>(d * g * sg);
  }
}

unsigned grid_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < kMaxBlocks ? b : kMaxBlocks);
}

Status check_n(const char* op, int64_t n) {
  if (n < 0) return Status::invalid(std::string(op) + ": n must be >= 0, got " + std::to_string(n));
  return Status::ok();
}

}  // namespace

Status swiglu_forward_cuda(CudaContext& ctx, DevDType t, void* h, const void* gate, const void* up,
                           int64_t n) {
  NPR_TRY(check_n("swiglu_forward_cuda", n));
  if (n == 0) return Status::ok();
  if (!h || !gate || !up)
    return Status::invalid("swiglu_forward_cuda: null device pointer (h, gate or up)");
  cudaStream_t st = static_cast<cudaStream_t>(ctx.stream());
  if (t == DevDType::kF32) {
    NPR_LAUNCH(grid_for(n), kThreads, 0, st, swiglu_forward_kernel<float>)
    (static_cast<float*>(h), static_cast<const float*>(gate), static_cast<const float*>(up), n);
  } else {
    using B = __nv_bfloat16;
    NPR_LAUNCH(grid_for(n), kThreads, 0, st, swiglu_forward_kernel<B>)
    (static_cast<B*>(h), static_cast<const B*>(gate), static_cast<const B*>(up), n);
  }
  return cuda_launch_status("swiglu_forward_cuda");
}

Status swiglu_backward_cuda(CudaContext& ctx, DevDType t, void* dgate, void* dup, const void* dh,
                            const void* gate, const void* up, int64_t n) {
  NPR_TRY(check_n("swiglu_backward_cuda", n));
  if (n == 0) return Status::ok();
  if (!dgate || !dup || !dh || !gate || !up)
    return Status::invalid(
        "swiglu_backward_cuda: null device pointer (dgate, dup, dh, gate or up)");
  if (dgate == dup)
    return Status::invalid("swiglu_backward_cuda: dgate and dup must be different buffers");
  cudaStream_t st = static_cast<cudaStream_t>(ctx.stream());
  if (t == DevDType::kF32) {
    NPR_LAUNCH(grid_for(n), kThreads, 0, st, swiglu_backward_kernel<float>)
    (static_cast<float*>(dgate), static_cast<float*>(dup), static_cast<const float*>(dh),
     static_cast<const float*>(gate), static_cast<const float*>(up), n);
  } else {
    using B = __nv_bfloat16;
    NPR_LAUNCH(grid_for(n), kThreads, 0, st, swiglu_backward_kernel<B>)
    (static_cast<B*>(dgate), static_cast<B*>(dup), static_cast<const B*>(dh),
     static_cast<const B*>(gate), static_cast<const B*>(up), n);
  }
  return cuda_launch_status("swiglu_backward_cuda");
}

}  // namespace npr
