// The fused q/k norm + RoPE + KV write of the decode step (see qk_norm_rope_cuda.h): a warp per
// (token, head row) of the stacked projection, each running qk_norm_rope_row.cuh.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <string>

#include "core/cuda_check.cuh"
#include "core/cuda_dtype.cuh"
#include "core/cuda_launch.cuh"
#include "kernels/pdl.cuh"
#include "kernels/qk_norm_rope_cuda.h"
#include "kernels/qk_norm_rope_row.cuh"

namespace npr {

Status qk_norm_rope_write_cuda(CudaContext& ctx, DevDType t, void* q_out, void* k_pages,
                               void* v_pages, const void* qkv, const float* q_norm,
                               const float* k_norm, const float* cos, const float* sin,
                               const int32_t* slots, int64_t tokens, int64_t heads,
                               int64_t kv_heads, int64_t head_dim, float eps, bool pdl) {
  if (tokens < 0 || heads <= 0 || kv_heads <= 0 || head_dim <= 0 || head_dim % 2 != 0 ||
      head_dim > 1024)
    return Status::invalid(
        "qk_norm_rope_write_cuda: expected tokens >= 0, heads and kv_heads > 0 and an even "
        "head_dim in [2, 1024], got tokens " +
        std::to_string(tokens) + ", heads " + std::to_string(heads) + ", kv_heads " +
        std::to_string(kv_heads) + ", head_dim " + std::to_string(head_dim));
  if (tokens == 0) return Status::ok();
  if (!q_out || !k_pages || !v_pages || !qkv || !q_norm || !k_norm || !cos || !sin || !slots)
    return Status::invalid("qk_norm_rope_write_cuda: null device pointer");
  const int64_t rows = tokens * (heads + 2 * kv_heads);
  const unsigned grid = static_cast<unsigned>((rows + qk_rope::kWarps - 1) / qk_rope::kWarps);
  const size_t smem = sizeof(float) * qk_rope::kWarps * static_cast<size_t>(head_dim);
  cudaStream_t st = static_cast<cudaStream_t>(ctx.stream());
  const int h = static_cast<int>(heads), kvh = static_cast<int>(kv_heads),
            D = static_cast<int>(head_dim);
  auto run = [&](auto tag) -> Status {
    using T = decltype(tag);
    auto* qo = static_cast<T*>(q_out);
    auto* kp = static_cast<T*>(k_pages);
    auto* vp = static_cast<T*>(v_pages);
    const auto* in = static_cast<const T*>(qkv);
    if (pdl)
      NPR_CUDA_TRY(
          pdl::launch(true, qk_rope::write_kernel<T, true>, grid, dim3(qk_rope::kThreads), smem, st,
                      qo, kp, vp, in, q_norm, k_norm, cos, sin, slots, tokens, h, kvh, D, eps),
          "qk_norm_rope_write_cuda: launch (pdl)");
    else
      NPR_LAUNCH(grid, qk_rope::kThreads, smem, st, qk_rope::write_kernel<T, false>)
    (qo, kp, vp, in, q_norm, k_norm, cos, sin, slots, tokens, h, kvh, D, eps);
    return cuda_launch_status("qk_norm_rope_write_cuda");
  };
  if (t == DevDType::kF32) return run(float{});
  return run(__nv_bfloat16{});
}

}  // namespace npr
