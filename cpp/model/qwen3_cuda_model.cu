// Qwen3CudaModel: construction (weights, gradients, moments on the device), parameter transfer,
// zero_grad and the optimizer step. forward / backward live in qwen3_cuda_forward.cu and
// qwen3_cuda_backward.cu.
#include <cmath>
#include <string>

#include "kernels/adamw_cuda.h"
#include "kernels/elementwise_cuda.h"
#include "model/qwen3_cuda_model.h"

namespace npr {

Qwen3CudaModel::Qwen3CudaModel(const Qwen3Config& c, DevDType t)
    : cfg_(c), t_(t), params_(qwen3_param_table(c)), off_(qwen3_offsets(c)) {}

Status Qwen3CudaModel::create(const Qwen3Config& config, DevDType precision,
                              std::unique_ptr<Qwen3CudaModel>* out) {
  NPR_TRY(qwen3_check_config(config));
  std::unique_ptr<Qwen3CudaModel> m(new Qwen3CudaModel(config, precision));
  NPR_TRY(CudaContext::create(&m->ctx_));
  DeviceAllocator& a = m->ctx_->alloc();
  const int64_t bytes = 4 * m->off_.total;
  NPR_TRY(m->master_.grow(a, bytes, "qwen3 (cuda): fp32 master weights"));
  NPR_TRY(m->grads_.grow(a, bytes, "qwen3 (cuda): fp32 gradients"));
  NPR_TRY(m->adam_m_.grow(a, bytes, "qwen3 (cuda): AdamW first moments"));
  NPR_TRY(m->adam_v_.grow(a, bytes, "qwen3 (cuda): AdamW second moments"));
  if (precision == DevDType::kBF16)
    NPR_TRY(m->compute_.grow(a, 2 * m->off_.total, "qwen3 (cuda): bf16 compute weights"));
  CudaContext& ctx = *m->ctx_;
  NPR_TRY(ctx.zero(m->master_.get(), bytes, "qwen3 (cuda): zero weights"));
  NPR_TRY(ctx.zero(m->grads_.get(), bytes, "qwen3 (cuda): zero grads"));
  NPR_TRY(ctx.zero(m->adam_m_.get(), bytes, "qwen3 (cuda): zero moments"));
  NPR_TRY(ctx.zero(m->adam_v_.get(), bytes, "qwen3 (cuda): zero moments"));
  if (precision == DevDType::kBF16)
    NPR_TRY(ctx.zero(m->compute_.get(), 2 * m->off_.total, "qwen3 (cuda): zero weights"));
  NPR_TRY(ctx.sync("qwen3 (cuda): create"));
  *out = std::move(m);
  return Status::ok();
}

const void* Qwen3CudaModel::W(int64_t off) const {
  if (t_ == DevDType::kF32) return master_.as<float>() + off;
  return static_cast<const char*>(compute_.get()) + 2 * off;
}

Status Qwen3CudaModel::set_param(const ParamInfo& p, const float* data) {
  float* dst = master_.as<float>() + p.offset;
  NPR_TRY(ctx_->upload(dst, data, 4 * p.numel, "qwen3 (cuda): setParam upload"));
  if (t_ == DevDType::kBF16)
    NPR_TRY(cast_cuda(*ctx_, DevDType::kF32, DevDType::kBF16,
                      static_cast<char*>(compute_.get()) + 2 * p.offset, dst, p.numel));
  return ctx_->sync("qwen3 (cuda): setParam");
}

Status Qwen3CudaModel::get_param(const ParamInfo& p, float* out) {
  return ctx_->download(out, master_.as<float>() + p.offset, 4 * p.numel,
                        "qwen3 (cuda): getParam download");
}

Status Qwen3CudaModel::get_grad(const ParamInfo& p, float* out) {
  return ctx_->download(out, grads_.as<float>() + p.offset, 4 * p.numel,
                        "qwen3 (cuda): getGrad download");
}

Status Qwen3CudaModel::get_optimizer_state(float* m, float* v) {
  NPR_TRY(ctx_->download(m, adam_m_.get(), 4 * off_.total, "qwen3 (cuda): AdamW moments m"));
  return ctx_->download(v, adam_v_.get(), 4 * off_.total, "qwen3 (cuda): AdamW moments v");
}

Status Qwen3CudaModel::set_optimizer_state(const float* m, const float* v, int64_t step) {
  NPR_TRY(ctx_->upload(adam_m_.get(), m, 4 * off_.total, "qwen3 (cuda): AdamW moments m"));
  NPR_TRY(ctx_->upload(adam_v_.get(), v, 4 * off_.total, "qwen3 (cuda): AdamW moments v"));
  NPR_TRY(ctx_->sync("qwen3 (cuda): set optimizer state"));
  step_ = step;
  return Status::ok();
}

Status Qwen3CudaModel::zero_grad() {
  NPR_TRY(ctx_->zero(grads_.get(), 4 * off_.total, "qwen3 (cuda): zero_grad"));
  return ctx_->sync("qwen3 (cuda): zero_grad");
}

Status Qwen3CudaModel::optimizer_step(AdamWParams a, float clip_norm, double* grad_norm) {
  double sq = 0.0;
  NPR_TRY(sum_squares_cuda(*ctx_, grads_.as<float>(), off_.total, &sq));
  const double norm = std::sqrt(sq);
  if (grad_norm) *grad_norm = norm;
  if (!std::isfinite(norm))
    return Status::invalid("qwen3 optimizer (cuda): the gradient norm is " + std::to_string(norm) +
                           "; the step was skipped and the weights are unchanged");
  a.grad_scale = 1.0f;
  if (clip_norm > 0.0f && norm > clip_norm)
    a.grad_scale = static_cast<float>(clip_norm / (norm + 1e-6));
  a.step = step_ + 1;
  NPR_TRY(adamw_step_cuda(*ctx_, master_.as<float>(), adam_m_.as<float>(), adam_v_.as<float>(),
                          grads_.as<float>(), off_.total, a,
                          t_ == DevDType::kBF16 ? compute_.get() : nullptr));
  NPR_TRY(ctx_->sync("qwen3 (cuda): optimizer step"));
  step_ = a.step;
  return Status::ok();
}

}  // namespace npr
