// emu_train.h in the emulator build: the plain arrays as the model's own types.
#include "tests/emu/emu_train.h"

#include "kernels/parallel_attention_cuda.h"
#include "model/qwen3_cuda_model.h"
#include "tests/emu/emu_qwen3_config.h"
#include "tests/emu/emu_status_message.h"

namespace emu {

struct TrainModel::Impl {
  std::unique_ptr<npr::Qwen3CudaModel> model;
  npr::AttentionShape shape;
  npr::DevDType t = npr::DevDType::kF32;
  std::string error;
};

namespace {

template <typename Impl>  // TrainModel::Impl, private to the class
npr::Status build(const TrainConfig& d, const float* weights, Impl* s) {
  const npr::Qwen3Config c = qwen3_config_of(d);
  s->t = d.bf16 ? npr::DevDType::kBF16 : npr::DevDType::kF32;
  NPR_TRY(npr::Qwen3CudaModel::create(c, s->t, &s->model));
  s->model->context().deterministic = d.deterministic;
  s->model->context().attention_wgmma = d.wgmma;
  s->shape.heads = c.heads;
  s->shape.kv_heads = c.kv_heads;
  s->shape.head_dim = c.head_dim;
  for (const npr::ParamInfo& p : s->model->params())
    NPR_TRY(s->model->set_param(p, weights + p.offset));
  return npr::Status::ok();
}

}  // namespace

TrainModel::TrainModel(const TrainConfig& c, const float* weights) : impl_(new Impl) {
  impl_->error = status_message(build(c, weights, impl_.get()));
}

TrainModel::~TrainModel() = default;

const std::string& TrainModel::error() const {
  return impl_->error;
}

int64_t TrainModel::param_count() const {
  return impl_->model ? impl_->model->param_count() : 0;
}

bool TrainModel::forward_uses_wgmma() const {
  return impl_->model &&
         npr::attention_forward_uses_wgmma(impl_->model->context(), impl_->t, impl_->shape);
}

std::string TrainModel::forward(const TrainBatch& b, float* logprob, float* entropy) {
  if (!impl_->error.empty()) return impl_->error;
  npr::Qwen3Batch q;
  q.tokens = b.tokens;
  q.ids = b.ids;
  q.positions = b.positions;
  q.prev = b.prev;
  q.structure = npr::StructureView{b.tokens, b.sequences, b.cu_seqlens, b.depth, b.block, b.step};
  return status_message(impl_->model->forward(q, logprob, entropy));
}

std::string TrainModel::backward(const float* dlogprob) {
  if (!impl_->error.empty()) return impl_->error;
  return status_message(impl_->model->backward(dlogprob));
}

std::string TrainModel::zero_grad() {
  if (!impl_->error.empty()) return impl_->error;
  return status_message(impl_->model->zero_grad());
}

std::string TrainModel::optimizer_step(float lr, float weight_decay, float clip_norm,
                                       double* grad_norm) {
  if (!impl_->error.empty()) return impl_->error;
  npr::AdamWParams a;
  a.lr = lr;
  a.weight_decay = weight_decay;
  return status_message(impl_->model->optimizer_step(a, clip_norm, grad_norm));
}

std::string TrainModel::grads(float* out) {
  if (!impl_->error.empty()) return impl_->error;
  for (const npr::ParamInfo& p : impl_->model->params())
    if (const std::string e = status_message(impl_->model->get_grad(p, out + p.offset)); !e.empty())
      return e;
  return {};
}

std::string TrainModel::weights(float* out) {
  if (!impl_->error.empty()) return impl_->error;
  for (const npr::ParamInfo& p : impl_->model->params())
    if (const std::string e = status_message(impl_->model->get_param(p, out + p.offset));
        !e.empty())
      return e;
  return {};
}

}  // namespace emu
