// The Qwen3 decoder on a CUDA device: the training path of qwen3_model.h (forward over a packed
// batch with a Structure, backward into fp32 gradients, AdamW with global-norm clipping), with
// every tensor on the device between ops. Only ids / positions / prev / Structure go in and
// logprobs (and entropies) come out; weights move only through set_param / get_param.
//
// Precision: fp32 master weights, gradients and AdamW moments always. kF32 computes in fp32
// (the parity mode); kBF16 keeps a bf16 compute copy of the weights (refreshed by every
// optimizer step) and bf16 activations for the GEMMs and attention, with fp32 accumulation, the
// residual stream and its gradient in fp32, norm weights read from the fp32 masters.
// The batch contract (prev, scoring, Structure) is exactly Qwen3Model's. Not here: decode with a
// KV cache on the device (the generation path), multi-GPU.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/cuda_context.h"
#include "core/status.h"
#include "kernels/adamw.h"
#include "kernels/embedding_cuda.h"
#include "kernels/parallel_attention_cuda.h"
#include "model/qwen3_config.h"
#include "model/qwen3_model.h"

namespace npr {

class Qwen3CudaModel {
 public:
  // kUnavailable when no device answers; kOutOfMemory (bytes asked, bytes free) when the weights,
  // gradients and moments do not fit.
  static Status create(const Qwen3Config& config, DevDType precision,
                       std::unique_ptr<Qwen3CudaModel>* out);

  const Qwen3Config& config() const { return cfg_; }
  DevDType precision() const { return t_; }
  const std::vector<ParamInfo>& params() const { return params_; }
  int64_t param_count() const { return off_.total; }
  int64_t optimizer_steps() const { return step_; }
  int64_t saved_tokens() const { return have_acts_ ? T_ : 0; }
  // Device bytes held by this model (weights, grads, moments, activations, scratch).
  int64_t memory_bytes() const { return ctx_->alloc().bytes_in_use(); }
  CudaContext& context() { return *ctx_; }

  // Host fp32 data of one parameter (p.numel elements) in and out.
  Status set_param(const ParamInfo& p, const float* data);
  Status get_param(const ParamInfo& p, float* out);
  Status get_grad(const ParamInfo& p, float* out);

  // Host arrays as Qwen3Model::forward / backward.
  Status forward(const Qwen3Batch& batch, float* logprob, float* entropy);
  Status backward(const float* dlogprob);
  Status zero_grad();
  // AdamW moments (param_count each, host fp32) and step count, for trainer checkpoints: copied
  // out, or restored (as Qwen3Model::get/set_optimizer_state).
  Status get_optimizer_state(float* m, float* v);
  Status set_optimizer_state(const float* m, const float* v, int64_t step);
  Status optimizer_step(AdamWParams params, float clip_norm, double* grad_norm);

  // For the decode step (qwen3_cuda_decode.h), which reads the weights in place: the parameter
  // offsets, the compute copy (type precision()) and the fp32 master at an element offset.
  const ModelOffsets& offsets() const { return off_; }
  const void* compute_weight(int64_t off) const { return W(off); }
  const float* master_weight(int64_t off) const { return master(off); }

 private:
  explicit Qwen3CudaModel(const Qwen3Config& c, DevDType t);
  Status reserve_activations(int64_t tokens, int64_t scored);
  // The compute copy of the parameter at element offset `off` (bf16 copy or the fp32 master).
  const void* W(int64_t off) const;
  const float* master(int64_t off) const { return master_.as<float>() + off; }
  float* grad(int64_t off) const { return grads_.as<float>() + off; }

  // Per-layer activations saved by forward, carved from one device buffer (T = tokens).
  struct LayerActs {
    float *x_in, *x_mid;     // (T, hidden) fp32 residual stream
    float *rstd1, *rstd2;    // (T)
    void *q_pre, *k_pre;     // (T, heads*D), (T, kv_heads*D) type t, before q/k norm
    float *q_rstd, *k_rstd;  // (T*heads), (T*kv_heads)
    void *q, *k, *v;         // normed + rotated q, k; v (type t)
    void* attn;              // (T, heads*D) type t
    float* lse;              // (T, heads)
    void *gate, *up;         // (T, intermediate) type t
  };

  Qwen3Config cfg_;
  DevDType t_;
  std::vector<ParamInfo> params_;
  ModelOffsets off_;
  std::unique_ptr<CudaContext> ctx_;
  DeviceBuffer master_, grads_, adam_m_, adam_v_;  // (param_count) fp32
  DeviceBuffer compute_;                           // (param_count) bf16, kBF16 only
  int64_t step_ = 0;

  // Saved by forward.
  bool have_acts_ = false;
  int64_t T_ = 0, S_ = 0;
  std::vector<int32_t> prev_;                // (T) host copy: which tokens are scored
  DeviceAttentionPlan plan_;                 // shared by every layer and backward
  DeviceIndexAddPlan rows_plan_, ids_plan_;  // head rows -> prev positions; ids -> embedding
  DeviceBuffer acts_buf_, batch_buf_;        // activations; ids, rows, targets, rope tables
  std::vector<LayerActs> acts_;
  float* x_out_ = nullptr;   // (T, hidden) into the final norm
  float* h_rows_ = nullptr;  // (S, hidden) the scored rows' final hidden states
  void* hn_ = nullptr;       // (S, hidden) type t
  float *rstd_f_ = nullptr, *lse_f_ = nullptr, *lp_ = nullptr, *ent_ = nullptr;  // (S)
  int32_t *ids_ = nullptr, *rows_ = nullptr, *targets_ = nullptr;                // (T), (S), (S)
  float *cos_ = nullptr, *sin_ = nullptr;                                        // (T, D/2)
};

}  // namespace npr
