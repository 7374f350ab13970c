// Qwen3Model::forward: embedding -> layers (norm, attention, norm, SwiGLU MLP, residuals) ->
// the fused logprob head on the scored rows. Saves each layer's activations for backward.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/embedding.h"
#include "kernels/linear.h"
#include "kernels/logprob_head.h"
#include "kernels/parallel_attention.h"
#include "kernels/rmsnorm.h"
#include "kernels/swiglu.h"
#include "model/qwen3_model.h"

namespace npr {

void Qwen3Model::reserve_activations(int64_t T, int64_t S) {
  const int64_t H = cfg_.hidden, I = cfg_.intermediate;
  const int64_t qd = cfg_.heads * cfg_.head_dim, kd = cfg_.kv_heads * cfg_.head_dim;
  acts_.resize(static_cast<size_t>(cfg_.layers));
  auto size = [](std::vector<float>& v, int64_t n) { v.resize(static_cast<size_t>(n)); };
  for (LayerActs& a : acts_) {
    size(a.x_in, T * H);
    size(a.rstd1, T);
    size(a.rstd2, T);
    size(a.q_pre, T * qd);
    size(a.k_pre, T * kd);
    size(a.q_rstd, T * cfg_.heads);
    size(a.k_rstd, T * cfg_.kv_heads);
    size(a.q, T * qd);
    size(a.k, T * kd);
    size(a.v, T * kd);
    size(a.attn, T * qd);
    size(a.lse, T * cfg_.heads);
    size(a.x_mid, T * H);
    size(a.gate, T * I);
    size(a.up, T * I);
  }
  size(x_out_, T * H);
  size(h_rows_, S * H);
  size(hn_, S * H);
  size(rstd_f_, S);
  size(lse_, S);
}

Status Qwen3Model::forward(const CpuContext& ctx, const Qwen3Batch& b, float* logprob,
                           float* entropy) {
  have_acts_ = false;  // a failed forward leaves nothing for backward to use
  NPR_TRY(qwen3_validate_batch(cfg_, b));
  const int64_t T = b.tokens, H = cfg_.hidden, I = cfg_.intermediate, D = cfg_.head_dim;
  const int64_t qd = cfg_.heads * D, kd = cfg_.kv_heads * D;
  const float* W = weights_.data();

  // Keep our own copy of the batch description: backward must not depend on caller memory.
  T_ = T;
  ids_.assign(b.ids, b.ids + T);
  positions_.assign(b.positions, b.positions + T);
  prev_.assign(b.prev, b.prev + T);
  const StructureView& in = b.structure;
  cu_seqlens_.assign(in.cu_seqlens, in.cu_seqlens + in.sequences + 1);
  block_.assign(in.block, in.block + T * in.depth);
  step_ids_.assign(in.step, in.step + T * in.depth);
  st_ =
      StructureView{T, in.sequences, cu_seqlens_.data(), in.depth, block_.data(), step_ids_.data()};
  rows_.clear();
  targets_.clear();
  for (int64_t t = 0; t < T; ++t) {
    if (prev_[t] < 0) continue;
    rows_.push_back(prev_[t]);
    targets_.push_back(ids_[t]);
  }
  const int64_t S = static_cast<int64_t>(rows_.size());
  try {
    reserve_activations(T, S);
  } catch (const std::bad_alloc&) {
    return Status::oom("qwen3 forward: could not allocate the activations of " + std::to_string(T) +
                       " tokens");
  }
  NPR_TRY(attention_plan(st_, &plan_));  // once per forward: every layer and backward reuse it
  rope_table_build(&rope_, positions_.data(), T, D, cfg_.rope_theta);
  AttentionShape ash{cfg_.heads, cfg_.kv_heads, D,
                     static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)))};

  std::vector<float> xn(static_cast<size_t>(T * H)), act(static_cast<size_t>(T * I));  // scratch
  embedding_forward(ctx, acts_[0].x_in.data(), W + off_.embed, ids_.data(), T, H);
  for (int64_t l = 0; l < cfg_.layers; ++l) {
    LayerActs& a = acts_[l];
    const LayerOffsets& o = off_.layers[l];
    // Attention block.
    rmsnorm_forward(ctx, xn.data(), a.rstd1.data(), a.x_in.data(), W + o.in_norm, T, H,
                    cfg_.rms_eps);
    linear_forward(ctx, a.q_pre.data(), xn.data(), W + o.wq, T, H, qd, 0.0f);
    linear_forward(ctx, a.k_pre.data(), xn.data(), W + o.wk, T, H, kd, 0.0f);
    linear_forward(ctx, a.v.data(), xn.data(), W + o.wv, T, H, kd, 0.0f);
    rmsnorm_forward(ctx, a.q.data(), a.q_rstd.data(), a.q_pre.data(), W + o.q_norm, T * cfg_.heads,
                    D, cfg_.rms_eps);
    rmsnorm_forward(ctx, a.k.data(), a.k_rstd.data(), a.k_pre.data(), W + o.k_norm,
                    T * cfg_.kv_heads, D, cfg_.rms_eps);
    rope_apply(ctx, a.q.data(), rope_, cfg_.heads, D, false);
    rope_apply(ctx, a.k.data(), rope_, cfg_.kv_heads, D, false);
    NPR_TRY(attention_forward_fused(ctx, plan_, a.attn.data(), a.lse.data(), a.q.data(), a.k.data(),
                                    a.v.data(), ash));
    std::memcpy(a.x_mid.data(), a.x_in.data(), sizeof(float) * T * H);
    linear_forward(ctx, a.x_mid.data(), a.attn.data(), W + o.wo, T, qd, H, 1.0f);
    // MLP block.
    rmsnorm_forward(ctx, xn.data(), a.rstd2.data(), a.x_mid.data(), W + o.post_norm, T, H,
                    cfg_.rms_eps);
    linear_forward(ctx, a.gate.data(), xn.data(), W + o.w_gate, T, H, I, 0.0f);
    linear_forward(ctx, a.up.data(), xn.data(), W + o.w_up, T, H, I, 0.0f);
    swiglu_forward(ctx, act.data(), a.gate.data(), a.up.data(), T * I);
    float* next = l + 1 < cfg_.layers ? acts_[l + 1].x_in.data() : x_out_.data();
    std::memcpy(next, a.x_mid.data(), sizeof(float) * T * H);
    linear_forward(ctx, next, act.data(), W + o.w_down, T, I, H, 1.0f);
  }

  // The head on the scored rows only.
  for (int64_t r = 0; r < S; ++r)
    std::memcpy(h_rows_.data() + r * H, x_out_.data() + static_cast<int64_t>(rows_[r]) * H,
                sizeof(float) * H);
  std::vector<float> lp(static_cast<size_t>(S)), ent(entropy ? static_cast<size_t>(S) : 0);
  LogprobHeadShape hs{S, H, cfg_.vocab, cfg_.rms_eps};
  NPR_TRY(logprob_head_forward(ctx, lp.data(), lse_.data(), entropy ? ent.data() : nullptr,
                               hn_.data(), rstd_f_.data(), h_rows_.data(), W + off_.final_norm,
                               W + off_.lm_head, targets_.data(), hs));
  for (int64_t t = 0, r = 0; t < T; ++t) {
    const bool scored = prev_[t] >= 0;
    logprob[t] = scored ? lp[r] : 0.0f;
    if (entropy) entropy[t] = scored ? ent[r] : 0.0f;
    r += scored ? 1 : 0;
  }
  have_acts_ = true;
  return Status::ok();
}

}  // namespace npr
