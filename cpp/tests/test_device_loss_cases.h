// The device policy-loss cases the GPU test (test_cuda_policy_loss.cpp) and the emulator's
// (test_emu_loss.cpp) share, and their comparison with the CPU loss: both losses, every
// aggregation, the special-token exemption on and off, the dual clip, fractional mask weights,
// an empty sequence, a fixed denominator every third case. A device run passes with dlogprob
// within 1e-6 of the CPU's scale, the loss and the metrics' sums within 1e-10 relative, counts
// and clip fractions exactly, and a second run bit-identical.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "kernels/policy_loss.h"
#include "tests/harness.h"
#include "tests/test_policy_cases.h"
#include "tests/test_util.h"

namespace npr::test {

struct DeviceLossCase {
  LossCase c;
  int64_t sequences = 0, tokens = 0;
  PolicyLossParams p;
  std::string what;
};

// Every kind x aggregation x exemption, for each (sequences, max_len) of sizes.
inline std::vector<DeviceLossCase> device_loss_cases(
    Rng& rng, const std::vector<std::pair<int64_t, int64_t>>& sizes) {
  std::vector<DeviceLossCase> out;
  for (auto kind : {PolicyLossKind::kPpoClip, PolicyLossKind::kPapo})
    for (auto agg : {LossAggregation::kTokenMean, LossAggregation::kSeqMeanTokenSum,
                     LossAggregation::kSeqMeanTokenMean})
      for (bool exempt : {false, true})
        for (auto [S, L] : sizes) {
          DeviceLossCase d;
          d.c = random_case(rng, S, L);
          for (float& m : d.c.mask)
            if (m > 0.0f && rng.below(7) == 0) m = 0.5f;      // fractional weights
          const int32_t repeated = d.c.cu[1 + rng.below(S)];  // one empty sequence somewhere
          d.c.cu.push_back(repeated);
          std::sort(d.c.cu.begin(), d.c.cu.end());
          d.sequences = static_cast<int64_t>(d.c.cu.size()) - 1;
          d.tokens = static_cast<int64_t>(d.c.lp.size());
          d.p.kind = kind;
          d.p.aggregation = agg;
          d.p.exempt_special = exempt;
          d.p.clip_c = 1.6f;
          d.p.denominator = (out.size() % 3 == 2) ? 17.0 : 0.0;
          d.what = "kind " + std::to_string(static_cast<int>(kind)) + " agg " +
                   std::to_string(static_cast<int>(agg)) + " exempt " + std::to_string(exempt) +
                   " T " + std::to_string(d.tokens);
          out.push_back(std::move(d));
        }
  return out;
}

inline bool loss_close(double a, double b, double rel) {
  return std::fabs(a - b) <= rel * (1.0 + std::fabs(b));
}

// Two device runs of d (dlogprob got[0], got[1]; metrics m[0], m[1]) against the CPU loss.
inline void check_device_loss(const DeviceLossCase& d, const std::vector<float> (&got)[2],
                              const PolicyLossMetrics (&m)[2]) {
  const LossCase& c = d.c;
  const int64_t T = d.tokens;
  std::vector<float> want(static_cast<size_t>(T));
  PolicyLossMetrics mc;
  CHECK_OK(policy_loss(want.data(), &mc, c.lp.data(), c.old.data(), c.adv.data(), c.mask.data(),
                       c.special.data(), c.cu.data(), d.sequences, T, d.p));
  double scale = 1e-12, err = 0.0;
  for (int64_t t = 0; t < T; ++t) {
    scale = std::max(scale, std::fabs(static_cast<double>(want[t])));
    const double e = std::fabs(static_cast<double>(got[0][t]) - want[t]);
    err = std::isnan(e) ? INFINITY : std::max(err, e);
  }
  CHECK_MSG(err <= 1e-6 * scale, d.what + ": dlogprob " + std::to_string(err));
  CHECK_MSG(std::memcmp(got[0].data(), got[1].data(), 4 * T) == 0 &&
                std::memcmp(&m[0].loss, &m[1].loss, sizeof(double)) == 0,
            d.what + ": two runs differ");
  const PolicyLossMetrics& g = m[0];
  CHECK_MSG(loss_close(g.loss, mc.loss, 1e-10),
            d.what + ": loss " + std::to_string(g.loss) + " vs " + std::to_string(mc.loss));
  CHECK_MSG(g.tokens == mc.tokens && g.special_tokens == mc.special_tokens, d.what + ": counts");
  CHECK_MSG(g.clip_frac == mc.clip_frac && g.clip_frac_lower == mc.clip_frac_lower &&
                g.special_clip_frac == mc.special_clip_frac,
            d.what + ": clip fractions");
  CHECK_MSG(loss_close(g.ratio_mean, mc.ratio_mean, 1e-10) &&
                loss_close(g.ratio_min, mc.ratio_min, 1e-12) &&
                loss_close(g.ratio_max, mc.ratio_max, 1e-12) &&
                loss_close(g.approx_kl, mc.approx_kl, 1e-10),
            d.what + ": ratio / kl metrics");
}

// A case whose first masked token's logprob is NaN (and a later one +inf): both implementations
// must name the first; bad_token gets its index.
inline LossCase non_finite_case(Rng& rng, int64_t* bad_token) {
  LossCase c = random_case(rng, 3, 40);
  const int64_t T = static_cast<int64_t>(c.lp.size());
  int64_t bad = -1;
  for (int64_t t = T - 1; t >= 0; --t)
    if (c.mask[t] > 0.0f) bad = t;  // the first masked token
  CHECK(bad >= 0);
  if (bad < 0) bad = 0;
  c.lp[bad] = NAN;
  if (bad + 3 < T) c.lp[bad + 3] = INFINITY;  // a later one is not the one named
  *bad_token = bad;
  return c;
}

}  // namespace npr::test
