// Random packed batches with parallel blocks, for attention and model tests.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/structure.h"
#include "tests/test_util.h"

namespace npr::test {

struct RandomStructure {
  std::vector<int32_t> cu_seqlens, block, step, positions, prev;
  int64_t tokens = 0;
  StructureView view() const {
    return StructureView{
        tokens,     static_cast<int64_t>(cu_seqlens.size()) - 1, cu_seqlens.data(), 1, block.data(),
        step.data()};
  }
};

// `sequences` sequences; each: a prefix, then 0..max_blocks parallel blocks of 1..max_steps
// steps of random lengths (steps restart at one position, the text after continues past the
// longest), with shared text between blocks. prev follows the project's rule: t - 1 within a
// sequence, the shared context before the block for the first token of every step.
inline RandomStructure random_structure(Rng& rng, int sequences, int max_blocks, int max_steps,
                                        int max_len) {
  RandomStructure s;
  s.cu_seqlens.push_back(0);
  int32_t next_block = 0, next_step = 0;
  for (int q = 0; q < sequences; ++q) {
    const int64_t start = s.tokens;
    int32_t pos = 0;
    auto push = [&](int32_t b, int32_t st, int32_t p, int32_t pv) {
      s.block.push_back(b);
      s.step.push_back(st);
      s.positions.push_back(p);
      s.prev.push_back(pv);
      ++s.tokens;
    };
    auto shared = [&](int64_t n) {
      for (int64_t i = 0; i < n; ++i) {
        const int32_t pv = s.tokens == start ? -1 : static_cast<int32_t>(s.tokens - 1);
        push(-1, -1, pos++, pv);
      }
    };
    shared(1 + rng.below(max_len));
    const int blocks = static_cast<int>(rng.below(max_blocks + 1));
    for (int b = 0; b < blocks; ++b) {
      const int32_t anchor = static_cast<int32_t>(s.tokens - 1), base = pos;
      int32_t longest = 0;
      const int steps = 1 + static_cast<int>(rng.below(max_steps));
      for (int st = 0; st < steps; ++st) {
        const int32_t len = 1 + static_cast<int32_t>(rng.below(max_len));
        for (int32_t i = 0; i < len; ++i)
          push(next_block, next_step, base + i,
               i == 0 ? anchor : static_cast<int32_t>(s.tokens - 1));
        longest = len > longest ? len : longest;
        ++next_step;
      }
      ++next_block;
      pos = base + longest;
      shared(1 + rng.below(max_len));
    }
    s.cu_seqlens.push_back(static_cast<int32_t>(s.tokens));
  }
  return s;
}

// One sequence per length: a prefix, one block of `steps` steps, a suffix (depth 1), lengths
// exactly as given (so 17, 97, 513 give short last tiles).
inline RandomStructure structure_of_lengths(Rng& rng, const std::vector<int>& lengths, int steps) {
  RandomStructure s;
  s.cu_seqlens.push_back(0);
  int32_t next_block = 0, next_step = 0;
  for (int L : lengths) {
    const int prefix = 1 + static_cast<int>(rng.below(std::max(1, L / 3)));
    const int body = std::max(0, std::min(L - prefix, static_cast<int>(2 * L / 3)));
    int t = 0;
    auto push = [&](int32_t b, int32_t st) {
      s.block.push_back(b);
      s.step.push_back(st);
      s.positions.push_back(t);
      s.prev.push_back(static_cast<int32_t>(s.tokens) - 1);
      ++s.tokens, ++t;
    };
    for (int i = 0; i < prefix && t < L; ++i) push(-1, -1);
    for (int st = 0, used = 0; st < steps && used < body; ++st) {
      const int n = st + 1 == steps ? body - used : 1 + static_cast<int>(rng.below(body - used));
      for (int i = 0; i < n; ++i) push(next_block, next_step);
      used += n;
      ++next_step;
    }
    ++next_block;
    while (t < L) push(-1, -1);
    s.cu_seqlens.push_back(static_cast<int32_t>(s.tokens));
  }
  return s;
}

}  // namespace npr::test
