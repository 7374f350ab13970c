// The trainer's device ops after the forward (kernels/policy_loss_cuda.h: the policy loss and
// its dlogprob; sampler/token_logprob_cuda.h: log-probabilities of chosen tokens from device
// logits) under the emulator, for test_emu_loss.cpp. Plain types only: compiled into the
// emulator build (emu_loss.cpp, where namespace npr is npr_emu) and into the test.
#pragma once

#include <cstdint>
#include <string>

namespace emu {

// PolicyLossParams and PolicyLossMetrics, field for field (kind and aggregation as their enums'
// values).
struct LossParams {
  int kind, aggregation;
  float eps_low, eps_high, clip_c;
  bool exempt_special;
  double denominator;
  float log_ratio_limit;
};
struct LossMetrics {
  double loss;
  int64_t tokens, special_tokens;
  double clip_frac, clip_frac_lower, special_clip_frac;
  double ratio_mean, ratio_min, ratio_max, approx_kl;
};

// The host arrays go to the emulated device, policy_loss_cuda runs, dlogprob (T) and the
// metrics come back. lp, lp_old, adv, mask (T); special (T) or null; cu_seqlens (S + 1).
// Returns "" or the error (Status::to_string).
std::string policy_loss_on_device(float* dlogprob, LossMetrics* m, const float* lp,
                                  const float* lp_old, const float* adv, const float* mask,
                                  const uint8_t* special, const int32_t* cu_seqlens,
                                  int64_t sequences, int64_t tokens, const LossParams& p);

// token_logprobs_cuda over logits (rows, vocab) uploaded from the host; queries as (row, token)
// pairs, (n, 2); out (n).
std::string token_logprobs_on_device(float* out, const float* logits, int64_t rows, int64_t vocab,
                                     const int32_t* queries, int64_t n);

}  // namespace emu
