// The device policy loss against the CPU one (policy_loss.h) on random cases of odd sizes:
// both losses, every aggregation, the special-token exemption on and off, the dual clip,
// fractional mask weights, an empty sequence, an explicit denominator. dlogprob within 1e-6 of
// the CPU's scale, the loss and the metrics' sums within 1e-10 relative, counts exactly; two
// runs bit-identical; a non-finite masked logprob is the CPU's error and writes nothing.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/policy_loss.h"
#include "tests/harness.h"
#include "tests/test_policy_cases.h"
#include "tests/test_util.h"
#if defined(NPR_WITH_CUDA)
#include "kernels/policy_loss_cuda.h"
#include "tests/test_cuda_util.h"
#endif

namespace npr::test {

#if defined(NPR_WITH_CUDA)
namespace {

struct DeviceCase {
  DeviceBuffer lp, old, adv, mask, special;
};

DeviceCase upload(CudaContext& ctx, const LossCase& c) {
  DeviceCase d;
  d.lp = to_device(ctx, c.lp, DevDType::kF32);
  d.old = to_device(ctx, c.old, DevDType::kF32);
  d.adv = to_device(ctx, c.adv, DevDType::kF32);
  d.mask = to_device(ctx, c.mask, DevDType::kF32);
  const int64_t n = static_cast<int64_t>(c.special.size());
  CHECK_OK(d.special.grow(ctx.alloc(), n > 0 ? n : 1, "test special"));
  CHECK_OK(ctx.upload(d.special.get(), c.special.data(), n, "test special"));
  return d;
}

bool close(double a, double b, double rel) {
  return std::fabs(a - b) <= rel * (1.0 + std::fabs(b));
}

}  // namespace

TEST(cuda_policy_loss_matches_the_cpu_loss) {
  CudaContext& ctx = cuda_test_context();
  Rng rng(1234);
  int cases = 0;
  for (auto kind : {PolicyLossKind::kPpoClip, PolicyLossKind::kPapo})
    for (auto agg : {LossAggregation::kTokenMean, LossAggregation::kSeqMeanTokenSum,
                     LossAggregation::kSeqMeanTokenMean})
      for (bool exempt : {false, true})
        for (auto [S, L] : {std::pair<int64_t, int64_t>{1, 1}, {5, 37}, {9, 301}, {40, 513}}) {
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
          DeviceCase d = upload(ctx, c);
          std::vector<float> got[2];
          PolicyLossMetrics mg[2];
          for (int run = 0; run < 2; ++run) {
            DeviceBuffer dl = poisoned_device(ctx, T, DevDType::kF32);
            CHECK_OK(policy_loss_cuda(ctx, dl.as<float>(), &mg[run], d.lp.as<float>(),
                                      d.old.as<float>(), d.adv.as<float>(), d.mask.as<float>(),
                                      d.special.as<uint8_t>(), c.cu.data(), seqs, T, p));
            got[run] = to_host(ctx, dl, T, DevDType::kF32);
          }
          const std::string what = "kind " + std::to_string(static_cast<int>(kind)) + " agg " +
                                   std::to_string(static_cast<int>(agg)) + " exempt " +
                                   std::to_string(exempt) + " T " + std::to_string(T);
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
          const PolicyLossMetrics& m = mg[0];
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
  std::printf("    %d device policy-loss cases\n", cases);
}

TEST(cuda_policy_loss_reports_a_non_finite_token_and_writes_nothing) {
  CudaContext& ctx = cuda_test_context();
  Rng rng(9);
  LossCase c = random_case(rng, 3, 40);
  const int64_t T = static_cast<int64_t>(c.lp.size()), S = 3;
  int64_t bad = -1;
  for (int64_t t = T - 1; t >= 0; --t)
    if (c.mask[t] > 0.0f) bad = t;  // the first masked token
  CHECK(bad >= 0);
  c.lp[bad] = NAN;
  if (bad + 3 < T) c.lp[bad + 3] = INFINITY;  // a later one is not the one named
  DeviceCase d = upload(ctx, c);
  DeviceBuffer dl = poisoned_device(ctx, T, DevDType::kF32);
  PolicyLossMetrics m;
  const Status s = policy_loss_cuda(ctx, dl.as<float>(), &m, d.lp.as<float>(), d.old.as<float>(),
                                    d.adv.as<float>(), d.mask.as<float>(), d.special.as<uint8_t>(),
                                    c.cu.data(), S, T, PolicyLossParams{});
  CHECK_MSG(s.code() == StatusCode::kOutOfRange &&
                s.message().find("token " + std::to_string(bad)) != std::string::npos,
            s.to_string());
  const auto after = to_host(ctx, dl, T, DevDType::kF32);
  bool untouched = true;
  for (float v : after) untouched = untouched && std::isnan(v);
  CHECK(untouched);
  std::vector<int32_t> bad_cu = c.cu;
  bad_cu[1] = bad_cu[2] + 1;  // decreasing
  CHECK(policy_loss_cuda(ctx, dl.as<float>(), &m, d.lp.as<float>(), d.old.as<float>(),
                         d.adv.as<float>(), d.mask.as<float>(), nullptr, bad_cu.data(), S, T,
                         PolicyLossParams{})
            .code() == StatusCode::kOutOfRange);
}

#else
TEST(cuda_policy_loss_needs_a_cuda_build) {
  SKIP("built without CUDA (NPR_CUDA=off or no nvcc)");
}
#endif

}  // namespace npr::test
