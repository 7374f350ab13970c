// What the engine reads off a CUDA decode step's logits in place: token_logprobs_cuda against the
// CPU token_logprobs (repeated rows, a vocabulary the size of Qwen3's, masked tokens, the
// refusals with nothing written), and the device sampler reading rows through a logit-row map
// (a permutation with repeats) drawing what the CPU sampler draws from the same rows.
#include <cmath>
#include <string>
#include <vector>

#include "sampler/sampler.h"
#include "sampler/token_logprob.h"
#include "tests/harness.h"
#include "tests/test_util.h"
#if defined(NPR_WITH_CUDA)
#include "sampler/sampler_cuda.h"
#include "sampler/token_logprob_cuda.h"
#include "tests/test_cuda_util.h"
#endif

namespace npr::test {

#if defined(NPR_WITH_CUDA)

TEST(cuda_token_logprobs_match_the_cpu) {
  CudaContext& ctx = cuda_test_context();
  Rng rng(21);
  for (int64_t vocab : {1, 7, 513, 151936}) {
    const int64_t rows = vocab > 10000 ? 3 : 11;
    auto logits = random_vector(rng, rows * vocab);
    for (float& x : logits) x *= 8.0f;
    if (vocab > 1) logits[1] = -INFINITY;
    DeviceBuffer d = to_device(ctx, logits, DevDType::kF32);
    std::vector<TokenQuery> q;
    for (int i = 0; i < 23; ++i)
      q.push_back(TokenQuery{static_cast<int32_t>(rng.below(rows)),
                             static_cast<int32_t>(rng.below(vocab))});
    if (vocab > 1) q.push_back(TokenQuery{0, 1});  // the masked token
    const int64_t n = static_cast<int64_t>(q.size());
    std::vector<float> want(q.size(), NAN), got(q.size(), NAN);
    CHECK_OK(token_logprobs(CpuContext{}, want.data(), logits.data(), rows, vocab, q.data(), n));
    CHECK_OK(token_logprobs_cuda(ctx, got.data(), d.as<float>(), rows, vocab, q.data(), n));
    for (int64_t i = 0; i < n; ++i) {
      if (std::isinf(want[i])) {
        CHECK_MSG(got[i] == want[i], "a masked token: " + std::to_string(got[i]));
        continue;
      }
      CHECK_MSG(std::fabs(got[i] - want[i]) <= 2e-6f * std::max(1.0f, std::fabs(want[i])),
                "vocab " + std::to_string(vocab) + " query " + std::to_string(i) + ": " +
                    std::to_string(got[i]) + " vs " + std::to_string(want[i]));
    }
  }
}

TEST(cuda_token_logprobs_refuse_like_the_cpu_and_write_nothing) {
  CudaContext& ctx = cuda_test_context();
  const int64_t vocab = 6;
  std::vector<float> logits = {
      0, 1, 2,        3, 4, 5, 0,         1,         NAN,       3,         4,         5,
      0, 1, INFINITY, 3, 4, 5, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
  DeviceBuffer d = to_device(ctx, logits, DevDType::kF32);
  const TokenQuery bad[] = {{4, 0}, {0, 6}, {1, 0}, {2, 0}, {3, 0}};
  for (const TokenQuery& b : bad) {
    const TokenQuery q[2] = {{0, 5}, b};
    float want[2] = {7.0f, 7.0f}, got[2] = {7.0f, 7.0f};
    const Status sc = token_logprobs(CpuContext{}, want, logits.data(), 4, vocab, q, 2);
    const Status sg = token_logprobs_cuda(ctx, got, d.as<float>(), 4, vocab, q, 2);
    CHECK_MSG(!sg.is_ok() && sg.code() == sc.code(),
              "cpu: " + sc.to_string() + " / cuda: " + sg.to_string());
    CHECK_MSG(sg.message().find("query 1") != std::string::npos, sg.to_string());
    CHECK(got[0] == 7.0f && got[1] == 7.0f);
  }
  // The CUDA error text names the same offending token as the CPU's.
  const TokenQuery q{1, 0};
  float out = 0.0f;
  const Status s = token_logprobs_cuda(ctx, &out, d.as<float>(), 4, vocab, &q, 1);
  CHECK_MSG(s.message().find("NaN logit at token 2") != std::string::npos, s.to_string());
}

TEST(cuda_sampler_reads_rows_through_a_logit_row_map) {
  CudaContext& ctx = cuda_test_context();
  Rng rng(22);
  const int64_t vocab = 4099, logit_rows = 5;
  auto logits = random_vector(rng, logit_rows * vocab);
  for (float& x : logits) x *= 5.0f;
  DeviceBuffer d = to_device(ctx, logits, DevDType::kF32);
  const std::vector<int32_t> map = {3, 0, 3, 4, 1, 1, 2};  // a permutation with repeats
  const int64_t R = static_cast<int64_t>(map.size());
  std::vector<int32_t> pen = {5, 9, 5};
  std::vector<SampleRow> rows(map.size());
  for (int64_t r = 0; r < R; ++r)
    rows[r] = SampleRow{logits.data() + map[r] * vocab, 7, r, 40 + r, pen.data(), 3, 1.2f};
  for (const SamplingParams& p :
       {SamplingParams{0.0f, 0, 1.0f, 0.0f, 1}, SamplingParams{0.8f, 40, 0.9f, 0.01f, 2}}) {
    std::vector<SampleResult> want(map.size()), got(map.size());
    CHECK_OK(sample_rows(CpuContext{}, want.data(), rows.data(), R, vocab, p));
    CHECK_OK(sample_rows_cuda(ctx, got.data(), d.as<float>(), rows.data(), R, vocab, p, map.data(),
                              logit_rows));
    for (int64_t r = 0; r < R; ++r) {
      CHECK_MSG(got[r].token == want[r].token, "row " + std::to_string(r) + ": token " +
                                                   std::to_string(got[r].token) + " vs " +
                                                   std::to_string(want[r].token));
      CHECK(std::fabs(got[r].logprob - want[r].logprob) < 1e-5f);
    }
  }
  const int32_t out_of_range[] = {0, 5};
  std::vector<SampleResult> res(2);
  CHECK(sample_rows_cuda(ctx, res.data(), d.as<float>(), rows.data(), 2, vocab, SamplingParams{},
                         out_of_range, logit_rows)
            .code() == StatusCode::kOutOfRange);
}

#else
TEST(cuda_step_results_need_a_cuda_build) {
  SKIP("built without CUDA (NPR_CUDA=off or no nvcc)");
}
#endif

}  // namespace npr::test
