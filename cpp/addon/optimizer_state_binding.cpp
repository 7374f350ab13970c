// optimizerState(model, m, v) -> step and setOptimizerState(model, m, v, step): the AdamW
// moments of a NativeQwen3 (Float32Array (paramCount) each, parameter-arena order) and its
// step count, for trainer checkpoints. CPU models only for now: a CUDA model throws
// 'UNAVAILABLE' (its moments live on the device; the CUDA model needs the same two accessors).
#include <string>

#include "addon/args.h"
#include "addon/bindings.h"
#include "addon/model_binding.h"
#include "model/qwen3_model.h"

namespace npr::addon {

namespace {

Qwen3Model* cpu_model(const Napi::CallbackInfo& info, const char* fn) {
  Qwen3Access a = qwen3_access(info[0], fn);
  if (!a.model)
    throw_status(info.Env(),
                 Status::unavailable(std::string(fn) + ": optimizer state of a CUDA model is not "
                                                       "readable yet; checkpoint a CPU model"));
  if (a.busy && *a.busy)
    throw_status(info.Env(),
                 Status::invalid(std::string(fn) + ": the model is busy; await its call first"));
  return a.model;
}

void check_len(Napi::Env env, const char* fn, const char* name, const F32Arg& a, int64_t n) {
  if (a.length != n)
    throw_range(env, std::string(fn) + ": " + name + " must have " + std::to_string(n) +
                         " elements (the parameter count; got " + std::to_string(a.length) + ")");
}

Napi::Value optimizer_state(const Napi::CallbackInfo& info) {
  const char* fn = "optimizerState";
  Qwen3Model* m = cpu_model(info, fn);
  F32Arg mo = f32_arg(info, 1, fn, "m"), vo = f32_arg(info, 2, fn, "v");
  check_len(info.Env(), fn, "m", mo, m->param_count());
  check_len(info.Env(), fn, "v", vo, m->param_count());
  m->get_optimizer_state(mo.data, vo.data);
  return Napi::Number::New(info.Env(), static_cast<double>(m->optimizer_steps()));
}

Napi::Value set_optimizer_state(const Napi::CallbackInfo& info) {
  const char* fn = "setOptimizerState";
  Qwen3Model* m = cpu_model(info, fn);
  F32Arg mo = f32_arg(info, 1, fn, "m"), vo = f32_arg(info, 2, fn, "v");
  check_len(info.Env(), fn, "m", mo, m->param_count());
  check_len(info.Env(), fn, "v", vo, m->param_count());
  if (!info[3].IsNumber() || info[3].As<Napi::Number>().DoubleValue() < 0)
    throw_type(info.Env(), "setOptimizerState: step must be a number >= 0");
  m->set_optimizer_state(mo.data, vo.data, info[3].As<Napi::Number>().Int64Value());
  return info.Env().Undefined();
}

}  // namespace

void register_optimizer_state(Napi::Env env, Napi::Object exports) {
  exports.Set("optimizerState", Napi::Function::New(env, optimizer_state, "optimizerState"));
  exports.Set("setOptimizerState",
              Napi::Function::New(env, set_optimizer_state, "setOptimizerState"));
}

}  // namespace npr::addon
