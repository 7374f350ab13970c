// The fused chunked logprob head against whole-row double references, on odd sizes that cross
// the row and vocabulary chunk boundaries, with 1-3 threads; plus finite differences.
#include <cmath>
#include <string>

#include "core/thread_pool.h"
#include "kernels/logprob_head.h"
#include "tests/harness.h"
#include "tests/test_util.h"

namespace npr::test {

TEST(logprob_head_matches_reference) {
  Rng rng(41);
  for (auto [rows, hidden, vocab] : {std::tuple<int64_t, int64_t, int64_t>{1, 16, 1},
                                     {5, 16, 97},
                                     {67, 48, 1300},
                                     {130, 33, 2051}}) {
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      CpuContext ctx{threads > 1 ? &pool : nullptr, detect_simd()};
      LogprobHeadShape s{rows, hidden, vocab, 1e-6f};
      auto h = random_vector(rng, rows * hidden), nw = random_vector(rng, hidden),
           W = random_vector(rng, vocab * hidden);
      for (auto& x : W) x *= 3.0f;  // spread the logits
      std::vector<int32_t> tg(rows);
      for (auto& t : tg) t = static_cast<int32_t>(rng.below(vocab));
      auto lp = poisoned(rows), ent = poisoned(rows), lse = poisoned(rows),
           hn = poisoned(rows * hidden), rs = poisoned(rows);
      auto rlp = poisoned(rows), rent = poisoned(rows);
      CHECK_OK(logprob_head_forward(ctx, lp.data(), lse.data(), ent.data(), hn.data(), rs.data(),
                                    h.data(), nw.data(), W.data(), tg.data(), s));
      logprob_head_forward_reference(rlp.data(), rent.data(), h.data(), nw.data(), W.data(),
                                     tg.data(), s);
      const std::string what = std::to_string(rows) + "x" + std::to_string(hidden) + "x" +
                               std::to_string(vocab) + " t" + std::to_string(threads);
      for (int64_t r = 0; r < rows; ++r) {
        CHECK_MSG(std::fabs(lp[r] - rlp[r]) < 1e-4 * (1 + std::fabs(rlp[r])), what + " logprob");
        CHECK_MSG(std::fabs(ent[r] - rent[r]) < 1e-4 * (1 + std::fabs(rent[r])), what + " entropy");
      }
      auto dlp = random_vector(rng, rows);
      auto dh = poisoned(rows * hidden), rdh = poisoned(rows * hidden);
      std::vector<float> dnw(hidden, 0.0f), rdnw(hidden, 0.0f), dW(vocab * hidden, 0.0f),
          rdW(vocab * hidden, 0.0f);
      CHECK_OK(logprob_head_backward(ctx, dh.data(), dnw.data(), dW.data(), dlp.data(), h.data(),
                                     hn.data(), rs.data(), lse.data(), nw.data(), W.data(),
                                     tg.data(), s));
      logprob_head_backward_reference(rdh.data(), rdnw.data(), rdW.data(), dlp.data(), h.data(),
                                      nw.data(), W.data(), tg.data(), s);
      double e1 = 0, e2 = 0, e3 = 0, sc = 1e-3;
      for (size_t i = 0; i < dh.size(); ++i)
        e1 = std::max(e1, std::fabs(static_cast<double>(dh[i]) - rdh[i])),
        sc = std::max(sc, std::fabs(static_cast<double>(rdh[i])));
      for (size_t i = 0; i < dnw.size(); ++i)
        e2 = std::max(e2, std::fabs(static_cast<double>(dnw[i]) - rdnw[i]));
      for (size_t i = 0; i < dW.size(); ++i)
        e3 = std::max(e3, std::fabs(static_cast<double>(dW[i]) - rdW[i]));
      CHECK_MSG(e1 < 1e-4 * sc + 1e-5, what + " dh " + std::to_string(e1));
      CHECK_MSG(e2 < 1e-3, what + " dnorm " + std::to_string(e2));
      CHECK_MSG(e3 < 1e-4, what + " dW " + std::to_string(e3));
    }
  }
}

TEST(logprob_head_rejects_targets_outside_the_vocabulary) {
  float x[4] = {1, 2, 3, 4}, w[4] = {1, 1, 1, 1}, out[8];
  int32_t bad = 7;
  LogprobHeadShape s{1, 4, 2, 1e-6f};
  Status st =
      logprob_head_forward(CpuContext{}, out, out + 1, nullptr, out + 2, out + 6, x, w, x, &bad, s);
  CHECK(st.code() == StatusCode::kOutOfRange);
  CHECK(st.message().find("target 7") != std::string::npos);
}

TEST(logprob_head_gradient_matches_finite_differences) {
  Rng rng(42);
  const int64_t rows = 3, hidden = 8, vocab = 11;
  LogprobHeadShape s{rows, hidden, vocab, 1e-6f};
  auto h = random_vector(rng, rows * hidden), nw = random_vector(rng, hidden),
       W = random_vector(rng, vocab * hidden);
  std::vector<int32_t> tg = {3, 0, 10};
  auto dlp = random_vector(rng, rows);
  std::vector<float> dh(rows * hidden), dnw(hidden, 0.0f), dW(vocab * hidden, 0.0f);
  logprob_head_backward_reference(dh.data(), dnw.data(), dW.data(), dlp.data(), h.data(), nw.data(),
                                  W.data(), tg.data(), s);
  auto loss = [&]() {
    std::vector<float> lp(rows);
    logprob_head_forward_reference(lp.data(), nullptr, h.data(), nw.data(), W.data(), tg.data(), s);
    double l = 0.0;
    for (int64_t r = 0; r < rows; ++r) l += static_cast<double>(lp[r]) * dlp[r];
    return l;
  };
  const float eps = 1e-3f;
  for (int trial = 0; trial < 15; ++trial) {
    const int which = trial % 3;
    std::vector<float>& x = which == 0 ? h : which == 1 ? nw : W;
    const std::vector<float>& g = which == 0 ? dh : which == 1 ? dnw : dW;
    const int64_t i = rng.below(static_cast<int64_t>(x.size()));
    const float keep = x[i];
    x[i] = keep + eps;
    const double lp = loss();
    x[i] = keep - eps;
    const double lm = loss();
    x[i] = keep;
    const double fd = (lp - lm) / (2 * eps);
    CHECK_MSG(std::fabs(fd - g[i]) < 1e-3 + 1e-2 * std::fabs(fd),
              "fd " + std::to_string(fd) + " vs " + std::to_string(g[i]));
  }
}

}  // namespace npr::test
