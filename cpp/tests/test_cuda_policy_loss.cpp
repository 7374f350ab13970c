// The device policy loss against the CPU one (policy_loss.h) on random cases of odd sizes:
// both losses, every aggregation, the special-token exemption on and off, the dual clip,
// fractional mask weights, an empty sequence, an explicit denominator. dlogprob within 1e-6 of
// the CPU's scale, the loss and the metrics' sums within 1e-10 relative, counts exactly; two
// runs bit-identical; a non-finite masked logprob is the CPU's error and writes nothing.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "kernels/policy_loss.h"
#include "tests/harness.h"
#include "tests/test_device_loss_cases.h"
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

}  // namespace

TEST(cuda_policy_loss_matches_the_cpu_loss) {
  CudaContext& ctx = cuda_test_context();
  Rng rng(1234);
  const auto cases = device_loss_cases(rng, {{1, 1}, {5, 37}, {9, 301}, {40, 513}});
  for (const DeviceLossCase& d : cases) {
    const int64_t T = d.tokens;
    DeviceCase dc = upload(ctx, d.c);
    std::vector<float> got[2];
    PolicyLossMetrics mg[2];
    for (int run = 0; run < 2; ++run) {
      DeviceBuffer dl = poisoned_device(ctx, T, DevDType::kF32);
      CHECK_OK(policy_loss_cuda(ctx, dl.as<float>(), &mg[run], dc.lp.as<float>(),
                                dc.old.as<float>(), dc.adv.as<float>(), dc.mask.as<float>(),
                                dc.special.as<uint8_t>(), d.c.cu.data(), d.sequences, T, d.p));
      got[run] = to_host(ctx, dl, T, DevDType::kF32);
    }
    check_device_loss(d, got, mg);
  }
  std::printf("    %d device policy-loss cases\n", static_cast<int>(cases.size()));
}

TEST(cuda_policy_loss_reports_a_non_finite_token_and_writes_nothing) {
  CudaContext& ctx = cuda_test_context();
  Rng rng(9);
  int64_t bad = -1;
  LossCase c = non_finite_case(rng, &bad);
  const int64_t T = static_cast<int64_t>(c.lp.size()), S = 3;
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
