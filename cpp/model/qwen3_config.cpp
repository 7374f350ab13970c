#include "model/qwen3_config.h"

namespace npr {

Status qwen3_check_config(const Qwen3Config& c) {
  auto positive = [](int64_t v, int64_t max) { return v > 0 && v <= max; };
  if (!positive(c.vocab, 1 << 24) || !positive(c.hidden, 1 << 16) ||
      !positive(c.intermediate, 1 << 18) || !positive(c.layers, 1024) || !positive(c.heads, 1024) ||
      !positive(c.kv_heads, 1024) || !positive(c.head_dim, 1024))
    return Status::invalid(
        "qwen3 config: vocab, hidden, intermediate, layers, heads, kv_heads and head_dim must be "
        "positive (and of sane size)");
  if (c.heads % c.kv_heads != 0)
    return Status::invalid("qwen3 config: heads (" + std::to_string(c.heads) +
                           ") must be a multiple of kv_heads (" + std::to_string(c.kv_heads) + ")");
  if (c.head_dim % 2 != 0) return Status::invalid("qwen3 config: head_dim must be even for RoPE");
  if (!(c.rms_eps > 0.0f)) return Status::invalid("qwen3 config: rms_norm_eps must be > 0");
  if (!(c.rope_theta > 1.0)) return Status::invalid("qwen3 config: rope_theta must be > 1");
  return Status::ok();
}

std::vector<ParamInfo> qwen3_param_table(const Qwen3Config& c) {
  std::vector<ParamInfo> t;
  int64_t offset = 0;
  auto add = [&](std::string name, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    t.push_back({std::move(name), std::move(shape), offset, n});
    offset += n;
  };
  const int64_t H = c.hidden, qd = c.heads * c.head_dim, kd = c.kv_heads * c.head_dim;
  add("model.embed_tokens.weight", {c.vocab, H});
  for (int64_t i = 0; i < c.layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    add(p + "input_layernorm.weight", {H});
    add(p + "self_attn.q_proj.weight", {qd, H});
    add(p + "self_attn.k_proj.weight", {kd, H});
    add(p + "self_attn.v_proj.weight", {kd, H});
    add(p + "self_attn.o_proj.weight", {H, qd});
    add(p + "self_attn.q_norm.weight", {c.head_dim});
    add(p + "self_attn.k_norm.weight", {c.head_dim});
    add(p + "post_attention_layernorm.weight", {H});
    add(p + "mlp.gate_proj.weight", {c.intermediate, H});
    add(p + "mlp.up_proj.weight", {c.intermediate, H});
    add(p + "mlp.down_proj.weight", {H, c.intermediate});
  }
  add("model.norm.weight", {H});
  if (!c.tied) add("lm_head.weight", {c.vocab, H});
  return t;
}

ModelOffsets qwen3_offsets(const Qwen3Config& c) {
  const std::vector<ParamInfo> t = qwen3_param_table(c);
  ModelOffsets o;
  size_t i = 0;
  o.embed = t[i++].offset;
  for (int64_t l = 0; l < c.layers; ++l) {
    LayerOffsets lo;
    lo.in_norm = t[i++].offset;
    lo.wq = t[i++].offset;
    lo.wk = t[i++].offset;
    lo.wv = t[i++].offset;
    lo.wo = t[i++].offset;
    lo.q_norm = t[i++].offset;
    lo.k_norm = t[i++].offset;
    lo.post_norm = t[i++].offset;
    lo.w_gate = t[i++].offset;
    lo.w_up = t[i++].offset;
    lo.w_down = t[i++].offset;
    o.layers.push_back(lo);
  }
  o.final_norm = t[i++].offset;
  o.lm_head = c.tied ? o.embed : t[i++].offset;
  o.total = t.back().offset + t.back().numel;
  return o;
}

}  // namespace npr
