// policyLoss(inputs, options, dlogprob) -> metrics: the fused policy loss of
// cpp/kernels/policy_loss.h on the calling thread (one pass over the tokens: microseconds per
// thousand tokens, not worth a worker).
//   inputs: { logprob, oldLogprob, advantages, lossMask: Float32Array (T),
//             specialMask?: Uint8Array (T), cuSeqlens: Int32Array (S + 1) }
//   options: { kind?: 'ppo-clip' | 'papo' = 'ppo-clip',
//              aggregation?: 'token-mean' | 'seq-mean-token-sum' | 'seq-mean-token-mean',
//              epsLow? = 0.2, epsHigh? = 0.28, clipC? = 10, exemptSpecial? = false,
//              denominator? = 0, logRatioLimit? = 20 }
//   dlogprob: Float32Array (T), written (dLoss/dlogprob; 0 outside the mask)
// oldLogprob is read only by 'ppo-clip' (PAPO is strictly on-policy).
#include <string>

#include "addon/args.h"
#include "addon/bindings.h"
#include "kernels/policy_loss.h"

namespace npr::addon {

namespace {

constexpr const char* kFn = "policyLoss";

Napi::Value policy_loss_js(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object in = object_arg(info, 0, kFn, "inputs", false);
  Napi::Object po = object_arg(info, 1, kFn, "options", true);
  F32Arg out = f32_arg(info, 2, kFn, "dlogprob");
  const size_t T = static_cast<size_t>(out.length);
  auto lp = typed_field<Napi::Float32Array>(in, kFn, "logprob", napi_float32_array,
                                            "a Float32Array", false, T, true);
  auto adv = typed_field<Napi::Float32Array>(in, kFn, "advantages", napi_float32_array,
                                             "a Float32Array", false, T, true);
  auto mask = typed_field<Napi::Float32Array>(in, kFn, "lossMask", napi_float32_array,
                                              "a Float32Array", false, T, true);
  auto special = typed_field<Napi::Uint8Array>(in, kFn, "specialMask", napi_uint8_array,
                                               "a Uint8Array", true, T, true);
  auto cu = typed_field<Napi::Int32Array>(in, kFn, "cuSeqlens", napi_int32_array, "an Int32Array",
                                          false, 0, false);
  if (cu.ElementLength() < 2)
    throw_range(env, "policyLoss: cuSeqlens must hold at least 2 entries (one sequence)");

  PolicyLossParams p;
  const std::string kind = enum_field(po, kFn, "kind", {"ppo-clip", "papo"}, "ppo-clip");
  p.kind = kind == "papo" ? PolicyLossKind::kPapo : PolicyLossKind::kPpoClip;
  const std::string agg =
      enum_field(po, kFn, "aggregation",
                 {"token-mean", "seq-mean-token-sum", "seq-mean-token-mean"}, "token-mean");
  p.aggregation = agg == "token-mean"           ? LossAggregation::kTokenMean
                  : agg == "seq-mean-token-sum" ? LossAggregation::kSeqMeanTokenSum
                                                : LossAggregation::kSeqMeanTokenMean;
  p.eps_low = static_cast<float>(number_field(po, kFn, "epsLow", true, 0.2));
  p.eps_high = static_cast<float>(number_field(po, kFn, "epsHigh", true, 0.28));
  p.clip_c = static_cast<float>(number_field(po, kFn, "clipC", true, 10.0));
  p.exempt_special = bool_field(po, kFn, "exemptSpecial", false);
  p.denominator = number_field(po, kFn, "denominator", true, 0.0);
  p.log_ratio_limit = static_cast<float>(number_field(po, kFn, "logRatioLimit", true, 20.0));

  // PAPO never reads oldLogprob: it may be omitted there.
  Napi::Float32Array old;
  if (p.kind == PolicyLossKind::kPpoClip || !in.Get("oldLogprob").IsUndefined())
    old = typed_field<Napi::Float32Array>(in, kFn, "oldLogprob", napi_float32_array,
                                          "a Float32Array", false, T, true);
  for (const auto* other : {&lp, &adv, &mask})
    if (other->Data() == out.data)
      throw_range(env, "policyLoss: dlogprob must not share memory with an input");

  PolicyLossMetrics m;
  Status st =
      policy_loss(out.data, &m, lp.Data(), old.IsEmpty() ? lp.Data() : old.Data(), adv.Data(),
                  mask.Data(), special.IsEmpty() ? nullptr : special.Data(), cu.Data(),
                  static_cast<int64_t>(cu.ElementLength()) - 1, static_cast<int64_t>(T), p);
  if (!st.is_ok()) throw_status(env, st);
  Napi::Object r = Napi::Object::New(env);
  r.Set("loss", m.loss);
  r.Set("tokens", static_cast<double>(m.tokens));
  r.Set("specialTokens", static_cast<double>(m.special_tokens));
  r.Set("clipFrac", m.clip_frac);
  r.Set("clipFracLower", m.clip_frac_lower);
  r.Set("specialClipFrac", m.special_clip_frac);
  r.Set("ratioMean", m.ratio_mean);
  r.Set("ratioMin", m.ratio_min);
  r.Set("ratioMax", m.ratio_max);
  r.Set("approxKl", m.approx_kl);
  return r;
}

}  // namespace

void register_trainer(Napi::Env env, Napi::Object exports) {
  exports.Set("policyLoss", Napi::Function::New(env, policy_loss_js, "policyLoss"));
  register_optimizer_state(env, exports);
}

}  // namespace npr::addon
