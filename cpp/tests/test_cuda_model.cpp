// The whole Qwen3 model on CUDA against the CPU model on a tiny random config with parallel
// blocks: logprobs, every gradient and an optimizer step (fp32: parity; bf16: within bf16
// rounding), run-to-run bitwise equality, and a named out-of-memory error.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>

#include "model/qwen3_model.h"
#include "tests/harness.h"
#include "tests/test_models.h"
#include "tests/test_structures.h"
#include "tests/test_util.h"
#if defined(NPR_WITH_CUDA)
#include "model/qwen3_cuda_model.h"
#include "tests/test_cuda_util.h"
#endif

namespace npr::test {

#if defined(NPR_WITH_CUDA)
namespace {

struct ModelCase {
  RandomStructure rs;
  std::vector<int32_t> ids;
  Qwen3Batch batch() const {
    return Qwen3Batch{rs.tokens, ids.data(), rs.positions.data(), rs.prev.data(), rs.view()};
  }
};

ModelCase random_case(Rng& rng, int64_t vocab) {
  ModelCase c;
  do c.rs = random_structure(rng, 2, 3, 4, 40);
  while (c.rs.tokens < 40 || *std::max_element(c.rs.step.begin(), c.rs.step.end()) < 1);
  c.ids.resize(c.rs.tokens);
  for (auto& id : c.ids) id = static_cast<int32_t>(rng.below(vocab));
  return c;
}

// A CUDA model holding the CPU model's weights.
std::unique_ptr<Qwen3CudaModel> cuda_twin(Qwen3Model& cpu, DevDType t) {
  cuda_test_context();  // SKIP where no device answers
  std::unique_ptr<Qwen3CudaModel> g;
  CHECK_OK(Qwen3CudaModel::create(cpu.config(), t, &g));
  if (!g) return g;
  for (const ParamInfo& p : cpu.params()) CHECK_OK(g->set_param(p, cpu.weights() + p.offset));
  return g;
}

std::vector<float> all_grads(Qwen3CudaModel& g) {
  std::vector<float> out(static_cast<size_t>(g.param_count()));
  for (const ParamInfo& p : g.params()) CHECK_OK(g.get_grad(p, out.data() + p.offset));
  return out;
}
std::vector<float> all_weights(Qwen3CudaModel& g) {
  std::vector<float> out(static_cast<size_t>(g.param_count()));
  for (const ParamInfo& p : g.params()) CHECK_OK(g.get_param(p, out.data() + p.offset));
  return out;
}

// Forward + backward with weights w on both models; compares logprobs and gradients.
void compare(DevDType t, bool tied, double lp_tol, double grad_tol) {
  Rng rng(tied ? 71 : 72);
  Qwen3Config cfg = tiny_config(tied);
  cfg.head_dim = 16;  // a head dim the bf16 attention also covers through its generic path
  auto cpu = random_model(rng, cfg, 0.3f);
  auto gpu = cuda_twin(*cpu, t);
  if (!gpu) return;
  ModelCase c = random_case(rng, cfg.vocab);
  const int64_t T = c.rs.tokens;
  std::vector<float> w = random_vector(rng, T);
  CpuContext ctx{nullptr, detect_simd()};
  std::vector<float> lp_cpu(T), ent_cpu(T), lp_gpu = poisoned(T), ent_gpu = poisoned(T);
  CHECK_OK(cpu->forward(ctx, c.batch(), lp_cpu.data(), ent_cpu.data()));
  CHECK_OK(gpu->forward(c.batch(), lp_gpu.data(), ent_gpu.data()));
  const std::string mode = std::string(dev_dtype_name(t)) + (tied ? " tied" : " untied");
  CHECK_MSG(rel_norm_error(lp_gpu, lp_cpu) < lp_tol,
            mode + ": logprob rel error " + std::to_string(rel_norm_error(lp_gpu, lp_cpu)));
  CHECK_MSG(rel_norm_error(ent_gpu, ent_cpu) < lp_tol,
            mode + ": entropy rel error " + std::to_string(rel_norm_error(ent_gpu, ent_cpu)));
  cpu->zero_grad();
  CHECK_OK(gpu->zero_grad());
  CHECK_OK(cpu->backward(ctx, w.data()));
  CHECK_OK(gpu->backward(w.data()));
  const std::vector<float> g_gpu = all_grads(*gpu);
  for (const ParamInfo& p : cpu->params()) {
    std::vector<float> a(g_gpu.begin() + p.offset, g_gpu.begin() + p.offset + p.numel);
    std::vector<float> b(cpu->grads() + p.offset, cpu->grads() + p.offset + p.numel);
    const double e = rel_norm_error(a, b);
    CHECK_MSG(e < grad_tol, mode + ": grad " + p.name + " rel error " + std::to_string(e));
  }
  // One optimizer step on each: the weights move alike.
  AdamWParams opt;
  opt.lr = 1e-2f;
  opt.weight_decay = 0.1f;
  double n_cpu = 0, n_gpu = 0;
  CHECK_OK(cpu->optimizer_step(ctx, opt, 1.0f, &n_cpu));
  CHECK_OK(gpu->optimizer_step(opt, 1.0f, &n_gpu));
  CHECK_MSG(std::fabs(n_cpu - n_gpu) <= grad_tol * n_cpu,
            mode + ": grad norm " + std::to_string(n_gpu) + " vs " + std::to_string(n_cpu));
  const std::vector<float> w_gpu = all_weights(*gpu);
  double worst = 0, mean = 0;
  for (int64_t i = 0; i < cpu->param_count(); ++i) {
    const double d = std::fabs(static_cast<double>(w_gpu[i]) - cpu->weights()[i]);
    worst = std::max(worst, d);
    mean += d / static_cast<double>(cpu->param_count());
  }
  // Adam moves each element by at most ~lr. Where an element's gradient is at rounding level its
  // normalised step can flip sign between the two (bf16 rounding does that to a few elements):
  // so the worst element is bounded by 2 lr, and the mean must stay a small fraction of lr.
  const double worst_bound = t == DevDType::kF32 ? 0.05 : 2.05;
  const double mean_bound = t == DevDType::kF32 ? 1e-3 : 0.05;
  CHECK_MSG(worst < worst_bound * opt.lr,
            mode + ": weights after one step differ by up to " + std::to_string(worst));
  CHECK_MSG(mean < mean_bound * opt.lr,
            mode + ": weights after one step differ by " + std::to_string(mean) + " on average");
}

}  // namespace
#endif

TEST(cuda_model_fp32_matches_cpu) {
#if !defined(NPR_WITH_CUDA)
  SKIP("CUDA not compiled into this build");
#else
  compare(DevDType::kF32, true, 1e-5, 1e-4);
  compare(DevDType::kF32, false, 1e-5, 1e-4);
#endif
}

TEST(cuda_model_bf16_matches_cpu_within_bf16) {
#if !defined(NPR_WITH_CUDA)
  SKIP("CUDA not compiled into this build");
#else
  compare(DevDType::kBF16, true, 2e-2, 6e-2);
  compare(DevDType::kBF16, false, 2e-2, 6e-2);
#endif
}

TEST(cuda_model_is_bitwise_deterministic) {
#if !defined(NPR_WITH_CUDA)
  SKIP("CUDA not compiled into this build");
#else
  Rng rng(73);
  Qwen3Config cfg = tiny_config(true);
  cfg.head_dim = 16;
  auto cpu = random_model(rng, cfg, 0.3f);
  auto gpu = cuda_twin(*cpu, DevDType::kBF16);
  if (!gpu) return;
  ModelCase c = random_case(rng, cfg.vocab);
  std::vector<float> w = random_vector(rng, c.rs.tokens), lp1(c.rs.tokens), lp2(c.rs.tokens);
  CHECK_OK(gpu->zero_grad());
  CHECK_OK(gpu->forward(c.batch(), lp1.data(), nullptr));
  CHECK_OK(gpu->backward(w.data()));
  const std::vector<float> g1 = all_grads(*gpu);
  CHECK_OK(gpu->zero_grad());
  CHECK_OK(gpu->forward(c.batch(), lp2.data(), nullptr));
  CHECK_OK(gpu->backward(w.data()));
  const std::vector<float> g2 = all_grads(*gpu);
  CHECK(std::memcmp(lp1.data(), lp2.data(), 4 * lp1.size()) == 0);
  CHECK(std::memcmp(g1.data(), g2.data(), 4 * g1.size()) == 0);
#endif
}

TEST(cuda_model_out_of_memory_is_a_named_error) {
#if !defined(NPR_WITH_CUDA)
  SKIP("CUDA not compiled into this build");
#else
  cuda_test_context();
  Qwen3Config c = tiny_config(false);
  c.vocab = 1 << 22;
  c.hidden = 1 << 14;  // 2 x 64G parameters of embeddings: no device holds that
  c.heads = 128;
  c.kv_heads = 128;
  c.head_dim = 128;
  std::unique_ptr<Qwen3CudaModel> m;
  Status s = Qwen3CudaModel::create(c, DevDType::kBF16, &m);
  CHECK(s.code() == StatusCode::kOutOfMemory);
  CHECK_MSG(s.message().find("bytes free") != std::string::npos, s.to_string());
  CHECK(!m);
  // The device is still usable afterwards.
  Rng rng(74);
  Qwen3Config small = tiny_config(true);
  small.head_dim = 16;
  auto cpu = random_model(rng, small, 0.3f);
  CHECK(cuda_twin(*cpu, DevDType::kF32) != nullptr);
#endif
}

}  // namespace npr::test

namespace npr::test {

// Trainer checkpoints: the moments and step count go out and back exactly, and a restored model
// takes the same next step as the one it was copied from.
TEST(cuda_model_optimizer_state_round_trip) {
#if !defined(NPR_WITH_CUDA)
  SKIP("CUDA not compiled into this build");
#else
  Rng rng(75);
  Qwen3Config cfg = tiny_config(false);
  cfg.head_dim = 16;
  auto cpu = random_model(rng, cfg, 0.3f);
  auto a = cuda_twin(*cpu, DevDType::kF32), b = cuda_twin(*cpu, DevDType::kF32);
  if (!a || !b) return;
  ModelCase c = random_case(rng, cfg.vocab);
  std::vector<float> w = random_vector(rng, c.rs.tokens), lp(c.rs.tokens);
  AdamWParams opt;
  opt.lr = 1e-2f;
  double norm = 0;
  for (int s = 0; s < 2; ++s) {  // two steps on a: non-trivial moments
    CHECK_OK(a->zero_grad());
    CHECK_OK(a->forward(c.batch(), lp.data(), nullptr));
    CHECK_OK(a->backward(w.data()));
    CHECK_OK(a->optimizer_step(opt, 1.0f, &norm));
  }
  const int64_t n = a->param_count();
  std::vector<float> m(n), v(n), m2 = poisoned(n), v2 = poisoned(n);
  CHECK_OK(a->get_optimizer_state(m.data(), v.data()));
  for (const ParamInfo& p : a->params()) {  // b gets a's weights and moments
    std::vector<float> buf(p.numel);
    CHECK_OK(a->get_param(p, buf.data()));
    CHECK_OK(b->set_param(p, buf.data()));
  }
  CHECK_OK(b->set_optimizer_state(m.data(), v.data(), a->optimizer_steps()));
  CHECK(b->optimizer_steps() == 2);
  CHECK_OK(b->get_optimizer_state(m2.data(), v2.data()));
  CHECK(std::memcmp(m.data(), m2.data(), 4 * n) == 0);
  CHECK(std::memcmp(v.data(), v2.data(), 4 * n) == 0);
  for (Qwen3CudaModel* x : {a.get(), b.get()}) {
    CHECK_OK(x->zero_grad());
    CHECK_OK(x->forward(c.batch(), lp.data(), nullptr));
    CHECK_OK(x->backward(w.data()));
    CHECK_OK(x->optimizer_step(opt, 1.0f, &norm));
  }
  const std::vector<float> wa = all_weights(*a), wb = all_weights(*b);
  CHECK(std::memcmp(wa.data(), wb.data(), 4 * n) == 0);
#endif
}

}  // namespace npr::test
