// The per-token policy loss of RL fine-tuning and its gradient with respect to the new
// logprobs, fused with the loss aggregation, in one pass (no autograd: the gradient is written
// in closed form). Two losses:
//
//   PPO-clip (DAPO):  r = exp(lp - lp_old); pg1 = -A r; pg2 = -A clip(r, 1 - eps_low, 1 + eps_high)
//                     l = max(pg1, pg2); for A < 0 the dual clip l = min(l, -A c).
//                     Special tokens (the 8 NPR tags) may be exempted from the eps clip
//                     (exempt_special): l = -A r, still under the dual clip (a safety bound
//                     against a ratio blow-up, not a trust region).
//   PAPO:             r = pi / stop_grad(pi) = 1 in value; l = -A, dl/dlp = -A; no clipping.
//
// Aggregation over the masked tokens, sequence s = [cu_seqlens[s], cu_seqlens[s+1]):
//   token-mean           sum_t m_t l_t / D            (D = the masked token count, or
//   `denominator`) seq-mean-token-sum   mean_s sum_t m_t l_t         (over sequences with a masked
//   token; or / denominator) seq-mean-token-mean  mean_s (sum_t m_t l_t / sum_t m_t)
// A `denominator` > 0 replaces the local count (tokens or sequences): gradient accumulation over
// micro-batches then sums to the loss of the whole mini-batch.
//
// dlogprob[t] = dLoss / dlp[t] (0 outside the mask). Metrics are over masked tokens.
// Accumulation is in double, in token order: the result is deterministic.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/status.h"

namespace npr {

enum class PolicyLossKind : int32_t { kPpoClip = 0, kPapo = 1 };
enum class LossAggregation : int32_t {
  kTokenMean = 0,
  kSeqMeanTokenSum = 1,
  kSeqMeanTokenMean = 2
};

struct PolicyLossParams {
  PolicyLossKind kind = PolicyLossKind::kPpoClip;
  LossAggregation aggregation = LossAggregation::kTokenMean;
  float eps_low = 0.2f, eps_high = 0.28f;
  float clip_c = 10.0f;           // dual clip; <= 1 turns it off
  bool exempt_special = false;    // PPO only: special tokens are not eps-clipped
  double denominator = 0.0;       // > 0: replaces the local token / sequence count
  float log_ratio_limit = 20.0f;  // lp - lp_old is clamped to +-limit before exp (verl's guard)
};

struct PolicyLossMetrics {
  double loss = 0.0;
  int64_t tokens = 0;              // masked tokens
  int64_t special_tokens = 0;      // masked special tokens
  double clip_frac = 0.0;          // masked tokens whose gradient the eps clip zeroed
  double clip_frac_lower = 0.0;    // masked tokens whose gradient the dual clip zeroed
  double special_clip_frac = 0.0;  // masked special tokens whose gradient any clip zeroed
  double ratio_mean = 0.0, ratio_min = 0.0, ratio_max = 0.0;
  double approx_kl = 0.0;  // mean of lp_old - lp (verl's ppo_kl)
};

// The counts and sums both implementations gather over the masked tokens, and the metrics
// they make with the aggregated loss.
struct PolicyLossTally {
  int64_t tokens = 0, special_tokens = 0, clipped = 0, clipped_lower = 0, special_clipped = 0;
  double ratio_sum = 0.0, kl_sum = 0.0;
  double ratio_min = INFINITY, ratio_max = -INFINITY;
};
PolicyLossMetrics policy_loss_metrics(const PolicyLossTally& t, double loss);

// The checks of the arguments both implementations share (cu_seqlens on the host).
Status policy_loss_check(const int32_t* cu_seqlens, int64_t sequences, int64_t tokens,
                         const PolicyLossParams& p);

// lp, lp_old, adv, mask (T), special (T, may be null), cu_seqlens (S + 1) -> dlogprob (T), m.
// mask is a 0/1 weight per token (float); adv is per token (a sequence's advantage repeated).
Status policy_loss(float* dlogprob, PolicyLossMetrics* m, const float* lp, const float* lp_old,
                   const float* adv, const float* mask, const uint8_t* special,
                   const int32_t* cu_seqlens, int64_t sequences, int64_t tokens,
                   const PolicyLossParams& p);

}  // namespace npr
