// The trainer's device ops after the forward, run by the CPU emulator (cpp/tests/emu) against
// their CPU twins, as test_cuda_policy_loss.cpp checks them on a GPU: the policy loss (PPO clip
// and PAPO, every aggregation, the special-token exemption on and off, the dual clip, fractional
// mask weights, an empty sequence, an explicit denominator; dlogprob within 1e-6 of the CPU's
// scale, loss and sums within 1e-10 relative, counts exactly, two runs bit-identical; a
// non-finite masked logprob named as on the CPU), and token log-probabilities from device logits
// (repeated rows, vocabularies of 1 to 6,151 tokens: several of the kernels' chunks), refusing NaN,
// +inf and all-masked rows across chunks with the CPU's words.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "kernels/policy_loss.h"
#include "sampler/token_logprob.h"
#include "tests/harness.h"
#include "tests/test_device_loss_cases.h"
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

PolicyLossMetrics metrics_of(const emu::LossMetrics& m) {
  PolicyLossMetrics out;
  out.loss = m.loss;
  out.tokens = m.tokens;
  out.special_tokens = m.special_tokens;
  out.clip_frac = m.clip_frac;
  out.clip_frac_lower = m.clip_frac_lower;
  out.special_clip_frac = m.special_clip_frac;
  out.ratio_mean = m.ratio_mean;
  out.ratio_min = m.ratio_min;
  out.ratio_max = m.ratio_max;
  out.approx_kl = m.approx_kl;
  return out;
}

}  // namespace
#endif

TEST(emu_policy_loss_matches_the_cpu_loss) {
#if !defined(NPR_HAVE_EMU)
  SKIP("the kernel emulator is not built (no CUDA toolkit headers, or NPR_EMU=off)");
#else
  Rng rng(4321);
  const auto cases = device_loss_cases(rng, {{1, 1}, {5, 37}, {9, 301}});
  for (const DeviceLossCase& d : cases) {
    const LossCase& c = d.c;
    std::vector<float> got[2] = {poisoned(d.tokens), poisoned(d.tokens)};
    PolicyLossMetrics mg[2];
    for (int run = 0; run < 2; ++run) {
      emu::LossMetrics m{};
      const std::string err = emu::policy_loss_on_device(
          got[run].data(), &m, c.lp.data(), c.old.data(), c.adv.data(), c.mask.data(),
          c.special.data(), c.cu.data(), d.sequences, d.tokens, plain(d.p));
      CHECK_MSG(err.empty(), d.what + ": " + err);
      mg[run] = metrics_of(m);
    }
    check_device_loss(d, got, mg);
  }
  std::printf("    %d policy-loss cases compared with the CPU loss\n",
              static_cast<int>(cases.size()));

  // A non-finite masked logprob: the CPU's error, naming the first such token.
  int64_t bad = -1;
  const LossCase c = non_finite_case(rng, &bad);
  const int64_t T = static_cast<int64_t>(c.lp.size());
  std::vector<float> dl = poisoned(T);
  emu::LossMetrics m{};
  const std::string err = emu::policy_loss_on_device(dl.data(), &m, c.lp.data(), c.old.data(),
                                                     c.adv.data(), c.mask.data(), c.special.data(),
                                                     c.cu.data(), 3, T, plain(PolicyLossParams{}));
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
  // 6,151 tokens: four chunks of the kernels' 2,048, the last one short.
  for (int64_t vocab : {1, 37, 3000, 6151}) {
    const int64_t rows = 4;
    std::vector<float> logits = random_vector(rng, rows * vocab);
    for (float& x : logits) x *= 5.0f;
    if (vocab > 8) logits[vocab + 2] = -INFINITY;        // a masked token
    if (vocab > 6000) logits[3 * vocab + 6150] = 60.0f;  // the row's max, in its last chunk
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

TEST(emu_token_logprobs_refuse_rows_across_chunks_like_the_cpu) {
#if !defined(NPR_HAVE_EMU)
  SKIP("the kernel emulator is not built (no CUDA toolkit headers, or NPR_EMU=off)");
#else
  const int64_t vocab = 6151, rows = 4;
  Rng rng(18);
  std::vector<float> logits = random_vector(rng, rows * vocab);
  logits[1 * vocab + 5000] = INFINITY;  // row 1: +inf in chunk 2, then NaN earlier in chunk 1
  logits[1 * vocab + 2500] = NAN;
  logits[2 * vocab + 6100] = INFINITY;  // row 2: +inf in the last chunk only
  for (int64_t t = 0; t < vocab; ++t) logits[3 * vocab + t] = -INFINITY;  // row 3: all masked
  const struct {
    int32_t row;
    const char* says;
  } cases[] = {
      {1, "NaN logit at token 2500"}, {2, "+inf logit at token 6100"}, {3, "has no finite logit"}};
  for (const auto& c : cases) {
    const int32_t flat[4] = {0, 7, c.row, 3};
    const TokenQuery q[2] = {{0, 7}, {c.row, 3}};
    float want[2] = {7.0f, 7.0f};
    std::vector<float> got = {7.0f, 7.0f};
    const Status sc = token_logprobs(CpuContext{}, want, logits.data(), rows, vocab, q, 2);
    const std::string err =
        emu::token_logprobs_on_device(got.data(), logits.data(), rows, vocab, flat, 2);
    CHECK_MSG(!sc.is_ok() && sc.message().find(c.says) != std::string::npos, sc.to_string());
    CHECK_MSG(err.find(c.says) != std::string::npos && err.find("query 1") != std::string::npos,
              "row " + std::to_string(c.row) + ": " + err);
    CHECK(got[0] == 7.0f && got[1] == 7.0f);  // nothing written
  }
#endif
}

}  // namespace npr::test
