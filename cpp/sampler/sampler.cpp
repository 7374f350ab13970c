#include "sampler/sampler.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "sampler/counter_rng.h"

namespace npr {

namespace {

struct Scratch {
  std::vector<float> z;        // (vocab) processed logits
  std::vector<double> p;       // (vocab) probabilities
  std::vector<uint8_t> keep;   // (vocab)
  std::vector<int32_t> order;  // candidate ids
};

// The k-th largest value of z over kept tokens and how many of the ties at it to keep.
void apply_top_k(Scratch& s, int64_t vocab, int32_t k) {
  s.order.clear();
  for (int32_t t = 0; t < vocab; ++t)
    if (s.keep[t]) s.order.push_back(t);
  if (static_cast<int64_t>(s.order.size()) <= k) return;
  auto by_value = [&](int32_t a, int32_t b) {
    return s.z[a] > s.z[b] || (s.z[a] == s.z[b] && a < b);
  };
  std::nth_element(s.order.begin(), s.order.begin() + (k - 1), s.order.end(), by_value);
  std::fill(s.keep.begin(), s.keep.end(), 0);
  for (int32_t i = 0; i < k; ++i) s.keep[s.order[i]] = 1;
}

// Keeps the smallest most-probable set whose mass reaches top_p (of the kept mass).
void apply_top_p(Scratch& s, int64_t vocab, float top_p) {
  s.order.clear();
  double mass = 0.0;
  for (int32_t t = 0; t < vocab; ++t)
    if (s.keep[t]) {
      s.order.push_back(t);
      mass += s.p[t];
    }
  auto by_prob = [&](int32_t a, int32_t b) {
    return s.p[a] > s.p[b] || (s.p[a] == s.p[b] && a < b);
  };
  // Usually a few hundred tokens carry the mass: sort a head first, everything only if needed.
  const double target = top_p * mass;
  size_t head = std::min<size_t>(s.order.size(), 1024);
  for (;;) {
    std::partial_sort(s.order.begin(), s.order.begin() + head, s.order.end(), by_prob);
    double acc = 0.0;
    size_t cut = head;
    for (size_t i = 0; i < head; ++i) {
      acc += s.p[s.order[i]];
      if (acc >= target) {
        cut = i + 1;
        break;
      }
    }
    if (cut < head || head == s.order.size()) {
      for (size_t i = cut; i < s.order.size(); ++i) s.keep[s.order[i]] = 0;
      return;
    }
    head = s.order.size();
  }
}

SampleResult sample_one(Scratch& s, const SampleRow& row, int64_t vocab, const SamplingParams& P) {
  const float* logits = row.logits;
  float m = logits[0];
  for (int64_t t = 1; t < vocab; ++t) m = std::max(m, logits[t]);
  double sum = 0.0;
  for (int64_t t = 0; t < vocab; ++t) sum += std::exp(static_cast<double>(logits[t]) - m);
  const double lse = m + std::log(sum);

  s.z.assign(logits, logits + vocab);
  if (row.repetition_penalty != 1.0f) {
    std::fill(s.keep.begin(), s.keep.end(), 0);  // marks tokens already penalised
    for (int32_t i = 0; i < row.penalty_count; ++i) {
      const int32_t t = row.penalty_tokens[i];
      if (s.keep[t]) continue;
      s.keep[t] = 1;
      s.z[t] = s.z[t] > 0.0f ? s.z[t] / row.repetition_penalty : s.z[t] * row.repetition_penalty;
    }
  }
  SampleResult r;
  if (P.temperature == 0.0f) {  // greedy: the first maximum
    int32_t best = 0;
    for (int32_t t = 1; t < vocab; ++t)
      if (s.z[t] > s.z[best]) best = t;
    r.token = best;
    r.logprob = static_cast<float>(logits[best] - lse);
    r.logprob_sampling = 0.0f;
    return r;
  }
  for (int64_t t = 0; t < vocab; ++t) s.z[t] /= P.temperature;
  std::fill(s.keep.begin(), s.keep.end(), 1);
  if (P.top_k > 0 && P.top_k < vocab) apply_top_k(s, vocab, P.top_k);
  // Probabilities over the kept tokens (renormalised after each truncation).
  auto renormalise = [&]() {
    float zm = -INFINITY;
    for (int64_t t = 0; t < vocab; ++t)
      if (s.keep[t]) zm = std::max(zm, s.z[t]);
    double total = 0.0;
    for (int64_t t = 0; t < vocab; ++t) {
      s.p[t] = s.keep[t] ? std::exp(static_cast<double>(s.z[t]) - zm) : 0.0;
      total += s.p[t];
    }
    for (int64_t t = 0; t < vocab; ++t) s.p[t] /= total;
  };
  renormalise();
  if (P.top_p < 1.0f) {
    apply_top_p(s, vocab, P.top_p);
    renormalise();
  }
  if (P.min_p > 0.0f) {
    double pmax = 0.0;
    for (int64_t t = 0; t < vocab; ++t) pmax = std::max(pmax, s.p[t]);
    for (int64_t t = 0; t < vocab; ++t)
      if (s.keep[t] && s.p[t] < P.min_p * pmax) s.keep[t] = 0;
    renormalise();
  }
  // Inverse CDF in token-id order: independent of any sort.
  const double u =
      counter_uniform(P.seed, static_cast<uint64_t>(row.request), static_cast<uint64_t>(row.branch),
                      static_cast<uint64_t>(row.index));
  double acc = 0.0;
  int32_t pick = -1;
  for (int32_t t = 0; t < vocab; ++t) {
    if (!s.keep[t]) continue;
    pick = t;  // the last kept token absorbs rounding at the top end
    acc += s.p[t];
    if (acc > u) break;
  }
  r.token = pick;
  r.logprob = static_cast<float>(logits[pick] - lse);
  r.logprob_sampling = static_cast<float>(std::log(s.p[pick]));
  return r;
}

}  // namespace

Status sample_rows(const CpuContext& ctx, SampleResult* results, const SampleRow* rows,
                   int64_t n_rows, int64_t vocab, const SamplingParams& params) {
  NPR_TRY(check_sampling_params(params));
  if (vocab <= 0 || vocab > (int64_t{1} << 30))
    return Status::out_of_range("sampling: vocab must be in [1, 2^30]");
  for (int64_t r = 0; r < n_rows; ++r) {
    const SampleRow& row = rows[r];
    if (!row.logits)
      return Status::invalid("sampling: row " + std::to_string(r) + " has no logits");
    if (!(row.repetition_penalty > 0.0f))
      return Status::out_of_range("sampling: row " + std::to_string(r) +
                                  ": repetition_penalty must be > 0");
    for (int32_t i = 0; i < row.penalty_count; ++i)
      if (row.penalty_tokens[i] < 0 || row.penalty_tokens[i] >= vocab)
        return Status::out_of_range("sampling: row " + std::to_string(r) + ": penalty token " +
                                    std::to_string(row.penalty_tokens[i]) +
                                    " is outside the vocabulary");
    bool any_finite = false;
    for (int64_t t = 0; t < vocab; ++t) {
      const float x = row.logits[t];
      if (std::isnan(x) || x == INFINITY)
        return Status::invalid("sampling: row " + std::to_string(r) + " has a " +
                               (std::isnan(x) ? "NaN" : "+inf") + " logit at token " +
                               std::to_string(t));
      any_finite |= std::isfinite(x);
    }
    if (!any_finite)
      return Status::invalid("sampling: row " + std::to_string(r) +
                             " has no finite logit (all masked)");
  }
  auto body = [&](int64_t r) {
    thread_local Scratch s;
    s.p.resize(static_cast<size_t>(vocab));
    s.keep.resize(static_cast<size_t>(vocab));
    results[r] = sample_one(s, rows[r], vocab, params);
  };
  if (ctx.pool && n_rows > 1) {
    ctx.pool->parallel_for(n_rows, [&](int64_t r, int) { body(r); });
  } else {
    for (int64_t r = 0; r < n_rows; ++r) body(r);
  }
  return Status::ok();
}

}  // namespace npr
