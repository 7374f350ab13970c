// The Hopper forward of the fused block-sparse attention (parallel_attention_fwd_sm90a.cu):
// warpgroup MMA (wgmma) instead of mma.sync, for bf16 with head_dim 64 or 128 and an even GQA
// group, on sm_90 devices, in builds whose CUDA architectures include 90 (the file is compiled
// for sm_90a alone; NPR_HAVE_SM90A says it was). attention_forward_cuda takes it when the
// context's attention_wgmma switch is 1 or 2 (CTAs an SM) and attention_wgmma_available says it
// can run; the other shapes and devices keep the mma.sync kernels.
#pragma once

#include <cstdint>

#include "core/cuda_context.h"
#include "core/status.h"

namespace npr {

namespace attn_fwd {
struct FwdParams;
}

// Whether this build has the sm_90a kernel (defined in parallel_attention.cu without it), and
// whether it also runs here: the current device is an sm_90 one.
bool attention_wgmma_compiled();
bool attention_wgmma_available();

// Launches the kernel over `pair_blocks` = tiles x heads / 2 CTAs (p as attention_forward_cuda
// fills it; p.group even, p.head_dim 64 or 128, 16-byte aligned tensors), in its build for 1 or
// 2 CTAs an SM (ctas_per_sm). Only where attention_wgmma_available() holds.
Status attention_forward_wgmma(CudaContext& ctx, const attn_fwd::FwdParams& p, int64_t pair_blocks,
                               int ctas_per_sm);

}  // namespace npr
