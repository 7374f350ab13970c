// The whole Qwen3 model on a tiny random config: finite differences through forward/backward
// (every parameter kind), thread-count independence, batch validation, the optimizer step.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "core/thread_pool.h"
#include "model/qwen3_model.h"
#include "tests/harness.h"
#include "tests/test_models.h"
#include "tests/test_structures.h"
#include "tests/test_util.h"

namespace npr::test {

namespace {

struct Inputs {
  RandomStructure rs;
  std::vector<int32_t> ids;
  Qwen3Batch batch() const {
    return Qwen3Batch{rs.tokens, ids.data(), rs.positions.data(), rs.prev.data(), rs.view()};
  }
};

// At least 12 tokens and one parallel block of two or more steps.
Inputs random_inputs(Rng& rng, int64_t vocab) {
  Inputs in;
  do in.rs = random_structure(rng, 2, 2, 3, 5);
  while (in.rs.tokens < 12 || *std::max_element(in.rs.step.begin(), in.rs.step.end()) < 1);
  in.ids.resize(in.rs.tokens);
  for (auto& id : in.ids) id = static_cast<int32_t>(rng.below(vocab));
  return in;
}

// sum_t w[t] * logprob[t]
double weighted(Qwen3Model& m, const CpuContext& ctx, const Inputs& in,
                const std::vector<float>& w) {
  std::vector<float> lp(in.rs.tokens);
  CHECK_OK(m.forward(ctx, in.batch(), lp.data(), nullptr));
  double s = 0.0;
  for (size_t t = 0; t < lp.size(); ++t) s += static_cast<double>(lp[t]) * w[t];
  return s;
}

}  // namespace

TEST(model_gradients_match_finite_differences) {
  for (bool tied : {true, false}) {
    Rng rng(tied ? 51 : 52);
    auto m = random_model(rng, tiny_config(tied), 0.3f);
    Inputs in = random_inputs(rng, m->config().vocab);
    std::vector<float> w = random_vector(rng, in.rs.tokens);
    CpuContext ctx{nullptr, detect_simd()};
    m->zero_grad();
    weighted(*m, ctx, in, w);
    CHECK_OK(m->backward(ctx, w.data()));
    const std::vector<float> grad(m->grads(), m->grads() + m->param_count());
    int checked = 0;
    for (const ParamInfo& p : m->params()) {
      for (int trial = 0; trial < 2; ++trial) {
        const int64_t i = p.offset + rng.below(p.numel);
        const float keep = m->weights()[i], h = 2e-3f;
        m->weights()[i] = keep + h;
        const double lp = weighted(*m, ctx, in, w);
        m->weights()[i] = keep - h;
        const double lm = weighted(*m, ctx, in, w);
        m->weights()[i] = keep;
        const double fd = (lp - lm) / (2 * h);
        CHECK_MSG(std::fabs(fd - grad[i]) < 5e-3 + 2e-2 * std::fabs(fd),
                  p.name + (tied ? " (tied)" : " (untied)") + ": fd " + std::to_string(fd) +
                      " vs " + std::to_string(grad[i]));
        ++checked;
      }
    }
    CHECK(checked > 40);
  }
}

TEST(model_results_do_not_depend_on_thread_count) {
  Rng rng(53);
  auto m = random_model(rng, tiny_config(true), 0.3f);
  Inputs in = random_inputs(rng, m->config().vocab);
  std::vector<float> lp1(in.rs.tokens), lp3(in.rs.tokens);
  ThreadPool pool(3);
  CHECK_OK(m->forward(CpuContext{nullptr, detect_simd()}, in.batch(), lp1.data(), nullptr));
  CHECK_OK(m->forward(CpuContext{&pool, detect_simd()}, in.batch(), lp3.data(), nullptr));
  for (size_t t = 0; t < lp1.size(); ++t) CHECK(std::fabs(lp1[t] - lp3[t]) < 1e-5);
}

TEST(model_rejects_bad_batches_with_the_token_named) {
  Rng rng(54);
  auto m = random_model(rng, tiny_config(true), 0.3f);
  Inputs in = random_inputs(rng, m->config().vocab);
  std::vector<float> lp(in.rs.tokens);
  CpuContext ctx{nullptr, detect_simd()};
  Inputs bad = in;
  bad.ids[3] = 999;
  Status st = m->forward(ctx, bad.batch(), lp.data(), nullptr);
  CHECK(st.code() == StatusCode::kOutOfRange && st.message().find("token 3") != std::string::npos);
  bad = in;
  bad.rs.prev[5] = 6;  // a later token
  st = m->forward(ctx, bad.batch(), lp.data(), nullptr);
  CHECK(st.code() == StatusCode::kOutOfRange && st.message().find("token 5") != std::string::npos);
  bad = in;
  bad.rs.positions[2] = -4;
  CHECK(m->forward(ctx, bad.batch(), lp.data(), nullptr).code() == StatusCode::kOutOfRange);
  bad = in;
  bad.rs.cu_seqlens.back() -= 1;
  CHECK(m->forward(ctx, bad.batch(), lp.data(), nullptr).code() == StatusCode::kInvalidArgument);
  // a step's first token predicted from a sibling step is refused
  bad = in;
  for (int64_t t = 1; t < bad.rs.tokens; ++t) {
    if (bad.rs.step[t] >= 0 && bad.rs.step[t - 1] >= 0 && bad.rs.step[t] != bad.rs.step[t - 1] &&
        bad.rs.block[t] == bad.rs.block[t - 1]) {
      bad.rs.prev[t] = static_cast<int32_t>(t - 1);
      st = m->forward(ctx, bad.batch(), lp.data(), nullptr);
      CHECK(st.code() == StatusCode::kInvalidArgument &&
            st.message().find("sibling") != std::string::npos);
      break;
    }
  }
  CHECK(m->backward(ctx, lp.data()).code() == StatusCode::kInvalidArgument);  // no valid forward
}

TEST(model_optimizer_lowers_the_loss_and_refuses_nan_gradients) {
  Rng rng(55);
  auto m = random_model(rng, tiny_config(false), 0.3f);
  Inputs in = random_inputs(rng, m->config().vocab);
  std::vector<float> w(in.rs.tokens);
  for (int64_t t = 0; t < in.rs.tokens; ++t)
    w[t] = in.rs.prev[t] >= 0 ? -1.0f : 0.0f;  // loss = -sum logprob
  CpuContext ctx{nullptr, detect_simd()};
  double first = 0.0, last = 0.0;
  for (int step = 0; step < 8; ++step) {
    m->zero_grad();
    const double loss = weighted(*m, ctx, in, w);
    CHECK_OK(m->backward(ctx, w.data()));
    AdamWParams a;
    a.lr = 3e-2f;
    double norm = 0.0;
    CHECK_OK(m->optimizer_step(ctx, a, 1.0f, &norm));
    CHECK(norm > 0.0);
    if (step == 0) first = loss;
    last = loss;
  }
  CHECK_MSG(last < 0.8 * first, "loss " + std::to_string(first) + " -> " + std::to_string(last));
  CHECK(m->optimizer_steps() == 8);
  // A NaN gradient: the step is refused and no weight moves.
  m->zero_grad();
  weighted(*m, ctx, in, w);
  std::vector<float> nan_w = w;
  nan_w[1] = NAN;
  CHECK(m->backward(ctx, nan_w.data()).code() == StatusCode::kInvalidArgument);
}

}  // namespace npr::test
