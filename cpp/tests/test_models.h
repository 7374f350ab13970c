// Tiny random Qwen3 models for the C++ tests (model, decode).
#pragma once

#include <memory>

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

}  // namespace npr::test
