// Qwen3CudaModel::backward: the head, every layer in reverse (MLP block, attention block), the
// embedding; the same order and recomputations as qwen3_backward.cpp, on the device. Gradients
// of activations that feed GEMMs are of the compute type; the residual stream's gradient and
// every sum of several GEMMs stay fp32; parameter gradients accumulate in fp32.
#include <cmath>
#include <string>
#include <vector>

#include "kernels/elementwise_cuda.h"
#include "kernels/linear_cuda.h"
#include "kernels/logprob_head_cuda.h"
#include "kernels/rmsnorm_cuda.h"
#include "kernels/rope_cuda.h"
#include "kernels/swiglu_cuda.h"
#include "model/qwen3_cuda_model.h"

namespace npr {

Status Qwen3CudaModel::backward(const float* dlogprob) {
  if (!have_acts_)
    return Status::invalid(
        "qwen3 backward (cuda): call forward first (each forward allows one backward)");
  const int64_t T = T_, S = S_, H = cfg_.hidden, I = cfg_.intermediate, D = cfg_.head_dim;
  const int64_t qd = cfg_.heads * D, kd = cfg_.kv_heads * D, ts = dev_dtype_size(t_);
  for (int64_t t = 0; t < T; ++t)
    if (!std::isfinite(dlogprob[t]))
      return Status::invalid("qwen3 backward (cuda): dlogprob[" + std::to_string(t) +
                             "] is not finite");
  have_acts_ = false;
  CudaContext& ctx = *ctx_;
  const DevDType F32 = DevDType::kF32;

  // Scratch, carved by hand (sizes in elements): fp32 dx, dxn, dpart (T, H), dh_rows (S, H),
  // dlp (S), rstd (T * max heads); type t: xn, dx_t (T, H), act, dact (T, I), dq, dattn (T, qd),
  // dk, dv (T, kd).
  const int64_t rstd_n = T * (cfg_.heads > 1 ? cfg_.heads : 1);
  const int64_t f32_elems = 3 * T * H + S * H + S + rstd_n;
  const int64_t t_elems = 2 * T * H + 2 * T * I + 2 * T * qd + 2 * T * kd;
  auto round_up = [](int64_t bytes) { return (bytes + 255) / 256 * 256; };
  void* base = nullptr;
  NPR_TRY(ctx.scratch(CudaContext::kScratchModel, round_up(4 * f32_elems) + ts * t_elems, &base));
  float* fp = static_cast<float*>(base);
  float* dx = fp;                  // (T, H) d loss / d residual stream
  float* dxn = dx + T * H;         // (T, H)
  float* dpart = dxn + T * H;      // (T, H)
  float* dh_rows = dpart + T * H;  // (S, H)
  float* dlp = dh_rows + S * H;    // (S)
  float* rstd_tmp = dlp + S;       // (T * heads) recomputed rstd, discarded
  char* tp = static_cast<char*>(base) + round_up(4 * f32_elems);
  auto take_t = [&](int64_t n) {
    void* p = tp;
    tp += ts * n;
    return p;
  };
  void* xn = take_t(T * H);
  void* dx_t = take_t(T * H);
  void* act = take_t(T * I);
  void* dact = take_t(T * I);
  void* dq = take_t(T * qd);
  void* dattn = take_t(T * qd);
  void* dk = take_t(T * kd);
  void* dv = take_t(T * kd);

  // Head: scored rows back to the residual stream at their prev positions.
  NPR_TRY(ctx.zero(dx, 4 * T * H, "qwen3 backward (cuda): zero dx"));
  if (S > 0) {
    std::vector<float> dl(static_cast<size_t>(S));
    for (int64_t t = 0, r = 0; t < T; ++t)
      if (prev_[t] >= 0) dl[r++] = dlogprob[t];
    NPR_TRY(ctx.upload(dlp, dl.data(), 4 * S, "qwen3 backward (cuda): dlogprob"));
    LogprobHeadShape hs{S, H, cfg_.vocab, cfg_.rms_eps};
    NPR_TRY(logprob_head_backward_cuda(ctx, t_, dh_rows, grad(off_.final_norm), grad(off_.lm_head),
                                       dlp, h_rows_, hn_, rstd_f_, lse_f_, master(off_.final_norm),
                                       W(off_.lm_head), targets_, hs));
    NPR_TRY(index_add_rows_cuda(ctx, dx, dh_rows, rows_plan_, H));
  }

  AttentionShape ash{cfg_.heads, cfg_.kv_heads, D,
                     static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)))};
  for (int64_t l = cfg_.layers - 1; l >= 0; --l) {
    LayerActs& a = acts_[l];
    const LayerOffsets& o = off_.layers[l];
    // MLP block: x_next = x_mid + down(swiglu(gate(xn), up(xn))), xn = norm2(x_mid).
    NPR_TRY(swiglu_forward_cuda(ctx, t_, act, a.gate, a.up, T * I));
    NPR_TRY(cast_cuda(ctx, F32, t_, dx_t, dx, T * H));
    NPR_TRY(linear_backward_w_cuda(ctx, t_, grad(o.w_down), dx_t, act, T, I, H));
    NPR_TRY(linear_backward_x_cuda(ctx, t_, t_, dact, dx_t, W(o.w_down), T, I, H, 0.0f));
    NPR_TRY(swiglu_backward_cuda(ctx, t_, a.gate, a.up, dact, a.gate, a.up, T * I));
    NPR_TRY(rmsnorm_forward_cuda(ctx, F32, t_, xn, rstd_tmp, a.x_mid, master(o.post_norm), T, H,
                                 cfg_.rms_eps));
    NPR_TRY(linear_backward_w_cuda(ctx, t_, grad(o.w_gate), a.gate, xn, T, H, I));
    NPR_TRY(linear_backward_w_cuda(ctx, t_, grad(o.w_up), a.up, xn, T, H, I));
    NPR_TRY(linear_backward_x_cuda(ctx, t_, F32, dxn, a.gate, W(o.w_gate), T, H, I, 0.0f));
    NPR_TRY(linear_backward_x_cuda(ctx, t_, F32, dxn, a.up, W(o.w_up), T, H, I, 1.0f));
    NPR_TRY(rmsnorm_backward_cuda(ctx, F32, dpart, grad(o.post_norm), dxn, a.x_mid,
                                  master(o.post_norm), a.rstd2, T, H));
    NPR_TRY(add_cuda(ctx, dx, dpart, T * H));  // now d / d x_mid

    // Attention block: x_mid = x_in + o_proj(attention(rope(norm_q(q)), rope(norm_k(k)), v)).
    NPR_TRY(cast_cuda(ctx, F32, t_, dx_t, dx, T * H));
    NPR_TRY(linear_backward_w_cuda(ctx, t_, grad(o.wo), dx_t, a.attn, T, qd, H));
    NPR_TRY(linear_backward_x_cuda(ctx, t_, t_, dattn, dx_t, W(o.wo), T, qd, H, 0.0f));
    NPR_TRY(attention_backward_cuda(ctx, t_, plan_, dq, dk, dv, dattn, a.q, a.k, a.v, a.attn, a.lse,
                                    ash));
    NPR_TRY(rope_apply_cuda(ctx, t_, dq, cos_, sin_, T, cfg_.heads, D, true));
    NPR_TRY(rope_apply_cuda(ctx, t_, dk, cos_, sin_, T, cfg_.kv_heads, D, true));
    NPR_TRY(rmsnorm_backward_cuda(ctx, t_, dq, grad(o.q_norm), dq, a.q_pre, master(o.q_norm),
                                  a.q_rstd, T * cfg_.heads, D));
    NPR_TRY(rmsnorm_backward_cuda(ctx, t_, dk, grad(o.k_norm), dk, a.k_pre, master(o.k_norm),
                                  a.k_rstd, T * cfg_.kv_heads, D));
    NPR_TRY(rmsnorm_forward_cuda(ctx, F32, t_, xn, rstd_tmp, a.x_in, master(o.in_norm), T, H,
                                 cfg_.rms_eps));
    NPR_TRY(linear_backward_w_cuda(ctx, t_, grad(o.wq), dq, xn, T, H, qd));
    NPR_TRY(linear_backward_w_cuda(ctx, t_, grad(o.wk), dk, xn, T, H, kd));
    NPR_TRY(linear_backward_w_cuda(ctx, t_, grad(o.wv), dv, xn, T, H, kd));
    NPR_TRY(linear_backward_x_cuda(ctx, t_, F32, dxn, dq, W(o.wq), T, H, qd, 0.0f));
    NPR_TRY(linear_backward_x_cuda(ctx, t_, F32, dxn, dk, W(o.wk), T, H, kd, 1.0f));
    NPR_TRY(linear_backward_x_cuda(ctx, t_, F32, dxn, dv, W(o.wv), T, H, kd, 1.0f));
    NPR_TRY(rmsnorm_backward_cuda(ctx, F32, dpart, grad(o.in_norm), dxn, a.x_in, master(o.in_norm),
                                  a.rstd1, T, H));
    NPR_TRY(add_cuda(ctx, dx, dpart, T * H));  // now d / d x_in
  }
  NPR_TRY(index_add_rows_cuda(ctx, grad(off_.embed), dx, ids_plan_, H));
  return ctx.sync("qwen3 backward (cuda)");
}

}  // namespace npr
