// Qwen3CudaModel's training path (model/qwen3_cuda_model.h: forward over a packed batch with a
// Structure, backward into fp32 gradients, AdamW with global-norm clipping) under the emulator,
// for test_emu_train.cpp: every op on the emulated device, the GEMMs on the hand-written
// tensor-core kernel (no cuBLAS here), the attention on the kernels the context's switches pick.
// Plain types only: compiled into the emulator build (emu_train.cpp, where namespace npr is
// npr_emu) and into the test.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace emu {

struct TrainConfig {
  int64_t vocab, hidden, intermediate, layers, heads, kv_heads, head_dim;
  float rms_eps;
  double rope_theta;
  bool tied;
  bool bf16;           // bf16 compute (else the fp32 parity mode)
  bool deterministic;  // CudaContext::deterministic
  int wgmma;           // CudaContext::attention_wgmma (0, 1, 2)
};

// A packed batch (Qwen3Batch) with its Structure as plain arrays.
struct TrainBatch {
  int64_t tokens, sequences;
  const int32_t *ids, *positions, *prev;  // (tokens)
  const int32_t* cu_seqlens;              // (sequences + 1)
  int32_t depth;
  const int32_t *block, *step;  // (tokens, depth)
};

class TrainModel {
 public:
  // weights: the parameter table's arena (qwen3_param_table offsets), fp32.
  TrainModel(const TrainConfig& c, const float* weights);
  ~TrainModel();
  TrainModel(const TrainModel&) = delete;
  TrainModel& operator=(const TrainModel&) = delete;
  // "" or the error of the set-up (device memory, weights upload).
  const std::string& error() const;
  int64_t param_count() const;
  // Whether the attention forward runs on the wgmma kernel for this model's shape and switches.
  bool forward_uses_wgmma() const;

  // Each returns "" or the error. logprob, entropy: (tokens); dlogprob: (tokens).
  std::string forward(const TrainBatch& b, float* logprob, float* entropy);
  std::string backward(const float* dlogprob);
  std::string zero_grad();
  std::string optimizer_step(float lr, float weight_decay, float clip_norm, double* grad_norm);
  // Every parameter's gradient or weight (fp32 master), (param_count), at the table's offsets.
  std::string grads(float* out);
  std::string weights(float* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace emu
