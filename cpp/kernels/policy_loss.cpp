// Policy losses (PPO-clip with clip-higher, dual clip and the special-token exemption; PAPO)
// and their aggregation: see policy_loss.h. Two passes over the tokens: per-token loss and
// gradient factor, then the aggregation weights.
#include "kernels/policy_loss.h"

#include "kernels/policy_loss_token.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace npr {

Status policy_loss_check(const int32_t* cu_seqlens, int64_t sequences, int64_t tokens,
                         const PolicyLossParams& p) {
  if (tokens < 0 || sequences < 1)
    return Status::out_of_range("policy_loss: need at least one sequence");
  if (cu_seqlens[0] != 0 || cu_seqlens[sequences] != tokens)
    return Status::out_of_range("policy_loss: cu_seqlens must run from 0 to the token count " +
                                std::to_string(tokens));
  for (int64_t s = 0; s < sequences; ++s)
    if (cu_seqlens[s + 1] < cu_seqlens[s])
      return Status::out_of_range("policy_loss: cu_seqlens must not decrease (at sequence " +
                                  std::to_string(s) + ")");
  if (!(p.eps_low >= 0 && p.eps_low < 1 && p.eps_high >= 0))
    return Status::out_of_range("policy_loss: need 0 <= eps_low < 1 and eps_high >= 0");
  return Status::ok();
}

PolicyLossMetrics policy_loss_metrics(const PolicyLossTally& t, double loss) {
  PolicyLossMetrics out;
  out.loss = loss;
  out.tokens = t.tokens;
  out.special_tokens = t.special_tokens;
  if (t.tokens > 0) {
    const double n = static_cast<double>(t.tokens);
    out.clip_frac = t.clipped / n;
    out.clip_frac_lower = t.clipped_lower / n;
    out.ratio_mean = t.ratio_sum / n;
    out.approx_kl = t.kl_sum / n;
    out.ratio_min = t.ratio_min;
    out.ratio_max = t.ratio_max;
  }
  if (t.special_tokens > 0)
    out.special_clip_frac = static_cast<double>(t.special_clipped) / t.special_tokens;
  return out;
}

Status policy_loss(float* dlogprob, PolicyLossMetrics* m, const float* lp, const float* lp_old,
                   const float* adv, const float* mask, const uint8_t* special,
                   const int32_t* cu_seqlens, int64_t sequences, int64_t tokens,
                   const PolicyLossParams& p) {
  NPR_TRY(policy_loss_check(cu_seqlens, sequences, tokens, p));
  const bool ppo = p.kind == PolicyLossKind::kPpoClip;
  PolicyLossTally tally;
  std::vector<PolicyTokenTerm> term(static_cast<size_t>(tokens));
  for (int64_t t = 0; t < tokens; ++t) {
    if (!(mask[t] > 0.0f)) continue;
    const double a = adv[t];
    if (!std::isfinite(a) || !std::isfinite(lp[t]) || (ppo && !std::isfinite(lp_old[t])))
      return Status::out_of_range("policy_loss: non-finite logprob or advantage at token " +
                                  std::to_string(t));
    const bool sp = special != nullptr && special[t] != 0;
    const PolicyTokenTerm tt = policy_token_term(a, lp[t], ppo ? lp_old[t] : 0.0f, sp, p);
    term[t] = tt;
    ++tally.tokens;
    tally.special_tokens += sp ? 1 : 0;
    tally.ratio_sum += tt.ratio;
    tally.kl_sum += tt.kl;
    tally.ratio_min = std::min(tally.ratio_min, tt.ratio);
    tally.ratio_max = std::max(tally.ratio_max, tt.ratio);
    tally.clipped += tt.eps_clipped ? 1 : 0;
    tally.clipped_lower += tt.dual_clipped ? 1 : 0;
    tally.special_clipped += (sp && (tt.eps_clipped || tt.dual_clipped)) ? 1 : 0;
  }

  // Aggregation weight w_t of each token: Loss = sum_t w_t l_t.
  double loss = 0.0;
  if (p.aggregation == LossAggregation::kTokenMean) {
    const double D = p.denominator > 0 ? p.denominator : static_cast<double>(tally.tokens);
    const double w = D > 0 ? 1.0 / D : 0.0;
    for (int64_t t = 0; t < tokens; ++t) {
      const double wt = mask[t] > 0.0f ? w * mask[t] : 0.0;
      loss += wt * term[t].loss;
      dlogprob[t] = static_cast<float>(wt * term[t].grad);
    }
  } else {
    int64_t live = 0;
    for (int64_t s = 0; s < sequences; ++s) {
      bool any = false;
      for (int32_t t = cu_seqlens[s]; t < cu_seqlens[s + 1] && !any; ++t) any = mask[t] > 0.0f;
      live += any ? 1 : 0;
    }
    const double S = p.denominator > 0 ? p.denominator : static_cast<double>(live);
    for (int64_t s = 0; s < sequences; ++s) {
      double count = 0.0;
      for (int32_t t = cu_seqlens[s]; t < cu_seqlens[s + 1]; ++t)
        if (mask[t] > 0.0f) count += mask[t];
      const double per = p.aggregation == LossAggregation::kSeqMeanTokenMean
                             ? (count > 0 ? 1.0 / count : 0.0)
                             : 1.0;
      const double w = S > 0 ? per / S : 0.0;
      for (int32_t t = cu_seqlens[s]; t < cu_seqlens[s + 1]; ++t) {
        const double wt = mask[t] > 0.0f ? w * mask[t] : 0.0;
        loss += wt * term[t].loss;
        dlogprob[t] = static_cast<float>(wt * term[t].grad);
      }
    }
  }
  *m = policy_loss_metrics(tally, loss);
  return Status::ok();
}

}  // namespace npr
