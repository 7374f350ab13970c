// Linear layers for decode-sized batches on the device: y = x . W^T for at most
// kSkinnyMaxRows rows of bf16 x against bf16 weights W (out, in), where the step streams every
// weight once and the batch rides along. A GEMM library tiles for big m; at m <= 8 its tile
// wastes most of the tensor core and its split choices vary, while these read each weight row
// with 16-byte loads, fp32 accumulators, and a fixed sum order that does not depend on the
// number of rows (batch invariance; skinny_linear_core.cuh has the work split and the order).
// Forms:
//   skinny_linear_cuda:        y (rows, out) of type out_t = x . W^T, or y += x . W^T;
//   skinny_swiglu_linear_cuda: W holds the gate rows then the up rows (2 * inter, in), as the
//                              parameter table lays them; act (rows, inter) bf16 =
//                              silu(g) * u with g and u rounded to bf16 first (where the
//                              separate GEMMs would round them) and swiglu.cu's formula;
//   skinny_rmsnorm_*:          the same with the layer's input RMSNorm fused in front: x is the
//                              fp32 residual, each CTA computes every row's rstd and stages
//                              xn = bf16(x * rstd * norm_w) in shared memory, as
//                              rmsnorm_forward_cuda(F32 -> BF16) would write it (same formula,
//                              rounding point and sum order), so the result has the bits of
//                              rmsnorm_forward_cuda + the unfused call on an aligned xn. It
//                              writes no rstd (decode needs none).
// Any in works: rows of W and x that are not 16-byte aligned (in % 8 != 0, or an unaligned
// pointer) take an element-wise loop, whose sum order differs from the 16-byte path's. The
// oracles are a double host dot and, for the fused forms, the unfused pair (tests).
#pragma once

#include <cstdint>

#include "core/cuda_context.h"
#include "core/status.h"
#include "kernels/l2_ahead.h"

namespace npr {

constexpr int64_t kSkinnyMaxRows = 8;
// Shared memory the fused forms may stage (rows * in * 2 bytes): 96 KB, within every sm_80+
// device's opt-in limit; in up to 6144 at 8 rows.
constexpr int64_t kSkinnyStageMaxBytes = 96 * 1024;

// How a form launches (every form; default: neither). Same results either way for pdl; the
// tensor-core forms have their own bits (still batch invariant, fused == unfused). The decoder
// asks for pdl with candidate_kernels and for tensor cores with skinny_tensor_cores.
struct SkinnyLaunch {
  // A programmatic dependent launch (pdl.cuh) on devices that support it: the kernel lets the
  // next one launch, prefetches its weights into L2 while the kernel before it still runs, then
  // waits for it. Bit for bit the plain launch's results.
  bool pdl = false;
  // The 16-byte path on tensor cores (skinny_linear_mma.cuh): one mma folds 8 weight rows
  // against every batch row, so 8 rows cost what 1 does. The element path ignores it.
  bool tensor_cores = false;
  // The next kernel's weights (l2_ahead.h): each CTA prefetches its share into L2 as it starts,
  // so DRAM streams them while this kernel drains and the next one launches. Same results.
  L2Ahead ahead{};
};

// x (rows, in) bf16, W (out, in) bf16, y (rows, out) fp32 or bf16; 1 <= rows <= kSkinnyMaxRows.
Status skinny_linear_cuda(CudaContext& ctx, DevDType out_t, void* y, const void* x, const void* W,
                          int64_t rows, int64_t in, int64_t out, bool accumulate,
                          SkinnyLaunch launch = {});

// x (rows, in) bf16, W (2 * inter, in) bf16, act (rows, inter) bf16.
Status skinny_swiglu_linear_cuda(CudaContext& ctx, void* act, const void* x, const void* W,
                                 int64_t rows, int64_t in, int64_t inter, SkinnyLaunch launch = {});

// Whether the fused forms take rows x in: 1 <= rows <= kSkinnyMaxRows and the staged bf16 rows
// fit kSkinnyStageMaxBytes. Otherwise they return kInvalidArgument without launching; callers
// check this first and run rmsnorm_forward_cuda + the unfused form instead.
inline bool skinny_rmsnorm_fits(int64_t rows, int64_t in) {
  return rows >= 1 && rows <= kSkinnyMaxRows && in > 0 && 2 * rows * in <= kSkinnyStageMaxBytes;
}

// y (rows, out) of type out_t = rmsnorm(x) . W^T, or += it. x (rows, in) fp32, norm_w (in) fp32,
// W (out, in) bf16. y must not overlap x (kInvalidArgument).
Status skinny_rmsnorm_linear_cuda(CudaContext& ctx, DevDType out_t, void* y, const float* x,
                                  const float* norm_w, float eps, const void* W, int64_t rows,
                                  int64_t in, int64_t out, bool accumulate,
                                  SkinnyLaunch launch = {});

// act (rows, inter) bf16 = swiglu of rmsnorm(x) . W^T over W (2 * inter, in) bf16 (gate rows
// then up rows). x (rows, in) fp32, norm_w (in) fp32; act must not overlap x.
Status skinny_rmsnorm_swiglu_linear_cuda(CudaContext& ctx, void* act, const float* x,
                                         const float* norm_w, float eps, const void* W,
                                         int64_t rows, int64_t in, int64_t inter,
                                         SkinnyLaunch launch = {});

}  // namespace npr
