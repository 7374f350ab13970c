// Fused input RMSNorm + decode-sized linear layers (see skinny_linear_cuda.h). Each CTA:
//   1. computes every batch row's rstd from the fp32 residual in rmsnorm.cu's order (a warp per
//      row when in <= 256; otherwise 256 virtual threads striding the row, butterflies over
//      each 32, the 8 warp sums added in warp order; the CTA's 128 threads play two virtual
//      threads each), with rmsnorm.cu's formula and rounding point;
//   2. stages xn (M, in) = bf16(x * rstd * w) in shared memory;
//   3. walks its column tiles (a grid-stride loop, so each CTA stages once for several tiles)
//      with skinny_linear_core.cuh (or the tensor-core skinny_linear_mma.cuh) reading x from
//      shared memory.
// Steps 1-2 repeat in every CTA: x is at most 8 rows, read from L2/L1.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <type_traits>

#include "core/cuda_check.cuh"
#include "kernels/pdl.cuh"
#include "kernels/skinny_linear_core.cuh"
#include "kernels/skinny_linear_cuda.h"
#include "kernels/skinny_linear_kernels.cuh"
#include "kernels/skinny_linear_launch.h"
#include "kernels/skinny_linear_mma.cuh"
#include "kernels/skinny_rmsnorm_stage.cuh"

namespace npr {

namespace {

using skinny::kNormThreads;
using skinny::kThreads;
constexpr int kCtasPerSm = 4;  // fused grid: at most this many CTAs per SM
using namespace skinny_kernels;

Status check_fused(const char* op, const void* y, int64_t y_bytes, const float* x,
                   const float* norm_w, int64_t rows, int64_t in) {
  if (!norm_w) return Status::invalid(std::string(op) + ": null norm weight");
  if (!skinny_rmsnorm_fits(rows, in))
    return Status::invalid(std::string(op) + ": staging " + std::to_string(rows) + " x " +
                           std::to_string(in) + " bf16 needs " + std::to_string(2 * rows * in) +
                           " bytes of shared memory, above kSkinnyStageMaxBytes (" +
                           std::to_string(kSkinnyStageMaxBytes) +
                           "); check skinny_rmsnorm_fits and run rmsnorm_forward_cuda + the "
                           "unfused skinny call instead");
  const auto yb = reinterpret_cast<uintptr_t>(y), xb = reinterpret_cast<uintptr_t>(x);
  const auto x_bytes = static_cast<uintptr_t>(4 * rows * in);
  if (yb < xb + x_bytes && xb < yb + static_cast<uintptr_t>(y_bytes))
    return Status::invalid(std::string(op) +
                           ": the output overlaps x (other CTAs still read x while one writes)");
  return Status::ok();
}

// Grid for `tiles` column tiles: every tile once, at most kCtasPerSm CTAs per SM.
Status fused_grid(int64_t tiles, unsigned* grid) {
  int dev = 0, sms = 0;
  NPR_CUDA_TRY(cudaGetDevice(&dev), "skinny rmsnorm linear: cudaGetDevice");
  NPR_CUDA_TRY(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev),
               "skinny rmsnorm linear: SM count");
  *grid = static_cast<unsigned>(std::min<int64_t>(tiles, int64_t{kCtasPerSm} * std::max(sms, 1)));
  return Status::ok();
}

// The kernels' static shared memory (norm partials, rstd, the slices' partial sums) is under
// 4.5 KB; dynamic + static above 48 KB needs the opt-in. 8 KB of headroom keeps the test simple.
constexpr int64_t kStaticSmemHeadroom = 8 * 1024;
static_assert(4 * (kSkinnyMaxRows * (kNormThreads / 32) + kSkinnyMaxRows +
                   std::max(skinny::kPartFloats<kSkinnyMaxRows>,
                            skinny_tc::kPartFloats<kSkinnyMaxRows, skinny_tc::kSlicesNarrow>)) <=
                  kStaticSmemHeadroom,
              "the fused kernels' static shared memory outgrew kStaticSmemHeadroom");

// Lets `kernel` take `bytes` of dynamic shared memory (an opt-in when, with its static shared
// memory, that passes the 48 KB a launch gets without one; an H200 run refused exactly 48 KB).
template <typename K>
Status allow_stage(K kernel, int64_t bytes, const char* op) {
  if (bytes + kStaticSmemHeadroom <= 48 * 1024) return Status::ok();
  return cuda_status(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          static_cast<int>(kSkinnyStageMaxBytes)),
                     op);
}

}  // namespace

Status skinny_rmsnorm_linear_cuda(CudaContext& ctx, DevDType out_t, void* y, const float* x,
                                  const float* norm_w, float eps, const void* W, int64_t rows,
                                  int64_t in, int64_t out, bool accumulate, SkinnyLaunch launch) {
  const char* op = "skinny_rmsnorm_linear_cuda";
  NPR_TRY(skinny::check_call(op, y, x, W, rows, in, out));
  NPR_TRY(skinny::check_ahead(op, launch.ahead));
  NPR_TRY(check_fused(op, y, rows * out * dev_dtype_size(out_t), x, norm_w, rows, in));
  cudaStream_t st = static_cast<cudaStream_t>(ctx.stream());
  const auto* ws = static_cast<const uint16_t*>(W);
  const int64_t bytes = 2 * rows * in;
  return skinny::with_rows(rows, skinny::vector_ok(nullptr, W, in), [&](auto m, auto vec) {
    constexpr int M = decltype(m)::value;
    constexpr bool V = decltype(vec)::value;
    auto run = [&](auto tc, auto* yt) -> Status {
      constexpr int TC = decltype(tc)::value;
      using CT = std::remove_pointer_t<decltype(yt)>;
      unsigned grid = 0;
      NPR_TRY(fused_grid(
          skinny::tiles(out, TC ? skinny_tc::kLinearTileCols : skinny::kLinearTileCols<M>), &grid));
      auto* k = skinny_rmsnorm_linear_kernel<M, V, CT, TC>;
      NPR_TRY(allow_stage(k, bytes, op));
      // Without pdl, pdl::launch is a plain launch.
      NPR_CUDA_TRY(pdl::launch(launch.pdl, k, grid, kThreads, static_cast<size_t>(bytes), st, yt, x,
                               norm_w, eps, ws, in, out, accumulate, launch.pdl, launch.ahead),
                   op);
      return cuda_launch_status(op);
    };
    auto typed = [&](auto tc) {
      return out_t == DevDType::kF32 ? run(tc, static_cast<float*>(y))
                                     : run(tc, static_cast<__nv_bfloat16*>(y));
    };
    if constexpr (V)
      if (launch.tensor_cores)
        return skinny_tc::with_slices(skinny::tiles(out, skinny_tc::kLinearTileCols), typed);
    return typed(std::integral_constant<int, 0>{});
  });
}

Status skinny_rmsnorm_swiglu_linear_cuda(CudaContext& ctx, void* act, const float* x,
                                         const float* norm_w, float eps, const void* W,
                                         int64_t rows, int64_t in, int64_t inter,
                                         SkinnyLaunch launch) {
  const char* op = "skinny_rmsnorm_swiglu_linear_cuda";
  NPR_TRY(skinny::check_call(op, act, x, W, rows, in, inter));
  NPR_TRY(skinny::check_ahead(op, launch.ahead));
  NPR_TRY(check_fused(op, act, 2 * rows * inter, x, norm_w, rows, in));
  cudaStream_t st = static_cast<cudaStream_t>(ctx.stream());
  const int64_t bytes = 2 * rows * in;
  auto* a = static_cast<__nv_bfloat16*>(act);
  const auto* ws = static_cast<const uint16_t*>(W);
  return skinny::with_rows(rows, skinny::vector_ok(nullptr, W, in), [&](auto m, auto vec) {
    constexpr int M = decltype(m)::value;
    constexpr bool V = decltype(vec)::value;
    auto run = [&](auto tc) -> Status {
      constexpr int TC = decltype(tc)::value;
      unsigned grid = 0;
      NPR_TRY(fused_grid(
          skinny::tiles(inter, TC ? skinny_tc::kSwigluTileCols : skinny::kSwigluTileCols<M>),
          &grid));
      auto* k = skinny_rmsnorm_swiglu_kernel<M, V, TC>;
      NPR_TRY(allow_stage(k, bytes, op));
      NPR_CUDA_TRY(pdl::launch(launch.pdl, k, grid, kThreads, static_cast<size_t>(bytes), st, a, x,
                               norm_w, eps, ws, in, inter, launch.pdl, launch.ahead),
                   op);
      return cuda_launch_status(op);
    };
    if constexpr (V)
      if (launch.tensor_cores)
        return skinny_tc::with_slices(skinny::tiles(inter, skinny_tc::kSwigluTileCols), run);
    return run(std::integral_constant<int, 0>{});
  });
}

}  // namespace npr
