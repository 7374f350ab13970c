// The fused logprob head on the device (CUDA twin of logprob_head.h): final RMSNorm -> LM head
// -> log-softmax -> gather, chunked over rows so that at most a (chunk rows x vocab) fp32 logits
// tile exists at a time (never tokens x vocab), in ctx scratch slot kScratchHead.
//
// h is the fp32 residual stream rows, norm_w the fp32 master norm weight, W (vocab, hidden) the
// head weight in the compute type t; hn (rows, hidden) is saved in type t for backward. The
// backward recomputes each logits tile from the saved lse. Deterministic: fixed chunk order,
// no floating-point atomics.
//
// Rows are processed in chunks of logprob_head_cuda_chunk_rows(...) rows: as many as keep the
// chunk's fp32 logits (plus, in backward, its dlogits in type t) within
// kLogprobHeadWorkspaceBytes. `max_chunk_rows` > 0 caps the chunk further (tests use it to force
// several chunks on small shapes); results do not depend on it beyond rounding.
// Targets are not range-checked on the device (the host that uploads them checks); a row whose
// target is outside [0, vocab) gets a NaN logprob and NaN gradients, never a wild read.
#pragma once

#include <cstdint>

#include "core/cuda_context.h"
#include "core/status.h"
#include "kernels/logprob_head.h"

namespace npr {

constexpr int64_t kLogprobHeadWorkspaceBytes = int64_t{256} << 20;

// Rows per chunk for a pass whose workspace costs `bytes_per_row` per row (forward: vocab * 4;
// backward: vocab * 4, + vocab * 2 in bf16 mode), capped by max_chunk_rows when > 0; >= 1.
int64_t logprob_head_cuda_chunk_rows(int64_t rows, int64_t bytes_per_row, int64_t max_chunk_rows);

// Device pointers: logprob, lse (rows) fp32; entropy (rows) fp32 or null; hn (rows, hidden) t;
// rstd (rows) fp32; h (rows, hidden) fp32; norm_w (hidden) fp32; W (vocab, hidden) t;
// targets (rows) int32 in [0, vocab).
Status logprob_head_forward_cuda(CudaContext& ctx, DevDType t, float* logprob, float* lse,
                                 float* entropy, void* hn, float* rstd, const float* h,
                                 const float* norm_w, const void* W, const int32_t* targets,
                                 const LogprobHeadShape& s, int64_t max_chunk_rows = 0);
// dh (rows, hidden) fp32 overwritten; dnorm_w (hidden) and dW (vocab, hidden) fp32 accumulated.
Status logprob_head_backward_cuda(CudaContext& ctx, DevDType t, float* dh, float* dnorm_w,
                                  float* dW, const float* dlogprob, const float* h, const void* hn,
                                  const float* rstd, const float* lse, const float* norm_w,
                                  const void* W, const int32_t* targets, const LogprobHeadShape& s,
                                  int64_t max_chunk_rows = 0);

}  // namespace npr
