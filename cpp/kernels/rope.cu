// Rotary embedding on the device (see rope_cuda.h): one thread per (token, head, pair i), which
// reads x[i] and x[i + D/2] and writes both back rotated, so the in-place update never races.
// The math is rope_apply's (fp32, sin negated for the inverse); cos/sin come from the host
// RopeTable (angles in double), so no angle is ever formed in float on the device.
#include <cuda_runtime.h>

#include <string>

#include "core/cuda_check.cuh"
#include "core/cuda_dtype.cuh"
#include "core/cuda_launch.cuh"
#include "kernels/rope_cuda.h"

namespace npr {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535;

// x (tokens, heads, 2 * half) in place; cos, sin (tokens, half). Grid-stride over every pair.
template <typename T>
__global__ void rope_kernel(T* x, const float* cos, const float* sin, int64_t tokens, int64_t heads,
                            int64_t half, float sign) {
  const int64_t pairs = tokens * heads * half;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < pairs;
       p += stride) {
    const int64_t i = p % half;
    const int64_t th = p / half;  // token * heads + head
    const int64_t t = th / heads;
    T* v = x + th * 2 * half;
    const float c = cos[t * half + i], s = sign * sin[t * half + i];
    const float a = to_f32(v[i]), b = to_f32(v[i + half]);
    v[i] = from_f32<T>(a * c - b * s);
    v[i + half] = from_f32<T>(b * c + a * s);
  }
}

}  // namespace

Status rope_apply_cuda(CudaContext& ctx, DevDType t, void* x, const float* cos, const float* sin,
                       int64_t tokens, int64_t heads, int64_t head_dim, bool inverse) {
  if (tokens < 0 || heads <= 0 || head_dim <= 0 || head_dim % 2 != 0)
    return Status::invalid(
        "rope_apply_cuda: expected tokens >= 0, heads > 0 and an even head_dim"
        " > 0, got tokens " +
        std::to_string(tokens) + ", heads " + std::to_string(heads) + ", head_dim " +
        std::to_string(head_dim));
  if (tokens == 0) return Status::ok();
  if (!x || !cos || !sin)
    return Status::invalid("rope_apply_cuda: null device pointer (x, cos or sin)");
  const int64_t half = head_dim / 2;
  const int64_t pairs = tokens * heads * half;
  int64_t blocks = (pairs + kThreads - 1) / kThreads;
  if (blocks > kMaxBlocks) blocks = kMaxBlocks;
  cudaStream_t st = static_cast<cudaStream_t>(ctx.stream());
  const float sign = inverse ? -1.0f : 1.0f;
  if (t == DevDType::kF32) {
    NPR_LAUNCH(static_cast<unsigned>(blocks), kThreads, 0, st, rope_kernel<float>)
    (static_cast<float*>(x), cos, sin, tokens, heads, half, sign);
  } else {
    NPR_LAUNCH(static_cast<unsigned>(blocks), kThreads, 0, st, rope_kernel<__nv_bfloat16>)
    (static_cast<__nv_bfloat16*>(x), cos, sin, tokens, heads, half, sign);
  }
  return cuda_launch_status("rope_apply_cuda");
}

}  // namespace npr
