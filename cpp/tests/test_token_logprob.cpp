// token_logprobs (the log-probability of given tokens under raw log-softmax) against a long
// double oracle, with and without a thread pool, several queries per row, agreement with the
// sampler's own logprob for the token it draws, and the refusals (nothing written).
#include <cmath>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "sampler/sampler.h"
#include "sampler/token_logprob.h"
#include "tests/harness.h"
#include "tests/test_util.h"

namespace npr::test {

namespace {

double oracle(const std::vector<float>& logits, int64_t vocab, int32_t row, int32_t token) {
  const float* x = logits.data() + static_cast<int64_t>(row) * vocab;
  long double m = x[0], s = 0.0L;
  for (int64_t t = 1; t < vocab; ++t) m = std::max(m, static_cast<long double>(x[t]));
  for (int64_t t = 0; t < vocab; ++t) s += std::exp(static_cast<long double>(x[t]) - m);
  return static_cast<double>(static_cast<long double>(x[token]) - m - std::log(s));
}

}  // namespace

TEST(token_logprobs_match_the_oracle_with_repeated_rows) {
  Rng rng(11);
  ThreadPool pool(3);
  for (int64_t vocab : {1, 7, 513, 151936}) {
    const int64_t rows = vocab > 10000 ? 3 : 9;
    auto logits = random_vector(rng, rows * vocab);
    for (float& x : logits) x *= 8.0f;
    logits[0] = -INFINITY;  // a masked token in row 0 (row 0 still has finite logits if vocab>1)
    if (vocab == 1) logits[0] = 2.5f;
    std::vector<TokenQuery> q;
    for (int i = 0; i < 17; ++i)
      q.push_back(TokenQuery{static_cast<int32_t>(rng.below(rows)),
                             static_cast<int32_t>(rng.below(vocab))});
    q.push_back(TokenQuery{q[0].row, q[0].token});  // the same query twice
    for (const CpuContext& ctx : {CpuContext{}, CpuContext{&pool, detect_simd()}}) {
      std::vector<float> out(q.size(), NAN);
      CHECK_OK(token_logprobs(ctx, out.data(), logits.data(), rows, vocab, q.data(),
                              static_cast<int64_t>(q.size())));
      for (size_t i = 0; i < q.size(); ++i) {
        const double want = oracle(logits, vocab, q[i].row, q[i].token);
        if (std::isinf(want)) {
          CHECK_MSG(std::isinf(out[i]) && out[i] < 0, "a masked token's logprob is -inf");
          continue;
        }
        CHECK_MSG(std::fabs(out[i] - want) <= 1e-6 * std::max(1.0, std::fabs(want)),
                  "vocab " + std::to_string(vocab) + " query " + std::to_string(i) + ": " +
                      std::to_string(out[i]) + " vs " + std::to_string(want));
      }
      CHECK(out.back() == out[0]);
    }
  }
}

TEST(token_logprobs_agree_with_the_samplers_logprob) {
  Rng rng(12);
  const int64_t vocab = 3001;
  auto logits = random_vector(rng, vocab);
  for (float& x : logits) x *= 6.0f;
  SampleRow row{logits.data(), 1, 2, 3, nullptr, 0, 1.0f};
  SampleResult r;
  CHECK_OK(sample_rows(CpuContext{}, &r, &row, 1, vocab, SamplingParams{0.9f, 0, 1.0f, 0.0f, 5}));
  const TokenQuery q{0, r.token};
  float lp = NAN;
  CHECK_OK(token_logprobs(CpuContext{}, &lp, logits.data(), 1, vocab, &q, 1));
  CHECK(lp == r.logprob);
}

TEST(token_logprobs_refuse_bad_queries_and_rows_and_write_nothing) {
  const int64_t vocab = 6;
  std::vector<float> logits = {
      0, 1, 2,        3, 4, 5, 0,         1,         NAN,       3,         4,         5,
      0, 1, INFINITY, 3, 4, 5, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
  struct Case {
    TokenQuery q;
    StatusCode code;
    const char* says;
  };
  const Case cases[] = {
      {{4, 0}, StatusCode::kOutOfRange, "the step has 4 logits rows"},
      {{-1, 0}, StatusCode::kOutOfRange, "the step has 4 logits rows"},
      {{0, 6}, StatusCode::kOutOfRange, "outside the vocabulary"},
      {{1, 0}, StatusCode::kInvalidArgument, "NaN logit at token 2"},
      {{2, 0}, StatusCode::kInvalidArgument, "+inf logit at token 2"},
      {{3, 0}, StatusCode::kInvalidArgument, "no finite logit"},
  };
  for (const Case& c : cases) {
    const TokenQuery q[2] = {{0, 5}, c.q};
    float out[2] = {7.0f, 7.0f};
    const Status s = token_logprobs(CpuContext{}, out, logits.data(), 4, vocab, q, 2);
    CHECK_MSG(s.code() == c.code && s.message().find(c.says) != std::string::npos &&
                  s.message().find("query 1") != std::string::npos,
              "got: " + s.to_string());
    CHECK(out[0] == 7.0f && out[1] == 7.0f);
  }
}

}  // namespace npr::test
