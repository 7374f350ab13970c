// The decode-sized linear layers' kernels (see skinny_linear_cuda.h): the unfused ones, one CTA
// tile per block (launched by skinny_linear.cu), and the fused input RMSNorm forms, a grid-stride
// walk of the column tiles after staging the normalised rows (skinny_linear_rmsnorm.cu). Here so
// that the kernels' emulator in the tests (cpp/tests/emu) runs the layer path's kernels
// themselves. Inside .cu files only.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/dynamic_shared.cuh"
#include "kernels/l2_ahead.h"
#include "kernels/pdl.cuh"
#include "kernels/skinny_linear_core.cuh"
#include "kernels/skinny_linear_mma.cuh"
#include "kernels/skinny_rmsnorm_stage.cuh"

namespace npr::skinny_kernels {

// pdl_launch: the kernel was launched programmatically dependent (pdl.cuh): it lets the next
// kernel launch and prefetches its weight tiles into L2 before it waits for the kernel before.
// ahead: the next kernel's weights (l2_ahead.h), each CTA prefetching its share into L2 first.
// A launch argument, not a template parameter: the branch is uniform and runs once, and a
// template doubled the kernels nvcc and the tests' emulator compile (these files were the
// slowest of the build).

template <int M, bool VEC, typename CT>
__global__ void __launch_bounds__(skinny::kThreads, 4)
    skinny_linear_kernel(CT* __restrict__ y, const uint16_t* __restrict__ x,
                         const uint16_t* __restrict__ W, int64_t k, int64_t n, bool accumulate,
                         bool pdl_launch, L2Ahead ahead) {
  NPR_STATIC_SHARED(float, part, [skinny::kPartFloats<M>]);
  if (pdl_launch) {
    pdl::launch_dependents();
    skinny::prefetch_linear_tile<M>(W, k, n, blockIdx.x);
  }
  pdl::prefetch_l2_share(ahead.p, ahead.bytes);
  if (pdl_launch) pdl::wait();
  skinny::linear_tile<M, VEC, false>(y, x, W, k, n, accumulate, blockIdx.x, part);
}

template <int M, bool VEC>
__global__ void __launch_bounds__(skinny::kThreads, 4)
    skinny_swiglu_kernel(__nv_bfloat16* __restrict__ act, const uint16_t* __restrict__ x,
                         const uint16_t* __restrict__ W, int64_t k, int64_t inter, bool pdl_launch,
                         L2Ahead ahead) {
  NPR_STATIC_SHARED(float, part, [skinny::kPartFloats<M>]);
  if (pdl_launch) {
    pdl::launch_dependents();
    skinny::prefetch_swiglu_tile<M>(W, k, inter, blockIdx.x);
  }
  pdl::prefetch_l2_share(ahead.p, ahead.bytes);
  if (pdl_launch) pdl::wait();
  skinny::swiglu_tile<M, VEC, false>(act, x, W, k, inter, blockIdx.x, part);
}

// The tensor-core forms (skinny_linear_mma.cuh): S slices of k, one warp each.
template <int M, typename CT, int S>
__global__ void __launch_bounds__(S * 32)
    tc_linear_kernel(CT* __restrict__ y, const uint16_t* __restrict__ x,
                     const uint16_t* __restrict__ W, int64_t k, int64_t n, bool accumulate,
                     bool pdl_launch, L2Ahead ahead) {
  NPR_STATIC_SHARED(float, part, [skinny_tc::kPartFloats<M, S>]);
  if (pdl_launch) {
    pdl::launch_dependents();
    skinny_tc::prefetch_linear_tile(W, k, n, blockIdx.x);
  }
  pdl::prefetch_l2_share(ahead.p, ahead.bytes);
  if (pdl_launch) pdl::wait();
  skinny_tc::linear_tile<M, false, S, S>(y, x, W, k, n, accumulate, blockIdx.x, part);
}

template <int M, int S>
__global__ void __launch_bounds__(S * 32)
    tc_swiglu_kernel(__nv_bfloat16* __restrict__ act, const uint16_t* __restrict__ x,
                     const uint16_t* __restrict__ W, int64_t k, int64_t inter, bool pdl_launch,
                     L2Ahead ahead) {
  NPR_STATIC_SHARED(float, part, [skinny_tc::kPartFloats<M, S>]);
  if (pdl_launch) {
    pdl::launch_dependents();
    skinny_tc::prefetch_swiglu_tile(W, k, inter, blockIdx.x);
  }
  pdl::prefetch_l2_share(ahead.p, ahead.bytes);
  if (pdl_launch) pdl::wait();
  skinny_tc::swiglu_tile<M, false, S, S>(act, x, W, k, inter, blockIdx.x, part);
}

// TC: 0 for skinny_linear_core.cuh's core, else the tensor-core core (skinny_linear_mma.cuh; VEC
// only) with TC slices of k over the CTA's kWarps warps.
template <int M, bool VEC, typename CT, int TC>
__global__ void __launch_bounds__(skinny::kThreads, 4)
    skinny_rmsnorm_linear_kernel(CT* __restrict__ y, const float* __restrict__ x,
                                 const float* __restrict__ nw, float eps,
                                 const uint16_t* __restrict__ W, int64_t k, int64_t n,
                                 bool accumulate, bool pdl_launch, L2Ahead ahead) {
  NPR_DYNAMIC_SHARED_AS(uint4, stage);  // (M, k) bf16
  NPR_STATIC_SHARED(float, part, [TC ? skinny_tc::kPartFloats<M, TC> : skinny::kPartFloats<M>]);
  auto* xn = reinterpret_cast<uint16_t*>(stage);
  const int64_t tiles =
      skinny::tiles(n, TC ? skinny_tc::kLinearTileCols : skinny::kLinearTileCols<M>);
  if (pdl_launch) {
    pdl::launch_dependents();
    for (int64_t b = blockIdx.x; b < tiles; b += gridDim.x) {
      if constexpr (TC)
        skinny_tc::prefetch_linear_tile(W, k, n, b);
      else
        skinny::prefetch_linear_tile<M>(W, k, n, b);
    }
  }
  pdl::prefetch_l2_share(ahead.p, ahead.bytes);
  if (pdl_launch) pdl::wait();
  skinny::stage_normed<M>(xn, x, nw, k, eps);
  for (int64_t b = blockIdx.x; b < tiles; b += gridDim.x) {
    if constexpr (TC)
      skinny_tc::linear_tile<M, true, TC, skinny::kWarps>(y, xn, W, k, n, accumulate, b, part);
    else
      skinny::linear_tile<M, VEC, true>(y, xn, W, k, n, accumulate, b, part);
  }
}

template <int M, bool VEC, int TC>
__global__ void __launch_bounds__(skinny::kThreads, 4)
    skinny_rmsnorm_swiglu_kernel(__nv_bfloat16* __restrict__ act, const float* __restrict__ x,
                                 const float* __restrict__ nw, float eps,
                                 const uint16_t* __restrict__ W, int64_t k, int64_t inter,
                                 bool pdl_launch, L2Ahead ahead) {
  NPR_DYNAMIC_SHARED_AS(uint4, stage);  // (M, k) bf16
  NPR_STATIC_SHARED(float, part, [TC ? skinny_tc::kPartFloats<M, TC> : skinny::kPartFloats<M>]);
  auto* xn = reinterpret_cast<uint16_t*>(stage);
  const int64_t tiles =
      skinny::tiles(inter, TC ? skinny_tc::kSwigluTileCols : skinny::kSwigluTileCols<M>);
  if (pdl_launch) {
    pdl::launch_dependents();
    for (int64_t b = blockIdx.x; b < tiles; b += gridDim.x) {
      if constexpr (TC)
        skinny_tc::prefetch_swiglu_tile(W, k, inter, b);
      else
        skinny::prefetch_swiglu_tile<M>(W, k, inter, b);
    }
  }
  pdl::prefetch_l2_share(ahead.p, ahead.bytes);
  if (pdl_launch) pdl::wait();
  skinny::stage_normed<M>(xn, x, nw, k, eps);
  for (int64_t b = blockIdx.x; b < tiles; b += gridDim.x) {
    if constexpr (TC)
      skinny_tc::swiglu_tile<M, true, TC, skinny::kWarps>(act, xn, W, k, inter, b, part);
    else
      skinny::swiglu_tile<M, VEC, true>(act, xn, W, k, inter, b, part);
  }
}

}  // namespace npr::skinny_kernels
