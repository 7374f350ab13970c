// Qwen3 decoder configuration and its parameter table (Hugging Face names, shapes, offsets
// into one flat fp32 arena), so that a Hugging Face directory maps onto the model 1:1.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace npr {

struct Qwen3Config {
  int64_t vocab = 0, hidden = 0, intermediate = 0, layers = 0;
  int64_t heads = 0, kv_heads = 0, head_dim = 0;
  float rms_eps = 1e-6f;
  double rope_theta = 1e6;
  bool tied = true;  // lm_head shares model.embed_tokens.weight
};

Status qwen3_check_config(const Qwen3Config& c);

struct ParamInfo {
  std::string name;
  std::vector<int64_t> shape;
  int64_t offset = 0;  // elements into the arena
  int64_t numel = 0;
};

// Every parameter in a fixed order (embedding, layers, final norm, untied head).
std::vector<ParamInfo> qwen3_param_table(const Qwen3Config& c);

// Offsets of one layer's parameters within the arena (elements).
struct LayerOffsets {
  int64_t in_norm, wq, wk, wv, wo, q_norm, k_norm, post_norm, w_gate, w_up, w_down;
};
struct ModelOffsets {
  int64_t embed, final_norm, lm_head;  // lm_head == embed when tied
  std::vector<LayerOffsets> layers;
  int64_t total;
};
ModelOffsets qwen3_offsets(const Qwen3Config& c);

}  // namespace npr
