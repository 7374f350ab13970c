// emu_loss.h in the emulator build: a context, the inputs uploaded, the device ops.
#include "tests/emu/emu_loss.h"

#include <memory>
#include <vector>

#include "core/cuda_context.h"
#include "kernels/policy_loss_cuda.h"
#include "sampler/token_logprob_cuda.h"
#include "tests/emu/emu_status_message.h"

namespace emu {

namespace {

// A device copy of n bytes of host data (nothing for null data).
npr::Status upload(npr::CudaContext& ctx, npr::DeviceBuffer* b, const void* data, int64_t bytes,
                   const char* what) {
  if (!data) return npr::Status::ok();
  NPR_TRY(b->grow(ctx.alloc(), bytes > 0 ? bytes : 1, what));
  return bytes > 0 ? ctx.upload(b->get(), data, bytes, what) : npr::Status::ok();
}

npr::Status loss(float* dlogprob, LossMetrics* out, const float* lp, const float* lp_old,
                 const float* adv, const float* mask, const uint8_t* special, const int32_t* cu,
                 int64_t S, int64_t T, const LossParams& lp_params) {
  std::unique_ptr<npr::CudaContext> ctx;
  NPR_TRY(npr::CudaContext::create(&ctx));
  npr::DeviceBuffer d_lp, d_old, d_adv, d_mask, d_special, d_grad;
  NPR_TRY(upload(*ctx, &d_lp, lp, 4 * T, "emu loss: lp"));
  NPR_TRY(upload(*ctx, &d_old, lp_old, 4 * T, "emu loss: lp_old"));
  NPR_TRY(upload(*ctx, &d_adv, adv, 4 * T, "emu loss: adv"));
  NPR_TRY(upload(*ctx, &d_mask, mask, 4 * T, "emu loss: mask"));
  NPR_TRY(upload(*ctx, &d_special, special, T, "emu loss: special"));
  NPR_TRY(d_grad.grow(ctx->alloc(), 4 * (T > 0 ? T : 1), "emu loss: dlogprob"));
  npr::PolicyLossParams p;
  p.kind = static_cast<npr::PolicyLossKind>(lp_params.kind);
  p.aggregation = static_cast<npr::LossAggregation>(lp_params.aggregation);
  p.eps_low = lp_params.eps_low;
  p.eps_high = lp_params.eps_high;
  p.clip_c = lp_params.clip_c;
  p.exempt_special = lp_params.exempt_special;
  p.denominator = lp_params.denominator;
  p.log_ratio_limit = lp_params.log_ratio_limit;
  npr::PolicyLossMetrics m;
  NPR_TRY(npr::policy_loss_cuda(*ctx, d_grad.as<float>(), &m, d_lp.as<float>(), d_old.as<float>(),
                                d_adv.as<float>(), d_mask.as<float>(),
                                special ? d_special.as<uint8_t>() : nullptr, cu, S, T, p));
  if (T > 0) NPR_TRY(ctx->download(dlogprob, d_grad.get(), 4 * T, "emu loss: dlogprob"));
  *out = LossMetrics{m.loss,       m.tokens,          m.special_tokens,
                     m.clip_frac,  m.clip_frac_lower, m.special_clip_frac,
                     m.ratio_mean, m.ratio_min,       m.ratio_max,
                     m.approx_kl};
  return npr::Status::ok();
}

npr::Status logprobs(float* out, const float* logits, int64_t rows, int64_t vocab,
                     const int32_t* queries, int64_t n) {
  std::unique_ptr<npr::CudaContext> ctx;
  NPR_TRY(npr::CudaContext::create(&ctx));
  npr::DeviceBuffer d_logits;
  NPR_TRY(upload(*ctx, &d_logits, logits, 4 * rows * vocab, "emu token logprobs: logits"));
  std::vector<npr::TokenQuery> q(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) q[i] = npr::TokenQuery{queries[2 * i], queries[2 * i + 1]};
  return npr::token_logprobs_cuda(*ctx, out, d_logits.as<float>(), rows, vocab, q.data(), n);
}

}  // namespace

std::string policy_loss_on_device(float* dlogprob, LossMetrics* m, const float* lp,
                                  const float* lp_old, const float* adv, const float* mask,
                                  const uint8_t* special, const int32_t* cu_seqlens,
                                  int64_t sequences, int64_t tokens, const LossParams& p) {
  return status_message(
      loss(dlogprob, m, lp, lp_old, adv, mask, special, cu_seqlens, sequences, tokens, p));
}

std::string token_logprobs_on_device(float* out, const float* logits, int64_t rows, int64_t vocab,
                                     const int32_t* queries, int64_t n) {
  return status_message(logprobs(out, logits, rows, vocab, queries, n));
}

}  // namespace emu
