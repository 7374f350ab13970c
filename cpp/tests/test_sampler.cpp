// The sampler: truncations respected, frequencies follow the distribution, the counter RNG
// makes draws independent of batch composition and threads, branches draw their own tokens,
// the step-local repetition penalty, and the two logprobs.
#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "sampler/counter_rng.h"
#include "sampler/sampler.h"
#include "tests/harness.h"
#include "tests/test_util.h"

namespace npr::test {

namespace {
std::vector<float> random_logits(Rng& rng, int64_t vocab, float scale) {
  std::vector<float> l(static_cast<size_t>(vocab));
  for (auto& x : l) x = scale * rng.uniform();
  return l;
}
std::vector<double> softmax(const std::vector<float>& z, float temperature) {
  double m = -INFINITY, s = 0.0;
  for (float x : z) m = std::max(m, static_cast<double>(x) / temperature);
  std::vector<double> p(z.size());
  for (size_t i = 0; i < z.size(); ++i) s += (p[i] = std::exp(z[i] / temperature - m));
  for (double& x : p) x /= s;
  return p;
}
}  // namespace

TEST(sampler_respects_top_k_top_p_and_min_p) {
  Rng rng(61);
  const int64_t V = 3001;
  auto logits = random_logits(rng, V, 8.0f);
  std::vector<int32_t> order(V);
  for (int32_t i = 0; i < V; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](int a, int b) { return logits[a] > logits[b]; });
  auto p = softmax(logits, 1.0f);
  // The top-p set by hand: the smallest head of the sorted order reaching 0.8.
  std::vector<uint8_t> in_top_p(V, 0), in_top_k(V, 0);
  double acc = 0.0;
  for (int32_t t : order) {
    in_top_p[t] = 1;
    if ((acc += p[t]) >= 0.8) break;
  }
  for (int i = 0; i < 7; ++i) in_top_k[order[i]] = 1;
  for (int trial = 0; trial < 3; ++trial) {
    SamplingParams sp;
    sp.seed = 5;
    if (trial == 0) sp.top_k = 7;
    if (trial == 1) sp.top_p = 0.8f;
    if (trial == 2) sp.min_p = 0.2f;
    std::vector<SampleRow> rows(2000);
    for (int64_t i = 0; i < 2000; ++i) rows[i] = SampleRow{logits.data(), 0, 0, i};
    std::vector<SampleResult> out(rows.size());
    CHECK_OK(sample_rows(CpuContext{}, out.data(), rows.data(), static_cast<int64_t>(rows.size()),
                         V, sp));
    const double pmax = p[order[0]];
    for (const SampleResult& r : out) {
      if (trial == 0) CHECK(in_top_k[r.token]);
      if (trial == 1) CHECK(in_top_p[r.token]);
      if (trial == 2) CHECK(p[r.token] >= 0.2 * pmax);
      CHECK(std::fabs(r.logprob - std::log(p[r.token])) < 1e-4);  // unmodified distribution
      CHECK(r.logprob_sampling >= r.logprob - 1e-6);              // truncation only raises it
    }
  }
}

TEST(sampler_frequencies_follow_the_distribution) {
  Rng rng(62);
  const int64_t V = 50;
  auto logits = random_logits(rng, V, 3.0f);
  for (float temperature : {1.0f, 0.7f}) {
    SamplingParams sp;
    sp.temperature = temperature;
    sp.seed = 99;
    const int64_t n = 40000;
    std::vector<SampleRow> rows(n);
    for (int64_t i = 0; i < n; ++i) rows[i] = SampleRow{logits.data(), 3, 1, i};
    std::vector<SampleResult> out(n);
    ThreadPool pool(2);
    CHECK_OK(sample_rows(CpuContext{&pool, detect_simd()}, out.data(), rows.data(), n, V, sp));
    std::vector<double> freq(V, 0.0);
    for (const SampleResult& r : out) freq[r.token] += 1.0 / n;
    auto p = softmax(logits, temperature);
    double dot = 0, a = 0, b = 0;
    for (int64_t t = 0; t < V; ++t) dot += freq[t] * p[t], a += freq[t] * freq[t], b += p[t] * p[t];
    const double cosine = dot / std::sqrt(a * b);
    CHECK_MSG(cosine > 0.99, "cosine " + std::to_string(cosine));
  }
}

TEST(sampler_draws_do_not_depend_on_the_batch_and_branches_draw_their_own) {
  Rng rng(63);
  const int64_t V = 997;
  std::vector<std::vector<float>> logits;
  for (int i = 0; i < 7; ++i) logits.push_back(random_logits(rng, V, 2.0f));
  SamplingParams sp;
  sp.seed = 1234;
  sp.top_p = 0.95f;
  std::vector<SampleRow> rows;
  for (int i = 0; i < 7; ++i) rows.push_back(SampleRow{logits[i].data(), 10 + i, i % 3, 40 + i});
  std::vector<SampleResult> batch(7);
  ThreadPool pool(3);
  CHECK_OK(sample_rows(CpuContext{&pool, detect_simd()}, batch.data(), rows.data(), 7, V, sp));
  for (int i = 0; i < 7; ++i) {
    SampleResult alone;
    CHECK_OK(sample_rows(CpuContext{}, &alone, &rows[i], 1, V, sp));
    CHECK(alone.token == batch[i].token && alone.logprob == batch[i].logprob);
  }
  // After a fork every branch has the same context (same logits, same token index) but its own
  // key: over many forks the branches' first tokens must not all coincide.
  auto flat = random_logits(rng, V, 0.1f);
  int same = 0;
  for (int64_t fork = 0; fork < 200; ++fork) {
    std::vector<SampleRow> kids;
    for (int b = 0; b < 4; ++b) kids.push_back(SampleRow{flat.data(), 5, b, fork});
    std::vector<SampleResult> r(4);
    CHECK_OK(sample_rows(CpuContext{}, r.data(), kids.data(), 4, V, sp));
    same +=
        (r[0].token == r[1].token && r[1].token == r[2].token && r[2].token == r[3].token) ? 1 : 0;
  }
  CHECK_MSG(same < 5,
            "branches drew the same first token in " + std::to_string(same) + " of 200 forks");
  CHECK(counter_uniform(1, 2, 3, 4) == counter_uniform(1, 2, 3, 4));
  CHECK(counter_uniform(1, 2, 3, 4) != counter_uniform(1, 2, 4, 4));
}

TEST(sampler_repetition_penalty_and_greedy) {
  std::vector<float> logits = {2.0f, 1.9f, -1.0f, 0.5f};
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  SampleRow row{logits.data(), 0, 0, 0};
  SampleResult r;
  CHECK_OK(sample_rows(CpuContext{}, &r, &row, 1, 4, greedy));
  CHECK(r.token == 0 && r.logprob_sampling == 0.0f);
  const int32_t seen[] = {0, 0};  // token 0 was generated in this step (twice: penalised once)
  row.penalty_tokens = seen;
  row.penalty_count = 2;
  row.repetition_penalty = 1.1f;  // 2.0 / 1.1 = 1.818 < 1.9
  CHECK_OK(sample_rows(CpuContext{}, &r, &row, 1, 4, greedy));
  CHECK(r.token == 1);
  const double lse = std::log(std::exp(2.0) + std::exp(1.9) + std::exp(-1.0) + std::exp(0.5));
  CHECK(std::fabs(r.logprob - (1.9 - lse)) < 1e-6);  // the unmodified distribution
  // bad input: named errors, nothing sampled
  std::vector<float> bad = {0.0f, NAN};
  SampleRow b{bad.data(), 0, 0, 0};
  CHECK(sample_rows(CpuContext{}, &r, &b, 1, 2, SamplingParams{}).code() ==
        StatusCode::kInvalidArgument);
  SamplingParams wrong;
  wrong.top_p = 0.0f;
  CHECK(sample_rows(CpuContext{}, &r, &row, 1, 4, wrong).code() == StatusCode::kOutOfRange);
  const int32_t outside[] = {9};
  row.penalty_tokens = outside;
  row.penalty_count = 1;
  CHECK(sample_rows(CpuContext{}, &r, &row, 1, 4, greedy).code() == StatusCode::kOutOfRange);
}

}  // namespace npr::test
