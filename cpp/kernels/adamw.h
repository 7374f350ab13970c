// AdamW with decoupled weight decay and bias correction (torch.optim.AdamW semantics), and the
// global gradient norm used for clipping.
//
// One step, for step number t >= 1 (1-based), each element:
//   p -= lr * weight_decay * p
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   p -= lr / (1 - beta1^t) * m / (sqrt(v / (1 - beta2^t)) + eps)
// grad_scale multiplies g first (global-norm clipping applies as a scale, not a rewrite).
// fp32 master weights and moments; the interface takes raw arrays so that bf16 storage of a
// compute copy can be added beside it later.
#pragma once

#include <cstdint>

#include "core/cpu_info.h"

namespace npr {

struct AdamWParams {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.0f;
  int64_t step = 1;         // 1-based, after increment
  float grad_scale = 1.0f;  // e.g. clip / norm when clipping
};

// p, m, v updated in place from g, all (n).
void adamw_step(const CpuContext& ctx, float* p, float* m, float* v, const float* g, int64_t n,
                const AdamWParams& a);
void adamw_step_reference(float* p, float* m, float* v, const float* g, int64_t n,
                          const AdamWParams& a);

// Sum of squares of g (n), accumulated in double.
double sum_squares(const CpuContext& ctx, const float* g, int64_t n);

}  // namespace npr
