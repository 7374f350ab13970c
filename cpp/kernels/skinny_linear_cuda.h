// Linear layers for decode-sized batches on the device: y = x . W^T for at most
// kSkinnyMaxRows rows of bf16 x against bf16 weights W (out, in), where the step streams every
// weight once and the batch rides along. A GEMM library tiles for big m; at m <= 8 its tile
// wastes most of the tensor core and its split choices vary, while this reads each weight row
// with 16-byte loads (one warp per two output columns, lanes along k, fp32 accumulators, a warp
// butterfly at the end) and keeps x in L1. Two forms:
//   skinny_linear_cuda:        y (rows, out) of type out_t = x . W^T, or y += x . W^T;
//   skinny_swiglu_linear_cuda: W holds the gate rows then the up rows (2 * inter, in), as the
//                              parameter table lays them; act (rows, inter) bf16 =
//                              silu(g) * u with g and u rounded to bf16 first (where the
//                              separate GEMMs would round them) and swiglu.cu's formula.
// Any in works: rows of W and x that are not 16-byte aligned (in % 8 != 0, or an unaligned
// pointer) take an element-wise loop. The oracle is gemm_cuda (tests: odd sizes, all row counts).
#pragma once

#include <cstdint>

#include "core/cuda_context.h"
#include "core/status.h"

namespace npr {

constexpr int64_t kSkinnyMaxRows = 8;

// x (rows, in) bf16, W (out, in) bf16, y (rows, out) fp32 or bf16; 1 <= rows <= kSkinnyMaxRows.
Status skinny_linear_cuda(CudaContext& ctx, DevDType out_t, void* y, const void* x, const void* W,
                          int64_t rows, int64_t in, int64_t out, bool accumulate);

// x (rows, in) bf16, W (2 * inter, in) bf16, act (rows, inter) bf16.
Status skinny_swiglu_linear_cuda(CudaContext& ctx, void* act, const void* x, const void* W,
                                 int64_t rows, int64_t in, int64_t inter);

}  // namespace npr
