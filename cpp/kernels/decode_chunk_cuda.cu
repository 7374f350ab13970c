// decode_chunk_cuda.h: a normalised attention output and its log-sum-exp as partial rows.
#include <string>

#include "core/cuda_check.cuh"
#include "core/cuda_dtype.cuh"
#include "core/cuda_launch.cuh"
#include "kernels/decode_chunk_cuda.h"

namespace npr {

namespace {

// grid (queries, heads): row (first + q, h) of part_m, part_l (P, heads), part_acc (P, heads, D).
template <typename T>
__global__ void chunk_partials_kernel(float* part_m, float* part_l, float* part_acc, int64_t first,
                                      const T* out, const float* lse, int heads, int D) {
  const int64_t q = blockIdx.x, h = blockIdx.y;
  const int64_t src = q * heads + h, dst = (first + q) * heads + h;
  if (threadIdx.x == 0) {
    part_m[dst] = lse[src];
    part_l[dst] = 1.0f;
  }
  for (int d = threadIdx.x; d < D; d += blockDim.x)
    part_acc[dst * D + d] = to_f32(out[src * D + d]);
}

}  // namespace

Status decode_chunk_partials_cuda(CudaContext& ctx, DevDType t, const DeviceDecodePlan& plan,
                                  const void* out, const float* lse, int64_t heads,
                                  int64_t head_dim) {
  if (plan.chunk_rows() < 0)
    return Status::invalid("decode chunk attention (cuda): the plan has no chunk rows");
  if (heads != plan.heads() || head_dim != plan.head_dim())
    return Status::invalid("decode chunk attention (cuda): " + std::to_string(heads) +
                           " heads of " + std::to_string(head_dim) + " for a plan of " +
                           std::to_string(plan.heads()) + " of " + std::to_string(plan.head_dim()));
  if (plan.queries() <= 0) return Status::ok();
  const dim3 grid(static_cast<unsigned>(plan.queries()), static_cast<unsigned>(heads));
  const int threads = head_dim >= 128 ? 128 : 32;
  cudaStream_t st = static_cast<cudaStream_t>(ctx.stream());
  if (t == DevDType::kF32) {
    NPR_LAUNCH(grid, threads, 0, st, chunk_partials_kernel<float>)
    (plan.part_m, plan.part_l, plan.part_acc, plan.chunk_rows(), static_cast<const float*>(out),
     lse, static_cast<int>(heads), static_cast<int>(head_dim));
  } else {
    NPR_LAUNCH(grid, threads, 0, st, chunk_partials_kernel<__nv_bfloat16>)
    (plan.part_m, plan.part_l, plan.part_acc, plan.chunk_rows(),
     static_cast<const __nv_bfloat16*>(out), lse, static_cast<int>(heads),
     static_cast<int>(head_dim));
  }
  return cuda_launch_status("decode chunk attention (cuda): partial rows");
}

}  // namespace npr
