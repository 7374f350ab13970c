// Decode-sized linear layers on the device (see skinny_linear_cuda.h): the unfused launchers.
// One CTA tile per block; the work split and the sum order are skinny_linear_core.cuh's, or
// skinny_linear_mma.cuh's for the tensor-core forms. Weight loads bypass L1 allocation (streamed
// once); x is tiny and shared by the whole grid, so it is read through the read-only cache.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <string>
#include <type_traits>

#include "core/cuda_check.cuh"
#include "kernels/pdl.cuh"
#include "kernels/skinny_linear_core.cuh"
#include "kernels/skinny_linear_cuda.h"
#include "kernels/skinny_linear_launch.h"
#include "kernels/skinny_linear_mma.cuh"

namespace npr {

namespace {

using skinny::kThreads;

// TC: the tensor-core core (skinny_linear_mma.cuh; VEC only), else skinny_linear_core.cuh's.
template <int M, bool VEC, typename CT, bool PDL, bool TC>
__global__ void __launch_bounds__(kThreads, 4)
    skinny_linear_kernel(CT* __restrict__ y, const uint16_t* __restrict__ x,
                         const uint16_t* __restrict__ W, int64_t k, int64_t n, bool accumulate) {
  __shared__ float part[TC ? skinny_tc::kPartFloats<M> : skinny::kPartFloats<M>];
  if constexpr (PDL) {
    pdl::launch_dependents();
    if constexpr (TC)
      skinny_tc::prefetch_linear_tile(W, k, n, blockIdx.x);
    else
      skinny::prefetch_linear_tile<M>(W, k, n, blockIdx.x);
    pdl::wait();
  }
  if constexpr (TC)
    skinny_tc::linear_tile<M, false>(y, x, W, k, n, accumulate, blockIdx.x, part);
  else
    skinny::linear_tile<M, VEC, false>(y, x, W, k, n, accumulate, blockIdx.x, part);
}

template <int M, bool VEC, bool PDL, bool TC>
__global__ void __launch_bounds__(kThreads, 4)
    skinny_swiglu_kernel(__nv_bfloat16* __restrict__ act, const uint16_t* __restrict__ x,
                         const uint16_t* __restrict__ W, int64_t k, int64_t inter) {
  __shared__ float part[TC ? skinny_tc::kPartFloats<M> : skinny::kPartFloats<M>];
  if constexpr (PDL) {
    pdl::launch_dependents();
    if constexpr (TC)
      skinny_tc::prefetch_swiglu_tile(W, k, inter, blockIdx.x);
    else
      skinny::prefetch_swiglu_tile<M>(W, k, inter, blockIdx.x);
    pdl::wait();
  }
  if constexpr (TC)
    skinny_tc::swiglu_tile<M, false>(act, x, W, k, inter, blockIdx.x, part);
  else
    skinny::swiglu_tile<M, VEC, false>(act, x, W, k, inter, blockIdx.x, part);
}

template <int M, bool VEC, bool TC, typename CT>
Status launch_linear(const SkinnyLaunch& l, CT* y, const uint16_t* x, const uint16_t* W, int64_t in,
                     int64_t out, bool accumulate, cudaStream_t st) {
  const int64_t cols = TC ? skinny_tc::kLinearTileCols : skinny::kLinearTileCols<M>;
  const auto grid = static_cast<unsigned>(skinny::tiles(out, cols));
  if (l.pdl)
    NPR_CUDA_TRY(pdl::launch(true, skinny_linear_kernel<M, VEC, CT, true, TC>, grid, kThreads, 0,
                             st, y, x, W, in, out, accumulate),
                 "skinny_linear_cuda: launch (pdl)");
  else
    skinny_linear_kernel<M, VEC, CT, false, TC>
        <<<grid, kThreads, 0, st>>>(y, x, W, in, out, accumulate);
  return cuda_launch_status("skinny_linear_cuda");
}

template <int M, bool VEC, bool TC>
Status launch_swiglu(const SkinnyLaunch& l, __nv_bfloat16* act, const uint16_t* x,
                     const uint16_t* W, int64_t in, int64_t inter, cudaStream_t st) {
  const int64_t cols = TC ? skinny_tc::kSwigluTileCols : skinny::kSwigluTileCols<M>;
  const auto grid = static_cast<unsigned>(skinny::tiles(inter, cols));
  if (l.pdl)
    NPR_CUDA_TRY(pdl::launch(true, skinny_swiglu_kernel<M, VEC, true, TC>, grid, kThreads, 0, st,
                             act, x, W, in, inter),
                 "skinny_swiglu_linear_cuda: launch (pdl)");
  else
    skinny_swiglu_kernel<M, VEC, false, TC><<<grid, kThreads, 0, st>>>(act, x, W, in, inter);
  return cuda_launch_status("skinny_swiglu_linear_cuda");
}

}  // namespace

Status skinny_linear_cuda(CudaContext& ctx, DevDType out_t, void* y, const void* x, const void* W,
                          int64_t rows, int64_t in, int64_t out, bool accumulate,
                          SkinnyLaunch launch) {
  NPR_TRY(skinny::check_call("skinny_linear_cuda", y, x, W, rows, in, out));
  cudaStream_t st = static_cast<cudaStream_t>(ctx.stream());
  const auto* xs = static_cast<const uint16_t*>(x);
  const auto* ws = static_cast<const uint16_t*>(W);
  return skinny::with_rows(rows, skinny::vector_ok(x, W, in), [&](auto m, auto vec) {
    constexpr int M = decltype(m)::value;
    constexpr bool V = decltype(vec)::value;
    auto run = [&](auto* yt) {
      using CT = std::remove_pointer_t<decltype(yt)>;
      if constexpr (V)
        if (launch.tensor_cores)
          return launch_linear<M, V, true, CT>(launch, yt, xs, ws, in, out, accumulate, st);
      return launch_linear<M, V, false, CT>(launch, yt, xs, ws, in, out, accumulate, st);
    };
    return out_t == DevDType::kF32 ? run(static_cast<float*>(y))
                                   : run(static_cast<__nv_bfloat16*>(y));
  });
}

Status skinny_swiglu_linear_cuda(CudaContext& ctx, void* act, const void* x, const void* W,
                                 int64_t rows, int64_t in, int64_t inter, SkinnyLaunch launch) {
  NPR_TRY(skinny::check_call("skinny_swiglu_linear_cuda", act, x, W, rows, in, inter));
  cudaStream_t st = static_cast<cudaStream_t>(ctx.stream());
  auto* a = static_cast<__nv_bfloat16*>(act);
  const auto* xs = static_cast<const uint16_t*>(x);
  const auto* ws = static_cast<const uint16_t*>(W);
  return skinny::with_rows(rows, skinny::vector_ok(x, W, in), [&](auto m, auto vec) {
    constexpr int M = decltype(m)::value;
    constexpr bool V = decltype(vec)::value;
    if constexpr (V)
      if (launch.tensor_cores) return launch_swiglu<M, V, true>(launch, a, xs, ws, in, inter, st);
    return launch_swiglu<M, V, false>(launch, a, xs, ws, in, inter, st);
  });
}

}  // namespace npr
