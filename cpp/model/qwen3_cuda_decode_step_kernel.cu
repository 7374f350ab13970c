// Qwen3CudaDecoder's one-kernel steps (step_kernel, qwen3_cuda_step_kernel.h): the layer table
// built once from the parameter offsets and the KV pages, and the step's launch over the
// decoder's step description, plan and activations.
#include <vector>

#include "model/qwen3_cuda_decode.h"

namespace npr {

Status Qwen3CudaDecoder::run_step_kernel(int64_t S) {
  const Qwen3Config& c = m_.config();
  const ModelOffsets& off = m_.offsets();
  if (!step_kernel_.has_layers()) {
    const int64_t H = c.hidden, qd = c.heads * c.head_dim, kd = c.kv_heads * c.head_dim;
    std::vector<StepKernelLayer> layers(static_cast<size_t>(c.layers));
    for (int64_t l = 0; l < c.layers; ++l) {
      const LayerOffsets& o = off.layers[l];
      if (o.wk != o.wq + qd * H || o.wv != o.wk + kd * H || o.w_up != o.w_gate + c.intermediate * H)
        return Status::internal(
            "decode (cuda): the parameter table no longer stacks q/k/v and gate/up");
      StepKernelLayer& L = layers[l];
      L.wqkv = m_.compute_weight(o.wq);
      L.wo = m_.compute_weight(o.wo);
      L.wgu = m_.compute_weight(o.w_gate);
      L.wdown = m_.compute_weight(o.w_down);
      L.in_norm = m_.master_weight(o.in_norm);
      L.post_norm = m_.master_weight(o.post_norm);
      L.q_norm = m_.master_weight(o.q_norm);
      L.k_norm = m_.master_weight(o.k_norm);
      L.k_pages = pages_.k(l);
      L.v_pages = pages_.v(l);
    }
    NPR_TRY(step_kernel_.set_layers(ctx_, layers));
  }
  StepKernelArgs a;
  a.embed = m_.compute_weight(off.embed);
  a.lm_head = m_.compute_weight(off.lm_head);
  a.final_norm = m_.master_weight(off.final_norm);
  a.ids = ids_;
  a.slots = slots_;
  a.cos = cos_;
  a.sin = sin_;
  a.plan = plan_in_use_;
  a.block_tokens = pages_.block_tokens();
  a.x = x_;
  a.qkv = qkv_;
  a.attn = attn_;
  a.act = act_;
  a.logits = logits_;
  a.prefetch = step_kernel_prefetch;
  a.stream = step_kernel_stream;
  a.fold_merge = step_kernel_fold_merge;
  a.head_flags = step_kernel_head_flags;
  a.ring_slots = step_kernel_ring_slots;
  a.timing = step_kernel_timing;
  NPR_TRY(step_kernel_.launch(ctx_, c, S, a));
  ++stats_.kernel_steps;
  stats_.kernel_grid = step_kernel_.grid();
  stats_.kernel_streamed = step_kernel_.streamed();
  stats_.kernel_ring_slots = step_kernel_.ring_slots();
  if (!step_kernel_timing) return Status::ok();
  NPR_TRY(step_kernel_.add_phase_ms(ctx_, c, &stats_.kernel_phase_ms));
  ++stats_.kernel_timed_steps;
  return Status::ok();
}

}  // namespace npr
