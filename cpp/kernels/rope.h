// Rotary position embedding (the rotate-half convention of Qwen3 / Llama) at EXPLICIT
// position ids: parallel steps restart at the same position, so positions are given per token.
//
// For pair i < D/2 of a head vector x: angle = pos * theta^(-2i/D),
//   y[i] = x[i] cos - x[i + D/2] sin,  y[i + D/2] = x[i + D/2] cos + x[i] sin.
// The backward of a rotation is the inverse rotation (angle -> -angle).
// Angles and their cos/sin are computed in double once per batch (RopeTable), so long
// positions do not lose accuracy the way a float32 angle does.
#pragma once

#include <cstdint>
#include <vector>

#include "core/cpu_info.h"

namespace npr {

struct RopeTable {
  int64_t tokens = 0, half = 0;  // half = head_dim / 2
  std::vector<float> cos, sin;   // (tokens, half)
};

void rope_table_build(RopeTable* table, const int32_t* positions, int64_t tokens, int64_t head_dim,
                      double theta);

// x (tokens, heads, head_dim) rotated in place; inverse = true applies the backward.
void rope_apply(const CpuContext& ctx, float* x, const RopeTable& table, int64_t heads,
                int64_t head_dim, bool inverse);

// The oracle: angles recomputed per element in double.
void rope_apply_reference(float* x, const int32_t* positions, int64_t tokens, int64_t heads,
                          int64_t head_dim, double theta, bool inverse);

}  // namespace npr
