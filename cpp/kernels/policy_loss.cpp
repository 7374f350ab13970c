// Policy losses (PPO-clip with clip-higher, dual clip and the special-token exemption; PAPO)
// and their aggregation: see policy_loss.h. Two passes over the tokens: per-token loss and
// gradient factor, then the aggregation weights.
#include "kernels/policy_loss.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace npr {

namespace {

struct TokenTerm {
  double loss;  // per-token loss l_t
  double grad;  // dl_t / dlp_t
};

}  // namespace

Status policy_loss(float* dlogprob, PolicyLossMetrics* m, const float* lp, const float* lp_old,
                   const float* adv, const float* mask, const uint8_t* special,
                   const int32_t* cu_seqlens, int64_t sequences, int64_t tokens,
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

  const bool ppo = p.kind == PolicyLossKind::kPpoClip;
  const double lo = 1.0 - p.eps_low, hi = 1.0 + p.eps_high, c = p.clip_c;
  const bool dual = c > 1.0;
  PolicyLossMetrics out;
  int64_t clipped = 0, clipped_lower = 0, special_clipped = 0;
  double ratio_sum = 0.0, kl_sum = 0.0;
  out.ratio_min = INFINITY;
  out.ratio_max = -INFINITY;
  std::vector<TokenTerm> term(static_cast<size_t>(tokens));
  for (int64_t t = 0; t < tokens; ++t) {
    TokenTerm& tt = term[t];
    tt = {0.0, 0.0};
    if (!(mask[t] > 0.0f)) continue;
    const double a = adv[t];
    if (!std::isfinite(a) || !std::isfinite(lp[t]) || (ppo && !std::isfinite(lp_old[t])))
      return Status::out_of_range("policy_loss: non-finite logprob or advantage at token " +
                                  std::to_string(t));
    const bool sp = special != nullptr && special[t] != 0;
    ++out.tokens;
    if (sp) ++out.special_tokens;
    if (!ppo) {  // PAPO: ratio 1 in value, gradient of log pi
      tt = {-a, -a};
      ratio_sum += 1.0;
      out.ratio_min = std::min(out.ratio_min, 1.0);
      out.ratio_max = std::max(out.ratio_max, 1.0);
      continue;
    }
    const double d =
        std::clamp(static_cast<double>(lp[t]) - lp_old[t], -static_cast<double>(p.log_ratio_limit),
                   static_cast<double>(p.log_ratio_limit));
    const double r = std::exp(d);
    ratio_sum += r;
    kl_sum += -d;
    out.ratio_min = std::min(out.ratio_min, r);
    out.ratio_max = std::max(out.ratio_max, r);
    const double pg1 = -a * r;
    double l = pg1, g = -a * r;
    bool eps_clipped = false;
    if (!(sp && p.exempt_special)) {
      const double pg2 = -a * std::clamp(r, lo, hi);
      if (pg2 > pg1) {  // the clipped branch is taken: constant in lp
        l = pg2;
        g = 0.0;
        eps_clipped = true;
      }
    }
    bool dual_clipped = false;
    if (dual && a < 0.0 && -a * c < l) {
      l = -a * c;
      g = 0.0;
      dual_clipped = true;
    }
    if (eps_clipped) ++clipped;
    if (dual_clipped) ++clipped_lower;
    if (sp && (eps_clipped || dual_clipped)) ++special_clipped;
    tt = {l, g};
  }

  // Aggregation weight w_t of each token: Loss = sum_t w_t l_t.
  double loss = 0.0;
  if (p.aggregation == LossAggregation::kTokenMean) {
    const double D = p.denominator > 0 ? p.denominator : static_cast<double>(out.tokens);
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
  out.loss = loss;
  if (out.tokens > 0) {
    const double n = static_cast<double>(out.tokens);
    out.clip_frac = clipped / n;
    out.clip_frac_lower = clipped_lower / n;
    out.ratio_mean = ratio_sum / n;
    out.approx_kl = kl_sum / n;
  } else {
    out.ratio_min = out.ratio_max = 0.0;
  }
  if (out.special_tokens > 0)
    out.special_clip_frac = static_cast<double>(special_clipped) / out.special_tokens;
  *m = out;
  return Status::ok();
}

}  // namespace npr
