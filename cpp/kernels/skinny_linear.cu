// Decode-sized linear layers on the device (see skinny_linear_cuda.h): the unfused launchers.
// One CTA tile per block; the work split and the sum order are skinny_linear_core.cuh's, or
// skinny_linear_mma.cuh's for the tensor-core forms. Weight loads bypass L1 allocation (streamed
// once); x is tiny and shared by the whole grid, so it is read through the read-only cache.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <string>

#include "core/cuda_check.cuh"
#include "core/cuda_launch.cuh"
#include "kernels/pdl.cuh"
#include "kernels/skinny_linear_core.cuh"
#include "kernels/skinny_linear_cuda.h"
#include "kernels/skinny_linear_kernels.cuh"
#include "kernels/skinny_linear_launch.h"
#include "kernels/skinny_linear_mma.cuh"

namespace npr {

namespace {

using skinny::kThreads;
using namespace skinny_kernels;

// kernel<<<grid, block, 0, st>>>(args...), as a programmatic dependent launch when pdl.
template <typename... P, typename... A>
Status launch_one(bool pdl, void (*kernel)(P...), unsigned grid, int block, cudaStream_t st,
                  const char* op, A... args) {
  if (pdl)
    NPR_CUDA_TRY(pdl::launch(true, kernel, grid, block, 0, st, args...), op);
  else
    NPR_LAUNCH(grid, block, 0, st, kernel)(args...);
  return cuda_launch_status(op);
}

template <int M, bool VEC, typename CT>
Status launch_linear(const SkinnyLaunch& l, CT* y, const uint16_t* x, const uint16_t* W, int64_t in,
                     int64_t out, bool acc, cudaStream_t st) {
  const char* op = "skinny_linear_cuda";
  if (VEC && l.tensor_cores) {
    const int64_t tiles = skinny::tiles(out, skinny_tc::kLinearTileCols);
    return skinny_tc::with_slices(tiles, [&](auto slices) {
      constexpr int S = decltype(slices)::value;
      const auto grid = static_cast<unsigned>(tiles);
      return launch_one(l.pdl, tc_linear_kernel<M, CT, S>, grid, 32 * S, st, op, y, x, W, in, out,
                        acc, l.pdl, l.ahead);
    });
  }
  const auto grid = static_cast<unsigned>(skinny::tiles(out, skinny::kLinearTileCols<M>));
  return launch_one(l.pdl, skinny_linear_kernel<M, VEC, CT>, grid, kThreads, st, op, y, x, W, in,
                    out, acc, l.pdl, l.ahead);
}

template <int M, bool VEC>
Status launch_swiglu(const SkinnyLaunch& l, __nv_bfloat16* act, const uint16_t* x,
                     const uint16_t* W, int64_t in, int64_t inter, cudaStream_t st) {
  const char* op = "skinny_swiglu_linear_cuda";
  if (VEC && l.tensor_cores) {
    const int64_t tiles = skinny::tiles(inter, skinny_tc::kSwigluTileCols);
    return skinny_tc::with_slices(tiles, [&](auto slices) {
      constexpr int S = decltype(slices)::value;
      const auto grid = static_cast<unsigned>(tiles);
      return launch_one(l.pdl, tc_swiglu_kernel<M, S>, grid, 32 * S, st, op, act, x, W, in, inter,
                        l.pdl, l.ahead);
    });
  }
  const auto grid = static_cast<unsigned>(skinny::tiles(inter, skinny::kSwigluTileCols<M>));
  return launch_one(l.pdl, skinny_swiglu_kernel<M, VEC>, grid, kThreads, st, op, act, x, W, in,
                    inter, l.pdl, l.ahead);
}

}  // namespace

Status skinny_linear_cuda(CudaContext& ctx, DevDType out_t, void* y, const void* x, const void* W,
                          int64_t rows, int64_t in, int64_t out, bool accumulate,
                          SkinnyLaunch launch) {
  NPR_TRY(skinny::check_call("skinny_linear_cuda", y, x, W, rows, in, out));
  NPR_TRY(skinny::check_ahead("skinny_linear_cuda", launch.ahead));
  cudaStream_t st = static_cast<cudaStream_t>(ctx.stream());
  const auto* xs = static_cast<const uint16_t*>(x);
  const auto* ws = static_cast<const uint16_t*>(W);
  return skinny::with_rows(rows, skinny::vector_ok(x, W, in), [&](auto m, auto vec) {
    constexpr int M = decltype(m)::value;
    constexpr bool V = decltype(vec)::value;
    if (out_t == DevDType::kF32)
      return launch_linear<M, V>(launch, static_cast<float*>(y), xs, ws, in, out, accumulate, st);
    return launch_linear<M, V>(launch, static_cast<__nv_bfloat16*>(y), xs, ws, in, out, accumulate,
                               st);
  });
}

Status skinny_swiglu_linear_cuda(CudaContext& ctx, void* act, const void* x, const void* W,
                                 int64_t rows, int64_t in, int64_t inter, SkinnyLaunch launch) {
  NPR_TRY(skinny::check_call("skinny_swiglu_linear_cuda", act, x, W, rows, in, inter));
  NPR_TRY(skinny::check_ahead("skinny_swiglu_linear_cuda", launch.ahead));
  cudaStream_t st = static_cast<cudaStream_t>(ctx.stream());
  auto* a = static_cast<__nv_bfloat16*>(act);
  const auto* xs = static_cast<const uint16_t*>(x);
  const auto* ws = static_cast<const uint16_t*>(W);
  return skinny::with_rows(rows, skinny::vector_ok(x, W, in), [&](auto m, auto vec) {
    constexpr int M = decltype(m)::value;
    constexpr bool V = decltype(vec)::value;
    return launch_swiglu<M, V>(launch, a, xs, ws, in, inter, st);
  });
}

}  // namespace npr
