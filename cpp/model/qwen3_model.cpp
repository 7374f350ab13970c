// Qwen3Model: construction, batch validation, memory accounting and the optimizer step.
// forward and backward live in qwen3_forward.cpp and qwen3_backward.cpp.
#include "model/qwen3_model.h"

#include <cmath>
#include <string>

namespace npr {

Qwen3Model::Qwen3Model(const Qwen3Config& c)
    : cfg_(c), params_(qwen3_param_table(c)), off_(qwen3_offsets(c)) {}

Status Qwen3Model::create(const Qwen3Config& config, std::unique_ptr<Qwen3Model>* out) {
  NPR_TRY(qwen3_check_config(config));
  std::unique_ptr<Qwen3Model> m(new Qwen3Model(config));
  try {
    const size_t n = static_cast<size_t>(m->off_.total);
    m->weights_.assign(n, 0.0f);
    m->grads_.assign(n, 0.0f);
    m->adam_m_.assign(n, 0.0f);
    m->adam_v_.assign(n, 0.0f);
  } catch (const std::bad_alloc&) {
    return Status::oom("qwen3: could not allocate " + std::to_string(m->off_.total * 16) +
                       " bytes for weights, gradients and optimizer state");
  }
  *out = std::move(m);
  return Status::ok();
}

int64_t Qwen3Model::memory_bytes() const {
  int64_t floats = 4 * off_.total;
  for (const LayerActs& a : acts_) {
    for (const std::vector<float>* v :
         {&a.x_in, &a.rstd1, &a.rstd2, &a.q_pre, &a.k_pre, &a.q_rstd, &a.k_rstd, &a.q, &a.k, &a.v,
          &a.attn, &a.lse, &a.x_mid, &a.gate, &a.up})
      floats += static_cast<int64_t>(v->capacity());
  }
  floats += static_cast<int64_t>(x_out_.capacity() + h_rows_.capacity() + hn_.capacity());
  return floats * static_cast<int64_t>(sizeof(float));
}

void Qwen3Model::get_optimizer_state(float* m, float* v) const {
  std::copy(adam_m_.begin(), adam_m_.end(), m);
  std::copy(adam_v_.begin(), adam_v_.end(), v);
}

void Qwen3Model::set_optimizer_state(const float* m, const float* v, int64_t step) {
  std::copy(m, m + off_.total, adam_m_.begin());
  std::copy(v, v + off_.total, adam_v_.begin());
  step_ = step;
}

void Qwen3Model::zero_grad() {
  std::fill(grads_.begin(), grads_.end(), 0.0f);
}

Status Qwen3Model::optimizer_step(const CpuContext& ctx, AdamWParams a, float clip_norm,
                                  double* grad_norm) {
  const double norm = std::sqrt(sum_squares(ctx, grads_.data(), off_.total));
  if (grad_norm) *grad_norm = norm;
  if (!std::isfinite(norm))
    return Status::invalid("qwen3 optimizer: the gradient norm is " + std::to_string(norm) +
                           "; the step was skipped and the weights are unchanged");
  a.grad_scale = 1.0f;
  if (clip_norm > 0.0f && norm > clip_norm)
    a.grad_scale = static_cast<float>(clip_norm / (norm + 1e-6));
  a.step = step_ + 1;
  adamw_step(ctx, weights_.data(), adam_m_.data(), adam_v_.data(), grads_.data(), off_.total, a);
  step_ = a.step;
  return Status::ok();
}

}  // namespace npr
