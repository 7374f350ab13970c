// Decode-sized linear layers on the device (see skinny_linear_cuda.h): the unfused launchers.
// One CTA tile per block; the work split and the sum order are skinny_linear_core.cuh's. Weight
// loads bypass L1 allocation (streamed once); x is tiny and shared by the whole grid, so it is
// read through the read-only cache.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <string>

#include "core/cuda_check.cuh"
#include "kernels/pdl.cuh"
#include "kernels/skinny_linear_core.cuh"
#include "kernels/skinny_linear_cuda.h"
#include "kernels/skinny_linear_launch.h"

namespace npr {

namespace {

using skinny::kThreads;

template <int M, bool VEC, typename CT, bool PDL>
__global__ void __launch_bounds__(kThreads, 4)
    skinny_linear_kernel(CT* __restrict__ y, const uint16_t* __restrict__ x,
                         const uint16_t* __restrict__ W, int64_t k, int64_t n, bool accumulate) {
  __shared__ float part[skinny::kPartFloats<M>];
  if constexpr (PDL) {
    pdl::launch_dependents();
    skinny::prefetch_linear_tile<M>(W, k, n, blockIdx.x);
    pdl::wait();
  }
  skinny::linear_tile<M, VEC, false>(y, x, W, k, n, accumulate, blockIdx.x, part);
}

template <int M, bool VEC, bool PDL>
__global__ void __launch_bounds__(kThreads, 4)
    skinny_swiglu_kernel(__nv_bfloat16* __restrict__ act, const uint16_t* __restrict__ x,
                         const uint16_t* __restrict__ W, int64_t k, int64_t inter) {
  __shared__ float part[skinny::kPartFloats<M>];
  if constexpr (PDL) {
    pdl::launch_dependents();
    skinny::prefetch_swiglu_tile<M>(W, k, inter, blockIdx.x);
    pdl::wait();
  }
  skinny::swiglu_tile<M, VEC, false>(act, x, W, k, inter, blockIdx.x, part);
}

}  // namespace

Status skinny_linear_cuda(CudaContext& ctx, DevDType out_t, void* y, const void* x, const void* W,
                          int64_t rows, int64_t in, int64_t out, bool accumulate, bool pdl) {
  NPR_TRY(skinny::check_call("skinny_linear_cuda", y, x, W, rows, in, out));
  cudaStream_t st = static_cast<cudaStream_t>(ctx.stream());
  const auto* xs = static_cast<const uint16_t*>(x);
  const auto* ws = static_cast<const uint16_t*>(W);
  return skinny::with_rows(rows, skinny::vector_ok(x, W, in), [&](auto m, auto vec) {
    constexpr int M = decltype(m)::value;
    constexpr bool V = decltype(vec)::value;
    const auto grid = static_cast<unsigned>(skinny::tiles(out, skinny::kLinearTileCols<M>));
    if (pdl) {
      const cudaError_t e =
          out_t == DevDType::kF32
              ? pdl::launch(true, skinny_linear_kernel<M, V, float, true>, grid, kThreads, 0, st,
                            static_cast<float*>(y), xs, ws, in, out, accumulate)
              : pdl::launch(true, skinny_linear_kernel<M, V, __nv_bfloat16, true>, grid, kThreads,
                            0, st, static_cast<__nv_bfloat16*>(y), xs, ws, in, out, accumulate);
      NPR_CUDA_TRY(e, "skinny_linear_cuda: launch (pdl)");
    } else if (out_t == DevDType::kF32) {
      skinny_linear_kernel<M, V, float, false>
          <<<grid, kThreads, 0, st>>>(static_cast<float*>(y), xs, ws, in, out, accumulate);
    } else {
      skinny_linear_kernel<M, V, __nv_bfloat16, false>
          <<<grid, kThreads, 0, st>>>(static_cast<__nv_bfloat16*>(y), xs, ws, in, out, accumulate);
    }
    return cuda_launch_status("skinny_linear_cuda");
  });
}

Status skinny_swiglu_linear_cuda(CudaContext& ctx, void* act, const void* x, const void* W,
                                 int64_t rows, int64_t in, int64_t inter, bool pdl) {
  NPR_TRY(skinny::check_call("skinny_swiglu_linear_cuda", act, x, W, rows, in, inter));
  cudaStream_t st = static_cast<cudaStream_t>(ctx.stream());
  return skinny::with_rows(rows, skinny::vector_ok(x, W, in), [&](auto m, auto vec) {
    constexpr int M = decltype(m)::value;
    constexpr bool V = decltype(vec)::value;
    const auto grid = static_cast<unsigned>(skinny::tiles(inter, skinny::kSwigluTileCols<M>));
    auto* a = static_cast<__nv_bfloat16*>(act);
    const auto* xs = static_cast<const uint16_t*>(x);
    const auto* ws = static_cast<const uint16_t*>(W);
    if (pdl)
      NPR_CUDA_TRY(pdl::launch(true, skinny_swiglu_kernel<M, V, true>, grid, kThreads, 0, st, a, xs,
                               ws, in, inter),
                   "skinny_swiglu_linear_cuda: launch (pdl)");
    else
      skinny_swiglu_kernel<M, V, false><<<grid, kThreads, 0, st>>>(a, xs, ws, in, inter);
    return cuda_launch_status("skinny_swiglu_linear_cuda");
  });
}

}  // namespace npr
