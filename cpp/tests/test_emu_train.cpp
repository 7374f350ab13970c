// Qwen3CudaModel's training path run whole by the CPU emulator (cpp/tests/emu): on a tiny random
// config with parallel blocks, forward (logprobs and entropies), backward (every parameter's
// gradient) and one AdamW step with clipping, against the CPU model on the same weights and
// batch, as test_cuda_model.cpp does on a GPU. Here CI runs the host code of the training path
// (activation carving, the index-add plans, the chunked logprob head, scratch sizing, the
// deterministic reductions) with every kernel it launches, on each attention path the context
// can pick: the SIMT kernel (head dim 16, fp32 parity mode), mma.sync with deterministic and
// atomic dQ, and the wgmma kernels one and two CTAs an SM (head dim 64, bf16). The deterministic
// paths give bit-identical gradients run to run; a batch with an id outside the vocabulary is a
// named error that leaves the model usable; all device memory comes back.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "model/qwen3_model.h"
#include "tests/harness.h"
#include "tests/test_models.h"
#include "tests/test_structures.h"
#include "tests/test_util.h"
#if defined(NPR_HAVE_EMU)
#include "tests/emu/emu_cuda_api.h"
#include "tests/emu/emu_train.h"
#endif

namespace npr::test {

#if defined(NPR_HAVE_EMU)
namespace {

struct TrainCase {
  const char* name;
  bool bf16, tied;
  int64_t head_dim;
  bool deterministic;
  int wgmma;
  bool expect_wgmma;  // the forward the switches must pick
};

struct Batch {
  RandomStructure rs;
  std::vector<int32_t> ids;
  Qwen3Batch cpu() const {
    return Qwen3Batch{rs.tokens, ids.data(), rs.positions.data(), rs.prev.data(), rs.view()};
  }
  emu::TrainBatch device() const {
    return emu::TrainBatch{rs.tokens,
                           static_cast<int64_t>(rs.cu_seqlens.size()) - 1,
                           ids.data(),
                           rs.positions.data(),
                           rs.prev.data(),
                           rs.cu_seqlens.data(),
                           1,
                           rs.block.data(),
                           rs.step.data()};
  }
};

Batch random_batch(Rng& rng, int64_t vocab) {
  Batch b;
  do b.rs = random_structure(rng, 2, 2, 3, 24);
  while (b.rs.tokens < 24 || *std::max_element(b.rs.step.begin(), b.rs.step.end()) < 1);
  b.ids.resize(b.rs.tokens);
  for (auto& id : b.ids) id = static_cast<int32_t>(rng.below(vocab));
  return b;
}

// Forward, backward and (after a second, bitwise-compared backward on deterministic paths) one
// optimizer step on both models.
void train_case(const TrainCase& tc, uint64_t seed) {
  const std::string name = tc.name;
  Rng rng(seed);
  Qwen3Config cfg = tiny_config(tc.tied);
  cfg.head_dim = tc.head_dim;
  auto cpu = random_model(rng, cfg, 0.3f);
  const Batch b = random_batch(rng, cfg.vocab);
  const int64_t T = b.rs.tokens, P = cpu->param_count();
  const double lp_tol = tc.bf16 ? 2e-2 : 1e-5, grad_tol = tc.bf16 ? 6e-2 : 1e-4;
  {
    emu::TrainModel dev(
        emu::TrainConfig{cfg.vocab, cfg.hidden, cfg.intermediate, cfg.layers, cfg.heads,
                         cfg.kv_heads, cfg.head_dim, cfg.rms_eps, cfg.rope_theta, cfg.tied, tc.bf16,
                         tc.deterministic, tc.wgmma},
        cpu->weights());
    CHECK_MSG(dev.error().empty(), name + ": " + dev.error());
    if (!dev.error().empty()) return;
    CHECK_MSG(dev.forward_uses_wgmma() == tc.expect_wgmma,
              name + ": the forward runs on " + (dev.forward_uses_wgmma() ? "wgmma" : "mma/SIMT"));

    // A device call's result: "" or its error, named.
    const auto expect = [&](const std::string& err, const char* what) {
      CHECK_MSG(err.empty(), name + ": " + what + ": " + err);
    };
    CpuContext ctx{nullptr, detect_simd()};
    std::vector<float> lp_cpu(T), ent_cpu(T), lp = poisoned(T), ent = poisoned(T);
    CHECK_OK(cpu->forward(ctx, b.cpu(), lp_cpu.data(), ent_cpu.data()));
    expect(dev.forward(b.device(), lp.data(), ent.data()), "forward");
    const double e_lp = rel_norm_error(lp, lp_cpu), e_ent = rel_norm_error(ent, ent_cpu);
    CHECK_MSG(e_lp < lp_tol, name + ": logprob rel error " + std::to_string(e_lp));
    CHECK_MSG(e_ent < lp_tol, name + ": entropy rel error " + std::to_string(e_ent));

    const std::vector<float> w = random_vector(rng, T);
    cpu->zero_grad();
    expect(dev.zero_grad(), "zero_grad");
    CHECK_OK(cpu->backward(ctx, w.data()));
    expect(dev.backward(w.data()), "backward");
    std::vector<float> g = poisoned(P);
    expect(dev.grads(g.data()), "grads");
    double worst_grad = 0.0;
    for (const ParamInfo& p : cpu->params()) {
      const std::vector<float> a(g.begin() + p.offset, g.begin() + p.offset + p.numel);
      const std::vector<float> c(cpu->grads() + p.offset, cpu->grads() + p.offset + p.numel);
      const double e = rel_norm_error(a, c);
      worst_grad = std::max(worst_grad, e);
      CHECK_MSG(e < grad_tol, name + ": grad " + p.name + " rel error " + std::to_string(e));
    }
    std::string repeat = "-";
    if (tc.deterministic) {  // the same batch again: the same bits
      std::vector<float> lp2 = poisoned(T), g2 = poisoned(P);
      expect(dev.forward(b.device(), lp2.data(), nullptr), "forward again");
      expect(dev.zero_grad(), "zero_grad again");
      expect(dev.backward(w.data()), "backward again");
      expect(dev.grads(g2.data()), "grads again");
      const bool same = std::memcmp(lp2.data(), lp.data(), 4 * lp.size()) == 0 &&
                        std::memcmp(g2.data(), g.data(), 4 * g.size()) == 0;
      CHECK_MSG(same, name + ": a deterministic run's second pass differs in its bits");
      repeat = same ? "bit-identical" : "DIFFERS";
    }

    AdamWParams opt;
    opt.lr = 1e-2f;
    opt.weight_decay = 0.1f;
    double n_cpu = 0.0, n_dev = 0.0;
    CHECK_OK(cpu->optimizer_step(ctx, opt, 1.0f, &n_cpu));
    expect(dev.optimizer_step(opt.lr, opt.weight_decay, 1.0f, &n_dev), "optimizer step");
    CHECK_MSG(std::fabs(n_cpu - n_dev) <= grad_tol * n_cpu,
              name + ": grad norm " + std::to_string(n_dev) + " vs " + std::to_string(n_cpu));
    std::vector<float> after = poisoned(P);
    expect(dev.weights(after.data()), "weights");
    double worst = 0.0, mean = 0.0;
    for (int64_t i = 0; i < P; ++i) {
      const double d = std::fabs(static_cast<double>(after[i]) - cpu->weights()[i]);
      worst = std::max(worst, d);
      mean += d / static_cast<double>(P);
    }
    // As test_cuda_model.cpp: Adam moves an element by at most ~lr, and where its gradient is at
    // rounding level the normalised step may flip sign (bf16 does that to a few elements).
    CHECK_MSG(worst < (tc.bf16 ? 2.05 : 0.05) * opt.lr,
              name + ": weights after one step differ by up to " + std::to_string(worst));
    CHECK_MSG(mean < (tc.bf16 ? 0.05 : 1e-3) * opt.lr,
              name + ": weights after one step differ by " + std::to_string(mean) + " on average");

    // A bad id: a named error, and the model still trains on a good batch after it.
    Batch bad = b;
    bad.ids[T / 2] = static_cast<int32_t>(cfg.vocab);
    std::vector<float> lp3 = poisoned(T);
    const std::string err = dev.forward(bad.device(), lp3.data(), nullptr);
    CHECK_MSG(err.find("vocab") != std::string::npos || err.find("id") != std::string::npos,
              name + ": an id outside the vocabulary gave \"" + err + "\"");
    expect(dev.forward(b.device(), lp3.data(), nullptr), "forward after");

    std::printf(
        "    %s: %lld tokens, logprob rel err %.3g, entropy %.3g, worst grad %.3g, grad norm "
        "%.6g vs %.6g, weights after AdamW max |diff| %.3g; second pass %s\n",
        tc.name, static_cast<long long>(T), e_lp, e_ent, worst_grad, n_dev, n_cpu, worst,
        repeat.c_str());
  }
  CHECK_MSG(
      emu::device_bytes_in_use() == 0 && emu::device_allocations() == 0,
      name + ": " + std::to_string(emu::device_bytes_in_use()) + " device bytes left allocated");
}

}  // namespace
#endif

TEST(emu_training_step_matches_the_cpu_model) {
#if !defined(NPR_HAVE_EMU)
  SKIP("the kernel emulator is not built (no CUDA toolkit headers, or NPR_EMU=off)");
#else
  const TrainCase cases[] = {
      {"fp32 parity, tied, head dim 16 (SIMT attention)", false, true, 16, true, 0, false},
      {"bf16, untied, head dim 64, mma.sync deterministic", true, false, 64, true, 0, false},
      {"bf16, tied, head dim 64, mma.sync atomic dQ", true, true, 64, false, 0, false},
      {"bf16, untied, head dim 64, wgmma one CTA an SM, deterministic", true, false, 64, true, 1,
       true},
      {"bf16, tied, head dim 64, wgmma two CTAs an SM, atomic dQ", true, true, 64, false, 2, true},
  };
  uint64_t seed = 801;
  for (const TrainCase& tc : cases) train_case(tc, seed++);
#endif
}

}  // namespace npr::test
