// The emulator build's model drivers (emu_decoder.cpp, emu_train.cpp) take a Qwen3 shape as
// plain fields of the same names (DecoderModel, TrainConfig); this makes the model's config of
// them. Emulator build only (namespace npr is npr_emu there).
#pragma once

#include "model/qwen3_config.h"

namespace emu {

template <typename Plain>
npr::Qwen3Config qwen3_config_of(const Plain& d) {
  npr::Qwen3Config c;
  c.vocab = d.vocab;
  c.hidden = d.hidden;
  c.intermediate = d.intermediate;
  c.layers = d.layers;
  c.heads = d.heads;
  c.kv_heads = d.kv_heads;
  c.head_dim = d.head_dim;
  c.rms_eps = d.rms_eps;
  c.rope_theta = d.rope_theta;
  c.tied = d.tied;
  return c;
}

}  // namespace emu
