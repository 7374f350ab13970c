// The policy loss on the device: the twin of policy_loss.h (same losses, aggregations, metrics
// and errors), for a training loop whose logprobs stay on the device. Per-token terms come from
// policy_loss_token.h, the same code the CPU runs; every sum (the metrics' counts and sums, the
// per-sequence mask weights, the loss) runs in a fixed order (a strided pass per thread, then a
// fixed tree in one block), so repeated calls agree bit for bit, and values agree with the CPU
// loss up to the order of its double sums. dlogprob gets the same weights times the same
// gradient terms as on the CPU. A non-finite masked input is the CPU's error naming the first
// such token, and nothing is written then.
#pragma once

#include <cstdint>

#include "core/cuda_context.h"
#include "core/status.h"
#include "kernels/policy_loss.h"

namespace npr {

// Device arrays: lp, lp_old, adv, mask (T) fp32, special (T) uint8 or null; dlogprob (T) fp32
// out. cu_seqlens (S + 1) on the host. Metrics to the host (the call waits for the device).
Status policy_loss_cuda(CudaContext& ctx, float* dlogprob, PolicyLossMetrics* m, const float* lp,
                        const float* lp_old, const float* adv, const float* mask,
                        const uint8_t* special, const int32_t* cu_seqlens, int64_t sequences,
                        int64_t tokens, const PolicyLossParams& p);

}  // namespace npr
