// attention_backward_dq_from_tile_acc (parallel_attention_wgmma.h): the last pass of the Hopper
// backward's atomic dQ, dq = bf16(sums * scale) from the tile-ordered fp32 sums that the wgmma
// dK / dV kernels' bulk reductions add into (parallel_attention_bwd_tile_dq.cuh). Compiled with
// the sm_90a kernels it serves (the kernel itself is plain CUDA).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <string>

#include "core/cuda_check.cuh"
#include "core/cuda_launch.cuh"
#include "kernels/mma_bf16.cuh"
#include "kernels/parallel_attention_bwd.cuh"
#include "kernels/parallel_attention_bwd_tile_dq.cuh"
#include "kernels/parallel_attention_wgmma.h"

namespace npr {

namespace {

using namespace attn_bwd;
using bf16_t = __nv_bfloat16;

constexpr int kThreads = 256;

// Thread i takes two adjacent head dims of one row of one (query tile, head) block,
// grid-striding over tiles x heads x 64 rows x D / 2 pairs; rows past a tile's end are skipped.
template <int D>
__global__ void __launch_bounds__(kThreads)
    dq_from_tile_acc_kernel(PlanView p, int heads, float scale, bf16_t* __restrict__ dq,
                            const float* __restrict__ acc) {
  const int64_t pairs = p.tiles * heads * kTile * (D / 2);
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < pairs;
       i += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int e = static_cast<int>(i % (D / 2)) * 2;  // head dim of the pair's first element
    const int r = static_cast<int>(i / (D / 2) % kTile);
    const int64_t gh = i / (D / 2) / kTile;  // g heads + h
    const int64_t g = gh / heads;
    const int h = static_cast<int>(gh % heads);
    const SeqSpan sq = seq_of(p, g);
    const int64_t start = tile_start(sq, g - sq.tile0);
    if (r >= tile_len(sq, start)) continue;
    const float2 a =
        *reinterpret_cast<const float2*>(acc + gh * (kTile * D) + tile_dq_index_of(r, e));
    *reinterpret_cast<uint32_t*>(dq + ((start + r) * heads + h) * D + e) =
        pack_bf16x2(a.x * scale, a.y * scale);
  }
}

template <int D>
Status launch_from_acc(cudaStream_t st, const PlanView& p, const Dims& d, void* dq,
                       const float* dq_acc) {
  const int64_t pairs = attention_tile_dq_acc_floats(p.tiles, d.heads, D) / 2;
  const auto blocks =
      static_cast<unsigned>(std::min<int64_t>((pairs + kThreads - 1) / kThreads, int64_t{65535}));
  NPR_LAUNCH(blocks, kThreads, 0, st, dq_from_tile_acc_kernel<D>)
  (p, d.heads, d.scale, static_cast<bf16_t*>(dq), dq_acc);
  return cuda_launch_status("attention backward: dQ from its tile-ordered fp32 sums");
}

}  // namespace

Status attention_backward_dq_from_tile_acc(void* stream, const attn_bwd::PlanView& p,
                                           const attn_bwd::Dims& d, void* dq, const float* dq_acc) {
  auto st = static_cast<cudaStream_t>(stream);
  if (d.dim == 64) return launch_from_acc<64>(st, p, d, dq, dq_acc);
  if (d.dim == 128) return launch_from_acc<128>(st, p, d, dq, dq_acc);
  return Status::invalid("attention_backward_dq_from_tile_acc: head_dim " + std::to_string(d.dim) +
                         " (64 or 128 only)");
}

}  // namespace npr
