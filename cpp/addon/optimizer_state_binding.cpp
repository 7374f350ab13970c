// optimizerState(model, m, v) -> step and setOptimizerState(model, m, v, step): the AdamW
// moments of a NativeQwen3 (Float32Array (paramCount) each, parameter-arena order) and its
// step count, for trainer checkpoints. CPU and CUDA models alike (a CUDA model copies its
// device moments through the host).
#include <string>

#include "addon/args.h"
#include "addon/bindings.h"
#include "addon/model_binding.h"
#include "model/qwen3_model.h"
#if defined(NPR_WITH_CUDA)
#include "model/qwen3_cuda_model.h"
#endif

namespace npr::addon {

namespace {

Qwen3Access idle_model(const Napi::CallbackInfo& info, const char* fn) {
  Qwen3Access a = qwen3_access(info[0], fn);
  if (a.busy && *a.busy)
    throw_status(info.Env(),
                 Status::invalid(std::string(fn) + ": the model is busy; await its call first"));
  return a;
}

int64_t param_count(const Qwen3Access& a) {
#if defined(NPR_WITH_CUDA)
  if (a.cuda) return a.cuda->param_count();
#endif
  return a.model->param_count();
}

void check_len(Napi::Env env, const char* fn, const char* name, const F32Arg& a, int64_t n) {
  if (a.length != n)
    throw_range(env, std::string(fn) + ": " + name + " must have " + std::to_string(n) +
                         " elements (the parameter count; got " + std::to_string(a.length) + ")");
}

Napi::Value optimizer_state(const Napi::CallbackInfo& info) {
  const char* fn = "optimizerState";
  Qwen3Access a = idle_model(info, fn);
  F32Arg mo = f32_arg(info, 1, fn, "m"), vo = f32_arg(info, 2, fn, "v");
  check_len(info.Env(), fn, "m", mo, param_count(a));
  check_len(info.Env(), fn, "v", vo, param_count(a));
#if defined(NPR_WITH_CUDA)
  if (a.cuda) {
    Status st = a.cuda->get_optimizer_state(mo.data, vo.data);
    if (!st.is_ok()) throw_status(info.Env(), st);
    return Napi::Number::New(info.Env(), static_cast<double>(a.cuda->optimizer_steps()));
  }
#endif
  a.model->get_optimizer_state(mo.data, vo.data);
  return Napi::Number::New(info.Env(), static_cast<double>(a.model->optimizer_steps()));
}

Napi::Value set_optimizer_state(const Napi::CallbackInfo& info) {
  const char* fn = "setOptimizerState";
  Qwen3Access a = idle_model(info, fn);
  F32Arg mo = f32_arg(info, 1, fn, "m"), vo = f32_arg(info, 2, fn, "v");
  check_len(info.Env(), fn, "m", mo, param_count(a));
  check_len(info.Env(), fn, "v", vo, param_count(a));
  if (!info[3].IsNumber() || info[3].As<Napi::Number>().DoubleValue() < 0)
    throw_type(info.Env(), "setOptimizerState: step must be a number >= 0");
  const int64_t step = info[3].As<Napi::Number>().Int64Value();
#if defined(NPR_WITH_CUDA)
  if (a.cuda) {
    Status st = a.cuda->set_optimizer_state(mo.data, vo.data, step);
    if (!st.is_ok()) throw_status(info.Env(), st);
    return info.Env().Undefined();
  }
#endif
  a.model->set_optimizer_state(mo.data, vo.data, step);
  return info.Env().Undefined();
}

}  // namespace

void register_optimizer_state(Napi::Env env, Napi::Object exports) {
  exports.Set("optimizerState", Napi::Function::New(env, optimizer_state, "optimizerState"));
  exports.Set("setOptimizerState",
              Napi::Function::New(env, set_optimizer_state, "setOptimizerState"));
}

}  // namespace npr::addon
