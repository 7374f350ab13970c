#include "sampler/token_logprob.h"

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "core/thread_pool.h"

namespace npr {

namespace {

std::string query_name(int64_t i, const TokenQuery& q) {
  return "token logprob: query " + std::to_string(i) + " (row " + std::to_string(q.row) +
         ", token " + std::to_string(q.token) + ")";
}

}  // namespace

Status check_token_queries(const TokenQuery* queries, int64_t n, int64_t rows, int64_t vocab) {
  if (vocab <= 0 || vocab > (int64_t{1} << 30))
    return Status::out_of_range("token logprob: vocab must be in [1, 2^30]");
  for (int64_t i = 0; i < n; ++i) {
    const TokenQuery& q = queries[i];
    if (q.row < 0 || q.row >= rows)
      return Status::out_of_range(query_name(i, q) + ": the step has " + std::to_string(rows) +
                                  " logits rows");
    if (q.token < 0 || q.token >= vocab)
      return Status::out_of_range(query_name(i, q) + ": the token is outside the vocabulary of " +
                                  std::to_string(vocab));
  }
  return Status::ok();
}

Status token_logprobs(const CpuContext& ctx, float* out, const float* logits, int64_t rows,
                      int64_t vocab, const TokenQuery* queries, int64_t n) {
  NPR_TRY(check_token_queries(queries, n, rows, vocab));
  std::map<int32_t, size_t> slot;  // distinct rows, in row order
  for (int64_t i = 0; i < n; ++i) slot.emplace(queries[i].row, 0);
  std::vector<int32_t> distinct;
  for (auto& [row, s] : slot) {
    s = distinct.size();
    distinct.push_back(row);
  }
  std::vector<double> lse(distinct.size());
  std::vector<std::string> refusal(distinct.size());
  auto body = [&](int64_t d) {
    const float* x = logits + static_cast<int64_t>(distinct[d]) * vocab;
    float m = -INFINITY;
    for (int64_t t = 0; t < vocab; ++t) {
      if (std::isnan(x[t]) || x[t] == INFINITY) {
        refusal[d] = std::string("has a ") + (std::isnan(x[t]) ? "NaN" : "+inf") +
                     " logit at token " + std::to_string(t);
        return;
      }
      m = std::max(m, x[t]);
    }
    if (m == -INFINITY) {
      refusal[d] = "has no finite logit (all masked)";
      return;
    }
    double sum = 0.0;
    for (int64_t t = 0; t < vocab; ++t) sum += std::exp(static_cast<double>(x[t]) - m);
    lse[d] = m + std::log(sum);
  };
  const int64_t nd = static_cast<int64_t>(distinct.size());
  if (ctx.pool && nd > 1)
    ctx.pool->parallel_for(nd, [&](int64_t d, int) { body(d); });
  else
    for (int64_t d = 0; d < nd; ++d) body(d);
  for (int64_t i = 0; i < n; ++i)
    if (const std::string& r = refusal[slot[queries[i].row]]; !r.empty())
      return Status::invalid(query_name(i, queries[i]) + ": the row " + r);
  for (int64_t i = 0; i < n; ++i) {
    const TokenQuery& q = queries[i];
    out[i] = static_cast<float>(
        static_cast<double>(logits[static_cast<int64_t>(q.row) * vocab + q.token]) -
        lse[slot[q.row]]);
  }
  return Status::ok();
}

}  // namespace npr
