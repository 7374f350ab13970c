// The Structure of a packed batch: which keys each query may see.
//
// Tokens of several sequences are packed back to back (no padding); cu_seqlens (sequences + 1)
// gives the boundaries. Each token carries a branch path of `depth` levels: at level d,
// block[t * depth + d] and step[t * depth + d] name the parallel block and the step of that
// block the token belongs to, or are both -1 when the token is not inside a step at that level.
// Rule (DESIGN.md): key k is visible to query q iff both are in the same sequence, k <= q, and
// no level exists at which both belong to the same block but different steps. depth 0 means a
// plain causal batch. Flat NPR blocks use depth 1; nesting uses more levels.
#pragma once

#include <cstdint>

#include "core/status.h"

namespace npr {

struct StructureView {
  int64_t tokens = 0;
  int64_t sequences = 0;
  const int32_t* cu_seqlens = nullptr;  // (sequences + 1), 0 = first, tokens = last
  int32_t depth = 0;
  const int32_t* block = nullptr;  // (tokens, depth)
  const int32_t* step = nullptr;   // (tokens, depth)
};

// q and k in the same sequence with k <= q: is k visible to q?
inline bool structure_visible(const StructureView& s, int64_t q, int64_t k) {
  for (int32_t d = 0; d < s.depth; ++d) {
    const int32_t bq = s.block[q * s.depth + d], bk = s.block[k * s.depth + d];
    if (bq >= 0 && bq == bk && s.step[q * s.depth + d] != s.step[k * s.depth + d]) return false;
  }
  return true;
}

// Ok when cu_seqlens runs from 0 to tokens without decreasing and every (block, step) pair is
// either (-1, -1) or both non-negative; InvalidArgument naming the first fault otherwise.
Status check_structure(const StructureView& s);

}  // namespace npr
