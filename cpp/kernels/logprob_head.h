// The fused last step of the model: final RMSNorm -> LM head -> log-softmax -> gather.
//
// For each scored row r: hn = rmsnorm(h[r]) * norm_w, logits = hn . W^T (vocab), and
// logprob[r] = logits[target[r]] - logsumexp(logits); optionally the entropy of the row.
// Work is chunked over rows and vocabulary and split across threads by vocabulary range, with
// per-thread online log-sum-exp states merged at the end, so a (rows x vocab) logits matrix is
// never materialised: a 151,936-wide vocabulary at 16k rows would be 10 GB of fp32.
// Backward recomputes each logits tile from the saved lse; threads own disjoint vocabulary
// rows of dW (no races) and their partial dhn are summed in thread order (deterministic for a
// given thread count). The entropy is a metric: no gradient flows through it.
#pragma once

#include <cstdint>

#include "core/cpu_info.h"
#include "core/status.h"

namespace npr {

struct LogprobHeadShape {
  int64_t rows = 0, hidden = 0, vocab = 0;
  float eps = 1e-6f;
};

// h (rows, hidden), norm_w (hidden), W (vocab, hidden), targets (rows) ->
// logprob (rows), lse (rows), entropy (rows, may be null), hn (rows, hidden), rstd (rows).
Status logprob_head_forward(const CpuContext& ctx, float* logprob, float* lse, float* entropy,
                            float* hn, float* rstd, const float* h, const float* norm_w,
                            const float* W, const int32_t* targets, const LogprobHeadShape& s);
// dh (rows, hidden) overwritten; dnorm_w (hidden) and dW (vocab, hidden) accumulated.
Status logprob_head_backward(const CpuContext& ctx, float* dh, float* dnorm_w, float* dW,
                             const float* dlogprob, const float* h, const float* hn,
                             const float* rstd, const float* lse, const float* norm_w,
                             const float* W, const int32_t* targets, const LogprobHeadShape& s);

// Oracles: whole logits rows in double.
void logprob_head_forward_reference(float* logprob, float* entropy, const float* h,
                                    const float* norm_w, const float* W, const int32_t* targets,
                                    const LogprobHeadShape& s);
void logprob_head_backward_reference(float* dh, float* dnorm_w, float* dW, const float* dlogprob,
                                     const float* h, const float* norm_w, const float* W,
                                     const int32_t* targets, const LogprobHeadShape& s);

}  // namespace npr
