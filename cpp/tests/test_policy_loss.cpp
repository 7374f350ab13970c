// The fused policy loss against a literal reference (verl's formulas written as they read, the
// gradient by central finite differences of that reference), on odd sizes with every loss and
// aggregation; and the property PAPO exists for: a tag token whose ratio left the clip range
// gets no gradient under plain PPO-clip but its full gradient under PAPO and the exemption.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/policy_loss.h"
#include "tests/harness.h"
#include "tests/test_policy_cases.h"
#include "tests/test_util.h"

namespace npr::test {

namespace {

// Loss of the literal formulas (double), for finite differences.
double reference_loss(const std::vector<double>& lp, const std::vector<float>& old,
                      const std::vector<float>& adv, const std::vector<float>& mask,
                      const std::vector<uint8_t>& special, const std::vector<int32_t>& cu,
                      const PolicyLossParams& p) {
  const size_t T = lp.size();
  std::vector<double> l(T, 0.0);
  for (size_t t = 0; t < T; ++t) {
    const double a = adv[t];
    if (p.kind == PolicyLossKind::kPapo) {
      l[t] = -a * std::exp(lp[t] - lp[t]);  // ratio pi / sg(pi): 1 in value
      continue;
    }
    const double r = std::exp(lp[t] - old[t]);
    const double pg1 = -a * r;
    const double pg2 = -a * std::min(std::max(r, 1.0 - p.eps_low), 1.0 + p.eps_high);
    double v = (special[t] && p.exempt_special) ? pg1 : std::max(pg1, pg2);
    if (p.clip_c > 1 && a < 0) v = std::min(v, -a * p.clip_c);
    l[t] = v;
  }
  const size_t S = cu.size() - 1;
  if (p.aggregation == LossAggregation::kTokenMean) {
    double num = 0, den = 0;
    for (size_t t = 0; t < T; ++t) num += mask[t] * l[t], den += mask[t];
    return num / (p.denominator > 0 ? p.denominator : den);
  }
  double total = 0;
  int live = 0;
  for (size_t s = 0; s < S; ++s) {
    double num = 0, den = 0;
    for (int32_t t = cu[s]; t < cu[s + 1]; ++t) num += mask[t] * l[t], den += mask[t];
    if (den == 0) continue;
    ++live;
    total += p.aggregation == LossAggregation::kSeqMeanTokenMean ? num / den : num;
  }
  return total / (p.denominator > 0 ? p.denominator : live);
}

}  // namespace

TEST(policy_loss_matches_reference_and_finite_differences) {
  Rng rng(97);
  int compared = 0;
  for (auto kind : {PolicyLossKind::kPpoClip, PolicyLossKind::kPapo})
    for (auto agg : {LossAggregation::kTokenMean, LossAggregation::kSeqMeanTokenSum,
                     LossAggregation::kSeqMeanTokenMean})
      for (bool exempt : {false, true})
        for (auto [S, L] : {std::pair<int64_t, int64_t>{1, 1}, {3, 17}, {7, 97}}) {
          LossCase c = random_case(rng, S, L);
          PolicyLossParams p;
          p.kind = kind;
          p.aggregation = agg;
          p.exempt_special = exempt;
          p.clip_c = 1.6f;  // low enough that the dual clip triggers on these ratios
          const int64_t T = static_cast<int64_t>(c.lp.size());
          auto dlp = poisoned(T);
          PolicyLossMetrics m;
          CHECK_OK(policy_loss(dlp.data(), &m, c.lp.data(), c.old.data(), c.adv.data(),
                               c.mask.data(), c.special.data(), c.cu.data(), S, T, p));
          std::vector<double> x(c.lp.begin(), c.lp.end());
          const double ref = reference_loss(x, c.old, c.adv, c.mask, c.special, c.cu, p);
          const std::string what = "kind " + std::to_string(int(kind)) + " agg " +
                                   std::to_string(int(agg)) + " T " + std::to_string(T);
          if (m.tokens == 0) continue;
          CHECK_MSG(std::fabs(m.loss - ref) < 1e-9 * (1 + std::fabs(ref)), what + " loss");
          for (int64_t t = 0; t < T; ++t) {
            const double h = 1e-6;
            auto xp = x, xm = x;
            xp[t] += h;
            xm[t] -= h;
            double fd;
            if (kind == PolicyLossKind::kPapo) {
              // The ratio's denominator sg(pi) is constant under differentiation, so
              // dLoss/dlp_t = -a_t w_t with w_t the aggregation weight, and the reference loss
              // is linear in a_t with slope -w_t: read w_t off a perturbed advantage.
              std::vector<float> ap = c.adv;
              ap[t] += 1.0f;
              const double slope =
                  reference_loss(x, c.old, ap, c.mask, c.special, c.cu, p) - ref;  // = -w_t
              fd = c.adv[t] * slope;
            } else {
              fd = (reference_loss(xp, c.old, c.adv, c.mask, c.special, c.cu, p) -
                    reference_loss(xm, c.old, c.adv, c.mask, c.special, c.cu, p)) /
                   (2 * h);
            }
            CHECK_MSG(std::fabs(dlp[t] - fd) < 1e-5 * (1 + std::fabs(fd)),
                      what + " dlogprob at " + std::to_string(t) + ": " + std::to_string(dlp[t]) +
                          " vs " + std::to_string(fd));
          }
          ++compared;
        }
  CHECK(compared >= 30);
}

TEST(policy_loss_papo_keeps_the_gradient_clipping_takes_from_a_tag_token) {
  // Two tokens, positive advantage: token 0 a tag whose ratio is 1.5 (> 1 + eps_high), token 1
  // an ordinary token at ratio 1.
  const float lp[2] = {std::log(0.6f), std::log(0.3f)};
  const float old[2] = {std::log(0.4f), std::log(0.3f)};
  const float adv[2] = {1.0f, 1.0f}, mask[2] = {1.0f, 1.0f};
  const uint8_t special[2] = {1, 0};
  const int32_t cu[2] = {0, 2};
  float d[2];
  PolicyLossMetrics m;
  PolicyLossParams ppo;
  CHECK_OK(policy_loss(d, &m, lp, old, adv, mask, special, cu, 1, 2, ppo));
  CHECK(d[0] == 0.0f);  // clipped: the tag learns nothing
  CHECK(std::fabs(d[1] - (-0.5f)) < 1e-6f);
  CHECK(m.special_clip_frac == 1.0 && m.clip_frac == 0.5);

  PolicyLossParams exempt = ppo;
  exempt.exempt_special = true;
  CHECK_OK(policy_loss(d, &m, lp, old, adv, mask, special, cu, 1, 2, exempt));
  CHECK(std::fabs(d[0] - (-0.5f * 1.5f)) < 1e-6f);  // -A r / T: the full gradient
  CHECK(m.special_clip_frac == 0.0);

  PolicyLossParams papo = ppo;
  papo.kind = PolicyLossKind::kPapo;
  CHECK_OK(policy_loss(d, &m, lp, old, adv, mask, special, cu, 1, 2, papo));
  CHECK(std::fabs(d[0] - (-0.5f)) < 1e-6f);  // -A / T: grad log pi, ratio 1
  CHECK(std::fabs(d[1] - (-0.5f)) < 1e-6f);
  CHECK(m.clip_frac == 0.0 && m.ratio_mean == 1.0);
}

TEST(policy_loss_rejects_bad_inputs) {
  const float x[2] = {0, 0}, nan[2] = {NAN, 0}, one[2] = {1, 1};
  float d[2];
  PolicyLossMetrics m;
  const int32_t bad_cu[2] = {0, 3}, cu[2] = {0, 2};
  CHECK(policy_loss(d, &m, x, x, one, one, nullptr, bad_cu, 1, 2, {}).code() ==
        StatusCode::kOutOfRange);
  Status st = policy_loss(d, &m, nan, x, one, one, nullptr, cu, 1, 2, {});
  CHECK(st.code() == StatusCode::kOutOfRange && st.message().find("token 0") != std::string::npos);
}

}  // namespace npr::test
