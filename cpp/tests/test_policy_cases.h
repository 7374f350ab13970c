// Random policy-loss inputs shared by the CPU and CUDA policy-loss tests: sequences of 1..max_len
// tokens with one advantage each, ratios in about [0.55, 1.8], a fifth of the tokens masked
// out, a quarter special.
#pragma once

#include <cstdint>
#include <vector>

#include "tests/test_util.h"

namespace npr::test {

struct LossCase {
  std::vector<float> lp, old, adv, mask;
  std::vector<uint8_t> special;
  std::vector<int32_t> cu;
};

inline LossCase random_case(Rng& rng, int64_t sequences, int64_t max_len) {
  LossCase c;
  c.cu.push_back(0);
  for (int64_t s = 0; s < sequences; ++s) {
    const int64_t n = 1 + rng.below(max_len);
    const float a = rng.uniform() * 2.0f;
    for (int64_t i = 0; i < n; ++i) {
      c.lp.push_back(-3.0f + rng.uniform() * 2.5f);
      c.old.push_back(c.lp.back() + rng.uniform() * 0.6f);  // ratios in about [0.55, 1.8]
      c.adv.push_back(a);
      c.mask.push_back(rng.below(5) == 0 ? 0.0f : 1.0f);
      c.special.push_back(rng.below(4) == 0 ? 1 : 0);
    }
    c.cu.push_back(static_cast<int32_t>(c.lp.size()));
  }
  return c;
}

}  // namespace npr::test
