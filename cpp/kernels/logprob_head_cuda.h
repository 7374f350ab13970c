// The fused logprob head on the device (CUDA twin of logprob_head.h): final RMSNorm -> LM head
// -> log-softmax -> gather, chunked over rows so that at most a (chunk rows x vocab) fp32 logits
// tile exists at a time (never tokens x vocab), in ctx scratch slot kScratchHead.
//
// h is the fp32 residual stream rows, norm_w the fp32 master norm weight, W (vocab, hidden) the
// head weight in the compute type t; hn (rows, hidden) is saved in type t for backward. The
// backward recomputes each logits tile from the saved lse. Deterministic: fixed chunk order,
// no floating-point atomics.
#pragma once

#include <cstdint>

#include "core/cuda_context.h"
#include "core/status.h"
#include "kernels/logprob_head.h"

namespace npr {

// Device pointers: logprob, lse (rows) fp32; entropy (rows) fp32 or null; hn (rows, hidden) t;
// rstd (rows) fp32; h (rows, hidden) fp32; norm_w (hidden) fp32; W (vocab, hidden) t;
// targets (rows) int32 in [0, vocab).
Status logprob_head_forward_cuda(CudaContext& ctx, DevDType t, float* logprob, float* lse,
                                 float* entropy, void* hn, float* rstd, const float* h,
                                 const float* norm_w, const void* W, const int32_t* targets,
                                 const LogprobHeadShape& s);
// dh (rows, hidden) fp32 overwritten; dnorm_w (hidden) and dW (vocab, hidden) fp32 accumulated.
Status logprob_head_backward_cuda(CudaContext& ctx, DevDType t, float* dh, float* dnorm_w,
                                  float* dW, const float* dlogprob, const float* h, const void* hn,
                                  const float* rstd, const float* lse, const float* norm_w,
                                  const void* W, const int32_t* targets, const LogprobHeadShape& s);

}  // namespace npr
