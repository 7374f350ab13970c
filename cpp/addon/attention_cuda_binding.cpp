// attentionCudaTime(options) -> AttentionCudaTiming: times the CUDA block-sparse attention on
// device 0 with CUDA events (kernels/parallel_attention_timing.h) on hash-filled inputs; a
// benchmark entry point (bench/attention-cuda.ts), synchronous, on a fresh CudaContext per call
// so the device memory is returned when it ends.
// options: { heads, kvHeads, headDim, scale? = 1/sqrt(headDim), cuSeqlens: Int32Array
//            (tokens = its last entry), depth? = 0, block?, step?: Int32Array (tokens * depth),
//            dense? = false (plan as plain causal), dtype? = 'bf16' | 'fp32', iters? = 20,
//            warmup? = 3, backward? = true, deterministic? = true, wgmma? = 0 (1: the Hopper
//            kernels with the pipelined one-CTA forward, 2: with the two-CTA one, ... 7, 8: with
//            the warp-specialised TMA forward, 9: 5 with tensor-map copies, 10: the
//            warp-specialised one over 128 keys a step, 11: that ping-ponging;
//            parallel_attention_wgmma.h, where they can run), sampleTokens?: Int32Array (rows of
//            out, dq, dk, dv returned as Float32Array) }.
// The result's forwardKernel says which forward ran: 'wgmma' or 'mma'.
// Without CUDA compiled in, or with no device answering, it throws an Error with code
// 'UNAVAILABLE' whose message gives the reason.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "addon/args.h"
#include "addon/bindings.h"
#include "core/cuda_device.h"
#include "core/structure.h"
#include "kernels/attention.h"
#if defined(NPR_WITH_CUDA)
#include "core/cuda_context.h"
#include "kernels/parallel_attention_timing.h"
#endif

namespace npr::addon {

namespace {

constexpr int64_t kMaxTokens = int64_t{1} << 20;

// An optional (when `optional`) Int32Array field; length checked when length >= 0.
Napi::Int32Array i32_option(const Napi::Object& o, const char* fn, const char* key, int64_t length,
                            bool optional) {
  Napi::Value v = o.Get(key);
  if (optional && v.IsUndefined()) return Napi::Int32Array();
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw_type(o.Env(), std::string(fn) + ": options." + key + " must be an Int32Array (got " +
                            describe_type(v) + ")");
  Napi::Int32Array a = v.As<Napi::Int32Array>();
  if (length >= 0 && static_cast<int64_t>(a.ElementLength()) != length)
    throw_range(o.Env(), std::string(fn) + ": options." + key + " has " +
                             std::to_string(a.ElementLength()) + " elements, expected " +
                             std::to_string(length));
  return a;
}

#if defined(NPR_WITH_CUDA)
Napi::Float32Array f32_copy(Napi::Env env, const std::vector<float>& v) {
  Napi::Float32Array a = Napi::Float32Array::New(env, v.size());
  std::copy(v.begin(), v.end(), a.Data());
  return a;
}
#endif

Napi::Value attention_cuda_time_js(const Napi::CallbackInfo& info) {
  const char* fn = "attentionCudaTime";
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info, 0, fn, "options", false);
  AttentionShape sh;
  sh.heads = int_field(o, fn, "heads", 1, 4096);
  sh.kv_heads = int_field(o, fn, "kvHeads", 1, 4096);
  sh.head_dim = int_field(o, fn, "headDim", 1, 4096);
  if (sh.heads % sh.kv_heads != 0)
    throw_range(env, std::string(fn) + ": options.heads (" + std::to_string(sh.heads) +
                         ") must be a multiple of options.kvHeads (" + std::to_string(sh.kv_heads) +
                         ")");
  sh.scale = static_cast<float>(
      number_field(o, fn, "scale", true, 1.0 / std::sqrt(static_cast<double>(sh.head_dim))));
  Napi::Int32Array cu = i32_option(o, fn, "cuSeqlens", -1, false);
  if (cu.ElementLength() < 2)
    throw_range(env, std::string(fn) + ": options.cuSeqlens needs at least 2 entries");
  const int64_t T = cu[cu.ElementLength() - 1];
  if (T <= 0 || T > kMaxTokens)
    throw_range(env, std::string(fn) + ": options.cuSeqlens must end at a token count in [1, " +
                         std::to_string(kMaxTokens) + "] (got " + std::to_string(T) + ")");
  const int64_t depth = int_field(o, fn, "depth", 0, 16, true, 0);
  StructureView st{T,         static_cast<int64_t>(cu.ElementLength()) - 1,
                   cu.Data(), static_cast<int32_t>(depth),
                   nullptr,   nullptr};
  if (depth > 0) {
    st.block = i32_option(o, fn, "block", T * depth, false).Data();
    st.step = i32_option(o, fn, "step", T * depth, false).Data();
  }
  Status valid = check_structure(st);
  if (!valid.is_ok())
    throw_range(env, std::string(fn) + ": options.cuSeqlens/block/step: " + valid.message());
  const bool dense = bool_field(o, fn, "dense", false);
  const std::string dtype = enum_field(o, fn, "dtype", {"bf16", "fp32"}, "bf16");
  const int iters = static_cast<int>(int_field(o, fn, "iters", 1, 10000, true, 20));
  const int warmup = static_cast<int>(int_field(o, fn, "warmup", 0, 1000, true, 3));
  const bool backward = bool_field(o, fn, "backward", true);
  const bool deterministic = bool_field(o, fn, "deterministic", true);
  const int wgmma = static_cast<int>(int_field(o, fn, "wgmma", 0, 11, true, 0));
  const int wgmma_keys = static_cast<int>(int_field(o, fn, "wgmmaKeys", 64, 128, true, 64));
  if (wgmma_keys != 64 && wgmma_keys != 128)
    throw_range(env, std::string(fn) + ": options.wgmmaKeys must be 64 or 128 (got " +
                         std::to_string(wgmma_keys) + ")");
  Napi::Int32Array samples = i32_option(o, fn, "sampleTokens", -1, true);
  const int64_t sample_count = samples.IsEmpty() ? 0 : samples.ElementLength();
  const int32_t* sample_data = sample_count > 0 ? samples.Data() : nullptr;
  for (int64_t i = 0; i < sample_count; ++i)
    if (sample_data[i] < 0 || sample_data[i] >= T)
      throw_range(env, std::string(fn) + ": options.sampleTokens[" + std::to_string(i) +
                           "] = " + std::to_string(sample_data[i]) + " is outside [0, " +
                           std::to_string(T) + ")");

#if defined(NPR_WITH_CUDA)
  std::unique_ptr<CudaContext> ctx;
  Status s = CudaContext::create(&ctx);
  if (!s.is_ok())
    throw_status(env, Status(s.code(), std::string(fn) +
                                           ": the CUDA backend is not available: " + s.message()));
  ctx->deterministic = deterministic;
  ctx->attention_wgmma = wgmma;
  ctx->attention_wgmma_keys = wgmma_keys;
  AttentionTimingOptions opt;
  opt.iters = iters;
  opt.warmup = warmup;
  opt.backward = backward;
  opt.sample_tokens = sample_data;
  opt.sample_count = sample_count;
  AttentionTiming r;
  s = attention_cuda_time(*ctx, st, sh, dtype == "bf16" ? DevDType::kBF16 : DevDType::kF32, dense,
                          opt, &r);
  if (!s.is_ok()) throw_status(env, Status(s.code(), std::string(fn) + ": " + s.message()));

  Napi::Object out = Napi::Object::New(env);
  auto num = [&](const char* key, double x) { out.Set(key, Napi::Number::New(env, x)); };
  num("fwdMs", r.fwd_ms_median);
  num("fwdMsMin", r.fwd_ms_min);
  out.Set("fwdBwdMs", backward ? Napi::Number::New(env, r.fwdbwd_ms_median) : env.Null());
  out.Set("fwdBwdMsMin", backward ? Napi::Number::New(env, r.fwdbwd_ms_min) : env.Null());
  num("iters", r.iters);
  num("visiblePairs", static_cast<double>(r.visible_pairs));
  num("causalPairs", static_cast<double>(r.causal_pairs));
  num("tilesCausal", static_cast<double>(r.tiles_causal));
  num("tilesFull", static_cast<double>(r.tiles_full));
  num("tilesPartial", static_cast<double>(r.tiles_partial));
  num("tilesSkipped", static_cast<double>(r.tiles_skip));
  num("planBytes", static_cast<double>(r.plan_bytes));
  num("devicePeakBytes", static_cast<double>(r.device_peak_bytes));
  num("nonFiniteOut", static_cast<double>(r.nonfinite_out));
  num("nonFiniteGrads", static_cast<double>(r.nonfinite_grads));
  out.Set("forwardKernel", Napi::String::New(env, r.forward_wgmma ? "wgmma" : "mma"));
  if (sample_count > 0) {
    Napi::Object smp = Napi::Object::New(env);
    smp.Set("out", f32_copy(env, r.sample_out));
    if (backward) {
      smp.Set("dq", f32_copy(env, r.sample_dq));
      smp.Set("dk", f32_copy(env, r.sample_dk));
      smp.Set("dv", f32_copy(env, r.sample_dv));
    }
    out.Set("samples", smp);
  } else {
    out.Set("samples", env.Null());
  }
  return out;
#else
  (void)sh;
  (void)dense;
  (void)dtype;
  (void)iters;
  (void)warmup;
  (void)backward;
  (void)deterministic;
  (void)wgmma;
  throw_status(env, Status::unavailable(std::string(fn) + ": the CUDA backend is not available: " +
                                        cuda_info().reason));
#endif
}

}  // namespace

void register_attention_cuda(Napi::Env env, Napi::Object exports) {
  exports.Set("attentionCudaTime",
              Napi::Function::New(env, attention_cuda_time_js, "attentionCudaTime"));
}

}  // namespace npr::addon
