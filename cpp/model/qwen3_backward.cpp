// Qwen3Model::backward: the head, then every layer in reverse (MLP block, attention block),
// then the embedding. Gradients accumulate into grads_ (zero_grad resets them), so several
// micro-batches can be summed before one optimizer step. Normed activations and the SwiGLU
// output are recomputed from the saved rstd / gate / up rather than stored.
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

namespace {
// y (rows, dim) = x * rstd * w, from a saved rstd.
void renorm(float* y, const float* x, const float* rstd, const float* w, int64_t rows,
            int64_t dim) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < dim; ++i) y[r * dim + i] = x[r * dim + i] * rstd[r] * w[i];
}
void add_into(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}
}  // namespace

Status Qwen3Model::backward(const CpuContext& ctx, const float* dlogprob) {
  if (!have_acts_)
    return Status::invalid("qwen3 backward: call forward first (each forward allows one backward)");
  have_acts_ = false;
  const int64_t T = T_, H = cfg_.hidden, I = cfg_.intermediate, D = cfg_.head_dim;
  const int64_t qd = cfg_.heads * D, kd = cfg_.kv_heads * D;
  const int64_t S = static_cast<int64_t>(rows_.size());
  const float* W = weights_.data();
  float* G = grads_.data();
  for (int64_t t = 0; t < T; ++t)
    if (!std::isfinite(dlogprob[t]))
      return Status::invalid("qwen3 backward: dlogprob[" + std::to_string(t) + "] is not finite");

  // Head: scored rows back to the residual stream at their prev positions.
  std::vector<float> dlp(static_cast<size_t>(S)), dh_rows(static_cast<size_t>(S * H));
  for (int64_t t = 0, r = 0; t < T; ++t)
    if (prev_[t] >= 0) dlp[r++] = dlogprob[t];
  LogprobHeadShape hs{S, H, cfg_.vocab, cfg_.rms_eps};
  NPR_TRY(logprob_head_backward(ctx, dh_rows.data(), G + off_.final_norm, G + off_.lm_head,
                                dlp.data(), h_rows_.data(), hn_.data(), rstd_f_.data(), lse_.data(),
                                W + off_.final_norm, W + off_.lm_head, targets_.data(), hs));
  std::vector<float> dx(static_cast<size_t>(T * H), 0.0f);  // d loss / d residual stream
  for (int64_t r = 0; r < S; ++r)
    add_into(dx.data() + static_cast<int64_t>(rows_[r]) * H, dh_rows.data() + r * H, H);

  // Scratch (T = tokens).
  std::vector<float> xn(T * H), dxn(T * H), dpart(T * H);  // (T, H)
  std::vector<float> act(T * I), dact(T * I);              // (T, I)
  std::vector<float> dq(T * qd), dk(T * kd), dv(T * kd), dattn(T * qd);
  AttentionShape ash{cfg_.heads, cfg_.kv_heads, D,
                     static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)))};

  for (int64_t l = cfg_.layers - 1; l >= 0; --l) {
    LayerActs& a = acts_[l];
    const LayerOffsets& o = off_.layers[l];
    // MLP block: x_next = x_mid + down(swiglu(gate(xn), up(xn))), xn = norm2(x_mid).
    swiglu_forward(ctx, act.data(), a.gate.data(), a.up.data(), T * I);
    linear_backward_w(ctx, G + o.w_down, dx.data(), act.data(), T, I, H);
    linear_backward_x(ctx, dact.data(), dx.data(), W + o.w_down, T, I, H, 0.0f);
    swiglu_backward(ctx, a.gate.data(), a.up.data(), dact.data(), a.gate.data(), a.up.data(),
                    T * I);
    renorm(xn.data(), a.x_mid.data(), a.rstd2.data(), W + o.post_norm, T, H);
    linear_backward_w(ctx, G + o.w_gate, a.gate.data(), xn.data(), T, H, I);
    linear_backward_w(ctx, G + o.w_up, a.up.data(), xn.data(), T, H, I);
    linear_backward_x(ctx, dxn.data(), a.gate.data(), W + o.w_gate, T, H, I, 0.0f);
    linear_backward_x(ctx, dxn.data(), a.up.data(), W + o.w_up, T, H, I, 1.0f);
    rmsnorm_backward(ctx, dpart.data(), G + o.post_norm, dxn.data(), a.x_mid.data(),
                     W + o.post_norm, a.rstd2.data(), T, H);
    add_into(dx.data(), dpart.data(), T * H);  // now d / d x_mid

    // Attention block: x_mid = x_in + o_proj(attention(rope(norm_q(q)), rope(norm_k(k)), v)).
    linear_backward_w(ctx, G + o.wo, dx.data(), a.attn.data(), T, qd, H);
    linear_backward_x(ctx, dattn.data(), dx.data(), W + o.wo, T, qd, H, 0.0f);
    NPR_TRY(attention_backward_fused(ctx, plan_, dq.data(), dk.data(), dv.data(), dattn.data(),
                                     a.q.data(), a.k.data(), a.v.data(), a.attn.data(),
                                     a.lse.data(), ash));
    rope_apply(ctx, dq.data(), rope_, cfg_.heads, D, true);
    rope_apply(ctx, dk.data(), rope_, cfg_.kv_heads, D, true);
    // q/k norm backward, written over the saved pre-norm buffers' gradients (dq, dk in place).
    rmsnorm_backward(ctx, dq.data(), G + o.q_norm, dq.data(), a.q_pre.data(), W + o.q_norm,
                     a.q_rstd.data(), T * cfg_.heads, D);
    rmsnorm_backward(ctx, dk.data(), G + o.k_norm, dk.data(), a.k_pre.data(), W + o.k_norm,
                     a.k_rstd.data(), T * cfg_.kv_heads, D);
    renorm(xn.data(), a.x_in.data(), a.rstd1.data(), W + o.in_norm, T, H);
    linear_backward_w(ctx, G + o.wq, dq.data(), xn.data(), T, H, qd);
    linear_backward_w(ctx, G + o.wk, dk.data(), xn.data(), T, H, kd);
    linear_backward_w(ctx, G + o.wv, dv.data(), xn.data(), T, H, kd);
    linear_backward_x(ctx, dxn.data(), dq.data(), W + o.wq, T, H, qd, 0.0f);
    linear_backward_x(ctx, dxn.data(), dk.data(), W + o.wk, T, H, kd, 1.0f);
    linear_backward_x(ctx, dxn.data(), dv.data(), W + o.wv, T, H, kd, 1.0f);
    rmsnorm_backward(ctx, dpart.data(), G + o.in_norm, dxn.data(), a.x_in.data(), W + o.in_norm,
                     a.rstd1.data(), T, H);
    add_into(dx.data(), dpart.data(), T * H);  // now d / d x_in
  }
  embedding_backward(ctx, G + off_.embed, dx.data(), ids_.data(), T, H);
  return Status::ok();
}

}  // namespace npr
