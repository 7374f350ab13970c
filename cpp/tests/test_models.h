// Tiny random Qwen3 models for the C++ tests (model, decode).
#pragma once

#include <memory>
#include <vector>

#include "model/qwen3_model.h"
#include "tests/harness.h"
#include "tests/test_util.h"

namespace npr::test {

// vocab 37, hidden 24, ffn 40, 2 layers, 4 q / 2 kv heads of 8.
inline Qwen3Config tiny_config(bool tied) {
  Qwen3Config c;
  c.vocab = 37;
  c.hidden = 24;
  c.intermediate = 40;
  c.layers = 2;
  c.heads = 4;
  c.kv_heads = 2;
  c.head_dim = 8;
  c.rope_theta = 10000.0;
  c.tied = tied;
  return c;
}

// Matrices uniform in [-scale, scale), norm weights 1 +- 0.2.
inline std::unique_ptr<Qwen3Model> random_model(Rng& rng, const Qwen3Config& c, float scale) {
  std::unique_ptr<Qwen3Model> m;
  CHECK_OK(Qwen3Model::create(c, &m));
  for (const ParamInfo& p : m->params())
    for (int64_t i = 0; i < p.numel; ++i)
      m->weights()[p.offset + i] =
          p.shape.size() == 1 ? 1.0f + 0.2f * rng.uniform() : scale * rng.uniform();
  return m;
}

// One flattened rollout: a prefix of `prefix` tokens (positions 0..prefix-1), then one parallel
// block of branches of lens[b] tokens; positions restart at `prefix` in every branch and each
// branch's first token is predicted from the last prefix token (docs/structure.md).
struct BranchedRollout {
  std::vector<int32_t> ids, pos, prev, block, step;  // (tokens)
  std::vector<int32_t> cu;                           // {0, tokens}: one sequence
  std::vector<int64_t> start;                        // (branches) first token of each branch
  int64_t tokens() const { return static_cast<int64_t>(ids.size()); }
  Qwen3Batch batch() const {
    const int64_t T = tokens();
    return Qwen3Batch{T, ids.data(), pos.data(), prev.data(),
                      StructureView{T, 1, cu.data(), 1, block.data(), step.data()}};
  }
};

// Ids drawn from `rng` in token order (prefix first, then each branch).
inline BranchedRollout branched_rollout(Rng& rng, int64_t vocab, int64_t prefix,
                                        const std::vector<int64_t>& lens) {
  BranchedRollout r;
  for (int64_t t = 0; t < prefix; ++t) {
    r.ids.push_back(static_cast<int32_t>(rng.below(vocab)));
    r.pos.push_back(static_cast<int32_t>(t));
    r.prev.push_back(static_cast<int32_t>(t - 1));
    r.block.push_back(-1);
    r.step.push_back(-1);
  }
  for (size_t b = 0; b < lens.size(); ++b) {
    r.start.push_back(r.tokens());
    for (int64_t j = 0; j < lens[b]; ++j) {
      r.ids.push_back(static_cast<int32_t>(rng.below(vocab)));
      r.pos.push_back(static_cast<int32_t>(prefix + j));
      r.prev.push_back(static_cast<int32_t>(j == 0 ? prefix - 1 : r.tokens() - 2));
      r.block.push_back(0);
      r.step.push_back(static_cast<int32_t>(b));
    }
  }
  r.cu = {0, static_cast<int32_t>(r.tokens())};
  return r;
}

}  // namespace npr::test
