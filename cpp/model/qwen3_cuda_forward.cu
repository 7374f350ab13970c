// Qwen3CudaModel::forward: the batch description goes up once (ids, rows, targets, rope tables,
// the attention plan, the index-add plans backward needs), then embedding -> layers -> the
// chunked logprob head on the scored rows, all on the device; logprobs come back.
#include <cmath>
#include <cstring>
#include <string>

#include "kernels/elementwise_cuda.h"
#include "kernels/linear_cuda.h"
#include "kernels/logprob_head_cuda.h"
#include "kernels/rmsnorm_cuda.h"
#include "kernels/rope.h"
#include "kernels/rope_cuda.h"
#include "kernels/swiglu_cuda.h"
#include "model/qwen3_cuda_model.h"

namespace npr {

namespace {

// Hands out 256-byte aligned pieces of one device buffer; first a sizing pass with base null.
class Carver {
 public:
  explicit Carver(char* base) : base_(base) {}
  void* take(int64_t bytes) {
    void* p = base_ ? base_ + used_ : nullptr;
    used_ += (bytes + 255) / 256 * 256;
    return p;
  }
  float* f32(int64_t n) { return static_cast<float*>(take(4 * n)); }
  int32_t* i32(int64_t n) { return static_cast<int32_t*>(take(4 * n)); }
  int64_t used() const { return used_; }

 private:
  char* base_;
  int64_t used_ = 0;
};

}  // namespace

Status Qwen3CudaModel::reserve_activations(int64_t T, int64_t S) {
  const int64_t H = cfg_.hidden, I = cfg_.intermediate, D = cfg_.head_dim;
  const int64_t qd = cfg_.heads * D, kd = cfg_.kv_heads * D, ts = dev_dtype_size(t_);
  auto carve = [&](Carver& c) {
    acts_.resize(static_cast<size_t>(cfg_.layers));
    for (LayerActs& a : acts_) {
      a.x_in = c.f32(T * H);
      a.x_mid = c.f32(T * H);
      a.rstd1 = c.f32(T);
      a.rstd2 = c.f32(T);
      a.q_pre = c.take(ts * T * qd);
      a.k_pre = c.take(ts * T * kd);
      a.q_rstd = c.f32(T * cfg_.heads);
      a.k_rstd = c.f32(T * cfg_.kv_heads);
      a.q = c.take(ts * T * qd);
      a.k = c.take(ts * T * kd);
      a.v = c.take(ts * T * kd);
      a.attn = c.take(ts * T * qd);
      a.lse = c.f32(T * cfg_.heads);
      a.gate = c.take(ts * T * I);
      a.up = c.take(ts * T * I);
    }
    x_out_ = c.f32(T * H);
    h_rows_ = c.f32(S * H);
    hn_ = c.take(ts * S * H);
    rstd_f_ = c.f32(S);
    lse_f_ = c.f32(S);
    lp_ = c.f32(S);
    ent_ = c.f32(S);
  };
  Carver sizing(nullptr);
  carve(sizing);
  NPR_TRY(
      acts_buf_.grow(ctx_->alloc(), sizing.used(),
                     ("qwen3 (cuda): activations of " + std::to_string(T) + " tokens").c_str()));
  Carver real(static_cast<char*>(acts_buf_.get()));
  carve(real);
  return Status::ok();
}

Status Qwen3CudaModel::forward(const Qwen3Batch& b, float* logprob, float* entropy) {
  have_acts_ = false;  // a failed forward leaves nothing for backward to use
  NPR_TRY(qwen3_validate_batch(cfg_, b));
  CudaContext& ctx = *ctx_;
  const int64_t T = b.tokens, H = cfg_.hidden, I = cfg_.intermediate, D = cfg_.head_dim;
  const int64_t qd = cfg_.heads * D, kd = cfg_.kv_heads * D;

  // Host side of the batch: scored rows, their targets, rope tables, plans.
  prev_.assign(b.prev, b.prev + T);
  std::vector<int32_t> rows, targets;
  for (int64_t t = 0; t < T; ++t) {
    if (prev_[t] < 0) continue;
    rows.push_back(prev_[t]);
    targets.push_back(b.ids[t]);
  }
  const int64_t S = static_cast<int64_t>(rows.size());
  AttentionPlan plan;
  NPR_TRY(attention_plan(b.structure, &plan));
  NPR_TRY(plan_.upload(ctx, plan));
  RopeTable rope;
  rope_table_build(&rope, b.positions, T, D, cfg_.rope_theta);
  NPR_TRY(rows_plan_.upload(ctx, index_add_plan(rows.data(), S)));
  NPR_TRY(ids_plan_.upload(ctx, index_add_plan(b.ids, T)));

  Carver sizing(nullptr);
  sizing.i32(T);
  sizing.i32(S);
  sizing.i32(S);
  sizing.f32(T * D / 2);
  sizing.f32(T * D / 2);
  NPR_TRY(batch_buf_.grow(ctx.alloc(), sizing.used(), "qwen3 (cuda): batch description"));
  Carver c(static_cast<char*>(batch_buf_.get()));
  ids_ = c.i32(T);
  rows_ = c.i32(S);
  targets_ = c.i32(S);
  cos_ = c.f32(T * D / 2);
  sin_ = c.f32(T * D / 2);
  NPR_TRY(ctx.upload(ids_, b.ids, 4 * T, "qwen3 (cuda): ids"));
  NPR_TRY(ctx.upload(rows_, rows.data(), 4 * S, "qwen3 (cuda): rows"));
  NPR_TRY(ctx.upload(targets_, targets.data(), 4 * S, "qwen3 (cuda): targets"));
  NPR_TRY(ctx.upload(cos_, rope.cos.data(), 4 * T * (D / 2), "qwen3 (cuda): rope cos"));
  NPR_TRY(ctx.upload(sin_, rope.sin.data(), 4 * T * (D / 2), "qwen3 (cuda): rope sin"));
  NPR_TRY(reserve_activations(T, S));
  T_ = T;
  S_ = S;

  // Per-forward scratch: xn (T, H) and act (T, I) of type t.
  const int64_t ts = dev_dtype_size(t_);
  void* scratch = nullptr;
  NPR_TRY(ctx.scratch(CudaContext::kScratchModel, ts * T * (H + I), &scratch));
  void* xn = scratch;
  void* act = static_cast<char*>(scratch) + ts * T * H;
  const DevDType F32 = DevDType::kF32;
  AttentionShape ash{cfg_.heads, cfg_.kv_heads, D,
                     static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)))};

  NPR_TRY(embedding_forward_cuda(ctx, t_, acts_[0].x_in, W(off_.embed), ids_, T, H));
  for (int64_t l = 0; l < cfg_.layers; ++l) {
    LayerActs& a = acts_[l];
    const LayerOffsets& o = off_.layers[l];
    // Attention block.
    NPR_TRY(rmsnorm_forward_cuda(ctx, F32, t_, xn, a.rstd1, a.x_in, master(o.in_norm), T, H,
                                 cfg_.rms_eps));
    NPR_TRY(linear_forward_cuda(ctx, t_, t_, a.q_pre, xn, W(o.wq), T, H, qd, 0.0f));
    NPR_TRY(linear_forward_cuda(ctx, t_, t_, a.k_pre, xn, W(o.wk), T, H, kd, 0.0f));
    NPR_TRY(linear_forward_cuda(ctx, t_, t_, a.v, xn, W(o.wv), T, H, kd, 0.0f));
    NPR_TRY(rmsnorm_forward_cuda(ctx, t_, t_, a.q, a.q_rstd, a.q_pre, master(o.q_norm),
                                 T * cfg_.heads, D, cfg_.rms_eps));
    NPR_TRY(rmsnorm_forward_cuda(ctx, t_, t_, a.k, a.k_rstd, a.k_pre, master(o.k_norm),
                                 T * cfg_.kv_heads, D, cfg_.rms_eps));
    NPR_TRY(rope_apply_cuda(ctx, t_, a.q, cos_, sin_, T, cfg_.heads, D, false));
    NPR_TRY(rope_apply_cuda(ctx, t_, a.k, cos_, sin_, T, cfg_.kv_heads, D, false));
    NPR_TRY(attention_forward_cuda(ctx, t_, plan_, a.attn, a.lse, a.q, a.k, a.v, ash));
    NPR_TRY(cast_cuda(ctx, F32, F32, a.x_mid, a.x_in, T * H));
    NPR_TRY(linear_forward_cuda(ctx, t_, F32, a.x_mid, a.attn, W(o.wo), T, qd, H, 1.0f));
    // MLP block.
    NPR_TRY(rmsnorm_forward_cuda(ctx, F32, t_, xn, a.rstd2, a.x_mid, master(o.post_norm), T, H,
                                 cfg_.rms_eps));
    NPR_TRY(linear_forward_cuda(ctx, t_, t_, a.gate, xn, W(o.w_gate), T, H, I, 0.0f));
    NPR_TRY(linear_forward_cuda(ctx, t_, t_, a.up, xn, W(o.w_up), T, H, I, 0.0f));
    NPR_TRY(swiglu_forward_cuda(ctx, t_, act, a.gate, a.up, T * I));
    float* next = l + 1 < cfg_.layers ? acts_[l + 1].x_in : x_out_;
    NPR_TRY(cast_cuda(ctx, F32, F32, next, a.x_mid, T * H));
    NPR_TRY(linear_forward_cuda(ctx, t_, F32, next, act, W(o.w_down), T, I, H, 1.0f));
  }

  // The head on the scored rows only.
  std::vector<float> lp(static_cast<size_t>(S)), ent(entropy ? static_cast<size_t>(S) : 0);
  if (S > 0) {
    NPR_TRY(gather_rows_cuda(ctx, h_rows_, x_out_, rows_, S, H));
    LogprobHeadShape hs{S, H, cfg_.vocab, cfg_.rms_eps};
    NPR_TRY(logprob_head_forward_cuda(ctx, t_, lp_, lse_f_, entropy ? ent_ : nullptr, hn_, rstd_f_,
                                      h_rows_, master(off_.final_norm), W(off_.lm_head), targets_,
                                      hs));
    NPR_TRY(ctx.download(lp.data(), lp_, 4 * S, "qwen3 (cuda): logprobs"));
    if (entropy) NPR_TRY(ctx.download(ent.data(), ent_, 4 * S, "qwen3 (cuda): entropies"));
  }
  NPR_TRY(ctx.sync("qwen3 (cuda): forward"));
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
