// The trainer's device ops after the forward, run by the CPU emulator (cpp/tests/emu) against
// their CPU twins, as test_cuda_policy_loss.cpp checks them on a GPU: the policy loss (PPO clip
// and PAPO, every aggregation, the special-token exemption on and off, the dual clip, fractional
// mask weights, an empty sequence, an explicit denominator; dlogprob within 1e-6 of the CPU's
// scale, loss and sums within 1e-10 relative, counts exactly, two runs bit-identical; a
// non-finite masked logprob named as on the CPU), and token log-probabilities from device logits
// (repeated rows, vocabularies of 1 to 3000 tokens).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/policy_loss.h"
#include "sampler/token_logprob.h"
#include "tests/harness.h"
#include "tests/test_policy_cases.h"
#include "tests/test_util.h"
#if defined(NPR_HAVE_EMU)
#include "tests/emu/emu_loss.h"
#endif

namespace npr::test {

#if defined(NPR_HAVE_EMU)
namespace {

emu::LossParams plain(const PolicyLossParams& p) {
  return emu::LossParams{static_cast<int>(p.kind),
                         static_cast<int>(p.aggregation),
                         p.eps_low,
                         p.eps_high,
                         p.clip_c,
                         p.exempt_special,
                         p.denominator,
                         p.log_ratio_limit};
}

bool close(double a, double b, double rel) {
  return std::fabs(a - b) <= rel * (1.0 + std::fabs(b));
}

}  // namespace
#endif

TEST(emu_policy_loss_matches_the_cpu_loss) {
#if !defined(NPR_HAVE_EMU)
  SKIP("the kernel emulator is not built (no CUDA toolkit headers, or NPR_EMU=off)");
#else
  Rng rng(4321);
  int cases = 0;
  for (auto kind : {PolicyLossKind::kPpoClip, PolicyLossKind::kPapo})
    for (auto agg : {LossAggregation::kTokenMean, LossAggregation::kSeqMeanTokenSum,
                     LossAggregation::kSeqMeanTokenMean})
      for (bool exempt : {false, true})
        for (auto [S, L] : {std::pair<int64_t, int64_t>{1, 1}, {5, 37}, {9, 301}}) {
          LossCase c = random_case(rng, S, L);
          for (float& m : c.mask)
            if (m > 0.0f && rng.below(7) == 0) m = 0.5f;    // fractional weights
          const int32_t repeated = c.cu[1 + rng.below(S)];  // one empty sequence somewhere
          c.cu.push_back(repeated);
          std::sort(c.cu.begin(), c.cu.end());
          const int64_t seqs = static_cast<int64_t>(c.cu.size()) - 1;
          const int64_t T = static_cast<int64_t>(c.lp.size());
          PolicyLossParams p;
          p.kind = kind;
          p.aggregation = agg;
          p.exempt_special = exempt;
          p.clip_c = 1.6f;
          p.denominator = (cases % 3 == 2) ? 17.0 : 0.0;
          std::vector<float> want(T);
          PolicyLossMetrics mc;
          CHECK_OK(policy_loss(want.data(), &mc, c.lp.data(), c.old.data(), c.adv.data(),
                               c.mask.data(), c.special.data(), c.cu.data(), seqs, T, p));
          std::vector<float> got[2] = {poisoned(T), poisoned(T)};
          emu::LossMetrics mg[2];
          const std::string what = "kind " + std::to_string(static_cast<int>(kind)) + " agg " +
                                   std::to_string(static_cast<int>(agg)) + " exempt " +
                                   std::to_string(exempt) + " T " + std::to_string(T);
          for (int run = 0; run < 2; ++run) {
            const std::string err = emu::policy_loss_on_device(
                got[run].data(), &mg[run], c.lp.data(), c.old.data(), c.adv.data(), c.mask.data(),
                c.special.data(), c.cu.data(), seqs, T, plain(p));
            CHECK_MSG(err.empty(), what + ": " + err);
          }
          double scale = 1e-12, err = 0.0;
          for (int64_t t = 0; t < T; ++t) {
            scale = std::max(scale, std::fabs(static_cast<double>(want[t])));
            const double e = std::fabs(static_cast<double>(got[0][t]) - want[t]);
            err = std::isnan(e) ? INFINITY : std::max(err, e);
          }
          CHECK_MSG(err <= 1e-6 * scale, what + ": dlogprob " + std::to_string(err));
          CHECK_MSG(std::memcmp(got[0].data(), got[1].data(), 4 * T) == 0 &&
                        std::memcmp(&mg[0].loss, &mg[1].loss, sizeof(double)) == 0,
                    what + ": two runs differ");
          const emu::LossMetrics& m = mg[0];
          CHECK_MSG(close(m.loss, mc.loss, 1e-10),
                    what + ": loss " + std::to_string(m.loss) + " vs " + std::to_string(mc.loss));
          CHECK_MSG(m.tokens == mc.tokens && m.special_tokens == mc.special_tokens,
                    what + ": counts");
          CHECK_MSG(m.clip_frac == mc.clip_frac && m.clip_frac_lower == mc.clip_frac_lower &&
                        m.special_clip_frac == mc.special_clip_frac,
                    what + ": clip fractions");
          CHECK_MSG(close(m.ratio_mean, mc.ratio_mean, 1e-10) &&
                        close(m.ratio_min, mc.ratio_min, 1e-12) &&
                        close(m.ratio_max, mc.ratio_max, 1e-12) &&
                        close(m.approx_kl, mc.approx_kl, 1e-10),
                    what + ": ratio / kl metrics");
          ++cases;
        }
  std::printf("    %d policy-loss cases compared with the CPU loss\n", cases);

  // A non-finite masked logprob: the CPU's error, naming the first such token.
  LossCase c = random_case(rng, 3, 40);
  const int64_t T = static_cast<int64_t>(c.lp.size()), S = 3;
  int64_t bad = -1;
  for (int64_t t = T - 1; t >= 0; --t)
    if (c.mask[t] > 0.0f) bad = t;
  CHECK(bad >= 0);
  c.lp[bad] = NAN;
  if (bad + 3 < T) c.lp[bad + 3] = INFINITY;  // a later one is not the one named
  std::vector<float> dl = poisoned(T);
  emu::LossMetrics m;
  const std::string err = emu::policy_loss_on_device(dl.data(), &m, c.lp.data(), c.old.data(),
                                                     c.adv.data(), c.mask.data(), c.special.data(),
                                                     c.cu.data(), S, T, plain(PolicyLossParams{}));
  CHECK_MSG(err.rfind("OUT_OF_RANGE:", 0) == 0 &&
                err.find("token " + std::to_string(bad)) != std::string::npos,
            "a non-finite logprob gave \"" + err + "\"");
#endif
}

TEST(emu_token_logprobs_match_the_cpu) {
#if !defined(NPR_HAVE_EMU)
  SKIP("the kernel emulator is not built (no CUDA toolkit headers, or NPR_EMU=off)");
#else
  Rng rng(17);
  for (int64_t vocab : {1, 37, 3000}) {
    const int64_t rows = 4;
    std::vector<float> logits = random_vector(rng, rows * vocab);
    for (float& x : logits) x *= 5.0f;
    if (vocab > 8) logits[vocab + 2] = -INFINITY;  // a masked token
    std::vector<TokenQuery> q;
    std::vector<int32_t> flat;
    for (int i = 0; i < 9; ++i) {  // rows repeat
      q.push_back(TokenQuery{static_cast<int32_t>(rng.below(rows)),
                             static_cast<int32_t>(rng.below(vocab))});
      flat.push_back(q.back().row);
      flat.push_back(q.back().token);
    }
    const int64_t n = static_cast<int64_t>(q.size());
    std::vector<float> want(n), got = poisoned(n);
    CHECK_OK(token_logprobs(CpuContext{}, want.data(), logits.data(), rows, vocab, q.data(), n));
    const std::string err =
        emu::token_logprobs_on_device(got.data(), logits.data(), rows, vocab, flat.data(), n);
    CHECK_MSG(err.empty(), "vocab " + std::to_string(vocab) + ": " + err);
    for (int64_t i = 0; i < n; ++i)
      CHECK_MSG(want[i] == got[i] || std::fabs(want[i] - got[i]) < 1e-5f,
                "vocab " + std::to_string(vocab) + " query " + std::to_string(i) + ": " +
                    std::to_string(got[i]) + " vs " + std::to_string(want[i]));
  }
#endif
}

}  // namespace npr::test
