// The Qwen3 decoder on the CPU: fp32 master weights, gradients and AdamW moments in flat
// arenas laid out by qwen3_param_table; forward over a packed batch saves what backward needs.
//
// Batch: tokens of several sequences packed without padding, explicit position ids, a
// Structure (which keys each query sees), and `prev`: the index whose final hidden state
// predicts token t (-1: t is not scored). Plain causal text has prev[t] = t - 1 inside a
// sequence; the first token of every sibling step is predicted from the shared context before
// the block, exactly as the engine samples it. forward writes logprob[t] = log p(ids[t] |
// h[prev[t]]) (0 where unscored); backward(dlogprob) accumulates d(sum dlogprob * logprob) into the
// grads. Attention runs the fused block-sparse kernel over one plan built per forward and reused
// by every layer and by backward. Not here: bf16 storage, decode with a KV cache.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/cpu_info.h"
#include "core/huge_pages.h"
#include "core/status.h"
#include "core/structure.h"
#include "kernels/adamw.h"
#include "kernels/parallel_attention.h"
#include "kernels/rope.h"
#include "model/qwen3_config.h"

namespace npr {

struct Qwen3Batch {
  int64_t tokens = 0;
  const int32_t* ids = nullptr;        // (tokens)
  const int32_t* positions = nullptr;  // (tokens)
  const int32_t* prev = nullptr;       // (tokens), -1 = not scored
  StructureView structure;             // includes cu_seqlens
};

// Checks a batch against a config (ids in the vocabulary, positions >= 0, prev earlier, in the
// same sequence and visible, the Structure well formed). Shared by every backend.
Status qwen3_validate_batch(const Qwen3Config& c, const Qwen3Batch& b);

class Qwen3Model {
 public:
  static Status create(const Qwen3Config& config, std::unique_ptr<Qwen3Model>* out);

  const Qwen3Config& config() const { return cfg_; }
  const std::vector<ParamInfo>& params() const { return params_; }
  int64_t param_count() const { return off_.total; }
  // Where each parameter lives in the weight arena (for the decode step and other readers).
  const ModelOffsets& offsets() const { return off_; }
  float* weights() { return weights_.data(); }
  const float* grads() const { return grads_.data(); }
  int64_t optimizer_steps() const { return step_; }
  // AdamW moments (param_count each) and step count, for trainer checkpoints: copied out, or
  // restored (a resumed run then takes exactly the steps an uninterrupted one would).
  void get_optimizer_state(float* m, float* v) const;
  void set_optimizer_state(const float* m, const float* v, int64_t step);
  // Tokens of the forward whose activations are held (0: none; backward would refuse).
  int64_t saved_tokens() const { return have_acts_ ? T_ : 0; }
  // Bytes held now: weights, grads, optimizer moments, saved activations.
  int64_t memory_bytes() const;

  // logprob (tokens); entropy (tokens) may be null. Keeps the batch's activations.
  Status forward(const CpuContext& ctx, const Qwen3Batch& batch, float* logprob, float* entropy);
  // dlogprob (tokens). Requires the activations of the last forward; consumes them.
  Status backward(const CpuContext& ctx, const float* dlogprob);
  void zero_grad();
  // Global-norm clipping (clip_norm <= 0: none) then one AdamW step over every parameter.
  // grad_norm receives the norm before clipping.
  Status optimizer_step(const CpuContext& ctx, AdamWParams params, float clip_norm,
                        double* grad_norm);

 private:
  explicit Qwen3Model(const Qwen3Config& c);
  void reserve_activations(int64_t tokens, int64_t scored);

  // What forward keeps for backward, per layer (T = tokens).
  struct LayerActs {
    std::vector<float> x_in;            // (T, hidden) residual stream into the layer
    std::vector<float> rstd1, rstd2;    // (T)
    std::vector<float> q_pre, k_pre;    // (T, heads*D), (T, kv_heads*D) before q/k norm
    std::vector<float> q_rstd, k_rstd;  // (T*heads), (T*kv_heads)
    std::vector<float> q, k, v;         // normed + rotated q, k; v
    std::vector<float> attn, lse;       // (T, heads*D), (T, heads)
    std::vector<float> x_mid;           // (T, hidden) after the attention residual
    std::vector<float> gate, up;        // (T, intermediate)
  };

  Qwen3Config cfg_;
  std::vector<ParamInfo> params_;
  ModelOffsets off_;
  HugeFloats weights_, grads_, adam_m_, adam_v_;  // (param_count), on huge pages
  int64_t step_ = 0;

  // Saved by forward.
  bool have_acts_ = false;
  int64_t T_ = 0;
  std::vector<int32_t> ids_, positions_, prev_, cu_seqlens_, block_, step_ids_;
  StructureView st_;
  AttentionPlan plan_;  // tile classification of st_, shared by all layers and backward
  RopeTable rope_;
  std::vector<LayerActs> acts_;
  std::vector<float> x_out_;                       // (T, hidden) into the final norm
  std::vector<int32_t> rows_, targets_;            // scored token -> (its prev row, its id)
  std::vector<float> h_rows_, hn_, rstd_f_, lse_;  // (S, hidden), (S, hidden), (S), (S)
};

}  // namespace npr
