// NativeQwen3: new NativeQwen3(config, { backend?: 'cpu' | 'cuda', precision?: 'fp32' | 'bf16',
// deterministic?: boolean, attentionKernels?: 'mma' | 'wgmma' }) owns a Qwen3Model (CPU: fp32
// weights, grads, AdamW state) or a Qwen3CudaModel (device; fp32 masters, bf16 compute copy in
// 'bf16'; deterministic false lets its attention backward sum dQ with atomics; 'wgmma', the
// default, runs the attention on Hopper's warpgroup MMA where it can, 'mma' on mma.sync
// everywhere). Backend 'auto' is resolved in TypeScript.
//   paramTable() -> [{ name, shape, offset, numel }]
//   setParam(name, Float32Array) / getParam(name, Float32Array) / getGrad(name, Float32Array)
//   forward(batch, { logprob, entropy? }) -> Promise<void>   (outputs written in place)
//   backward(dlogprob) -> Promise<void>;  zeroGrad();  optimizerStep(opts) -> { gradNorm, step }
//   memoryBytes(), paramCount
// batch: { ids, positions, prev, cuSeqlens: Int32Array, depth, block?, step?: Int32Array }.
// One asynchronous call at a time per model: a second while one runs is refused (never queued
// behind it, never interleaved), and the arrays of a running call are kept alive until it ends.
#include "addon/model_binding.h"

#include <memory>
#include <string>
#include <vector>

#include "addon/args.h"
#include "addon/runtime.h"
#include "model/qwen3_model.h"
#if defined(NPR_WITH_CUDA)
#include "kernels/tma_map.h"
#include "model/qwen3_cuda_model.h"
#endif

namespace npr::addon {

namespace {

constexpr int64_t kMaxTokens = int64_t{1} << 26;

// An Int32Array argument of exactly `length` elements.
Napi::Int32Array int32_field(const Napi::Object& o, const char* fn, const char* key,
                             int64_t length) {
  Napi::Value v = o.Get(key);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw_type(o.Env(), std::string(fn) + ": batch." + key + " must be an Int32Array (got " +
                            describe_type(v) + ")");
  Napi::Int32Array a = v.As<Napi::Int32Array>();
  if (length >= 0 && static_cast<int64_t>(a.ElementLength()) != length)
    throw_range(o.Env(), std::string(fn) + ": batch." + key + " has " +
                             std::to_string(a.ElementLength()) + " elements, expected " +
                             std::to_string(length));
  return a;
}

Napi::Float32Array f32_exact(const Napi::Value& v, const char* fn, const std::string& name,
                             int64_t length) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw_type(v.Env(), std::string(fn) + ": " + name + " must be a Float32Array (got " +
                            describe_type(v) + ")");
  Napi::Float32Array a = v.As<Napi::Float32Array>();
  if (static_cast<int64_t>(a.ElementLength()) != length)
    throw_range(v.Env(), std::string(fn) + ": " + name + " has " +
                             std::to_string(a.ElementLength()) + " elements, expected " +
                             std::to_string(length));
  return a;
}

class Qwen3Handle : public Napi::ObjectWrap<Qwen3Handle> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeQwen3",
                       {
                           InstanceMethod<&Qwen3Handle::ParamTable>("paramTable"),
                           InstanceMethod<&Qwen3Handle::SetParam>("setParam"),
                           InstanceMethod<&Qwen3Handle::GetParam>("getParam"),
                           InstanceMethod<&Qwen3Handle::GetGrad>("getGrad"),
                           InstanceMethod<&Qwen3Handle::Forward>("forward"),
                           InstanceMethod<&Qwen3Handle::Backward>("backward"),
                           InstanceMethod<&Qwen3Handle::ZeroGrad>("zeroGrad"),
                           InstanceMethod<&Qwen3Handle::OptimizerStep>("optimizerStep"),
                           InstanceMethod<&Qwen3Handle::MemoryBytes>("memoryBytes"),
                           InstanceAccessor<&Qwen3Handle::ParamCount>("paramCount"),
                           InstanceAccessor<&Qwen3Handle::Backend>("backend"),
                           InstanceAccessor<&Qwen3Handle::Precision>("precision"),
                           InstanceAccessor<&Qwen3Handle::Deterministic>("deterministic"),
                       });
  }

  explicit Qwen3Handle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Qwen3Handle>(info) {
    const char* fn = "NativeQwen3";
    if (!info.IsConstructCall()) throw_type(info.Env(), std::string(fn) + ": call it with new");
    Napi::Object o = object_arg(info, 0, fn, "config", false);
    Qwen3Config c;
    c.vocab = int_field(o, fn, "vocab", 1, 1 << 24);
    c.hidden = int_field(o, fn, "hidden", 1, 1 << 16);
    c.intermediate = int_field(o, fn, "intermediate", 1, 1 << 18);
    c.layers = int_field(o, fn, "layers", 1, 1024);
    c.heads = int_field(o, fn, "heads", 1, 1024);
    c.kv_heads = int_field(o, fn, "kvHeads", 1, 1024);
    c.head_dim = int_field(o, fn, "headDim", 2, 1024);
    c.rms_eps = static_cast<float>(number_field(o, fn, "rmsEps", true, 1e-6));
    c.rope_theta = number_field(o, fn, "ropeTheta", true, 1e6);
    c.tied = bool_field(o, fn, "tied", true);
    std::string backend = "cpu", precision = "fp32";
    bool deterministic = true;
    std::string kernels = "wgmma";
    if (info.Length() > 1 && !info[1].IsUndefined()) {
      Napi::Object opts = object_arg(info, 1, fn, "options", false);
      backend = enum_field(opts, fn, "backend", {"cpu", "cuda"}, "cpu");
      precision = enum_field(opts, fn, "precision", {"fp32", "bf16"}, "fp32");
      deterministic = bool_field(opts, fn, "deterministic", true);
      kernels = enum_field(opts, fn, "attentionKernels",
                           {"mma", "wgmma", "wgmma-64", "wgmma-cp", "wgmma-k128"}, "wgmma");
    }
    if (backend == "cpu" && precision != "fp32")
      throw_range(info.Env(), std::string(fn) +
                                  ": the cpu backend computes in fp32 only (precision 'bf16' "
                                  "is a CUDA mode); pass precision 'fp32' or backend 'cuda'");
    Status st;
    if (backend == "cpu") {
      st = Qwen3Model::create(c, &model_);
    } else {
#if defined(NPR_WITH_CUDA)
      st =
          Qwen3CudaModel::create(c, precision == "bf16" ? DevDType::kBF16 : DevDType::kF32, &cuda_);
      if (st.is_ok()) {
        cuda_->context().deterministic = deterministic;
        // The Hopper kernels where they can run (sm_90, bf16, head dim 64 or 128). 'wgmma': the
        // warp-specialised forward over 128 keys a step (10: a producer warpgroup copies Q and
        // two key tiles at a time by tensor maps into an mbarrier ring, two consumer warpgroups
        // on a head pair; its own bits, deterministic) with the warp-specialised deterministic dQ
        // and the dK/dV kernel's Q and dO by tensor-map copies. On NPR rollouts of 4k / 8k / 32k
        // tokens an H200 (2026-11-27) ran its forward at 1.742 / 1.691 / 1.435x FlexAttention,
        // where the 64-keys-a-step build (7, 'wgmma-64', the default before; variant 1's bits)
        // ran 1.460 / 1.377 / 1.197x and the cp.async ping-pong kernels (5, 'wgmma-cp') 1.334 /
        // 1.199 / 1.097x; 10's ping-ponging build (11) ran 1.746 / 1.618 / 1.382x. A driver
        // without the tensor-map encoder gets 5. 'wgmma-k128': the default forward with the
        // backward's two-warpgroup kernels (128 keys / queries a CTA, head dim 128): an H200 ran
        // the train step 0.96x as fast with them, both on the cp.async forward.
        const bool tma = tma_maps_available();
        cuda_->context().attention_wgmma = kernels == "mma"        ? 0
                                           : kernels == "wgmma-cp" ? 5
                                           : !tma                  ? 5
                                           : kernels == "wgmma-64" ? 7
                                                                   : 10;
        cuda_->context().attention_wgmma_keys = kernels == "wgmma-k128" ? 128 : 64;
      }
#else
      st = Status::unavailable(std::string(fn) +
                               ": backend 'cuda' is not compiled into this build (no nvcc at "
                               "install time, or NPR_CUDA=off); use backend 'cpu'");
#endif
    }
    if (!st.is_ok()) throw_status(info.Env(), st);
    precision_ = precision;
    deterministic_ = deterministic;
  }

  // The CPU model, or null when this handle runs on CUDA.
  Qwen3Model* cpu_model() {
    return model_.get();
  }
  // The CUDA model, or null when this handle runs on the CPU.
  Qwen3CudaModel* cuda_model() {
#if defined(NPR_WITH_CUDA)
    return cuda_.get();
#else
    return nullptr;
#endif
  }
  bool on_cuda() const {
    return !model_;
  }
  const std::vector<ParamInfo>& params() const {
#if defined(NPR_WITH_CUDA)
    if (cuda_) return cuda_->params();
#endif
    return model_->params();
  }
  int64_t saved_tokens() const {
#if defined(NPR_WITH_CUDA)
    if (cuda_) return cuda_->saved_tokens();
#endif
    return model_->saved_tokens();
  }
  Status run_forward(const CpuContext& ctx, const Qwen3Batch& b, float* lp, float* ent) {
#if defined(NPR_WITH_CUDA)
    if (cuda_) return cuda_->forward(b, lp, ent);
#endif
    return model_->forward(ctx, b, lp, ent);
  }
  Status run_backward(const CpuContext& ctx, const float* dlogprob) {
#if defined(NPR_WITH_CUDA)
    if (cuda_) return cuda_->backward(dlogprob);
#endif
    return model_->backward(ctx, dlogprob);
  }
  std::shared_ptr<bool> busy() {
    return busy_;
  }

 private:
  const ParamInfo& param(const Napi::CallbackInfo& info, const char* fn) {
    if (!info[0].IsString())
      throw_type(info.Env(), std::string(fn) + ": argument 'name' must be a string (got " +
                                 describe_type(info[0]) + ")");
    const std::string name = info[0].As<Napi::String>().Utf8Value();
    for (const ParamInfo& p : params())
      if (p.name == name) return p;
    throw_range(info.Env(), std::string(fn) + ": no parameter named '" + name + "' in this model");
  }

  void check_idle(Napi::Env env, const char* fn) {
    if (*busy_)
      throw Napi::Error::New(
          env,
          std::string(fn) + ": the model is busy with another forward/backward; await it first");
  }

  Napi::Value ParamTable(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Array out = Napi::Array::New(env);
    uint32_t i = 0;
    for (const ParamInfo& p : params()) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", p.name);
      Napi::Array shape = Napi::Array::New(env, p.shape.size());
      for (uint32_t d = 0; d < p.shape.size(); ++d)
        shape.Set(d, Napi::Number::New(env, static_cast<double>(p.shape[d])));
      o.Set("shape", shape);
      o.Set("offset", static_cast<double>(p.offset));
      o.Set("numel", static_cast<double>(p.numel));
      out.Set(i++, o);
    }
    return out;
  }

  Napi::Value SetParam(const Napi::CallbackInfo& info) {
    check_idle(info.Env(), "setParam");
    const ParamInfo& p = param(info, "setParam");
    Napi::Float32Array a = f32_exact(info[1], "setParam", "'data' of " + p.name, p.numel);
#if defined(NPR_WITH_CUDA)
    if (cuda_) {
      Status st = cuda_->set_param(p, a.Data());
      if (!st.is_ok()) throw_status(info.Env(), st);
      return info.Env().Undefined();
    }
#endif
    std::copy(a.Data(), a.Data() + p.numel, model_->weights() + p.offset);
    return info.Env().Undefined();
  }

  Napi::Value GetParam(const Napi::CallbackInfo& info) {
    check_idle(info.Env(), "getParam");
    const ParamInfo& p = param(info, "getParam");
    Napi::Float32Array a = f32_exact(info[1], "getParam", "'out' for " + p.name, p.numel);
#if defined(NPR_WITH_CUDA)
    if (cuda_) {
      Status st = cuda_->get_param(p, a.Data());
      if (!st.is_ok()) throw_status(info.Env(), st);
      return info.Env().Undefined();
    }
#endif
    std::copy(model_->weights() + p.offset, model_->weights() + p.offset + p.numel, a.Data());
    return info.Env().Undefined();
  }

  Napi::Value GetGrad(const Napi::CallbackInfo& info) {
    check_idle(info.Env(), "getGrad");
    const ParamInfo& p = param(info, "getGrad");
    Napi::Float32Array a = f32_exact(info[1], "getGrad", "'out' for " + p.name, p.numel);
#if defined(NPR_WITH_CUDA)
    if (cuda_) {
      Status st = cuda_->get_grad(p, a.Data());
      if (!st.is_ok()) throw_status(info.Env(), st);
      return info.Env().Undefined();
    }
#endif
    std::copy(model_->grads() + p.offset, model_->grads() + p.offset + p.numel, a.Data());
    return info.Env().Undefined();
  }

  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value Backward(const Napi::CallbackInfo& info);

  Napi::Value ZeroGrad(const Napi::CallbackInfo& info) {
    check_idle(info.Env(), "zeroGrad");
#if defined(NPR_WITH_CUDA)
    if (cuda_) {
      Status st = cuda_->zero_grad();
      if (!st.is_ok()) throw_status(info.Env(), st);
      return info.Env().Undefined();
    }
#endif
    model_->zero_grad();
    return info.Env().Undefined();
  }

  Napi::Value OptimizerStep(const Napi::CallbackInfo& info) {
    const char* fn = "optimizerStep";
    check_idle(info.Env(), fn);
    Napi::Object o = object_arg(info, 0, fn, "options", false);
    AdamWParams a;
    a.lr = static_cast<float>(number_field(o, fn, "lr"));
    a.beta1 = static_cast<float>(number_field(o, fn, "beta1", true, 0.9));
    a.beta2 = static_cast<float>(number_field(o, fn, "beta2", true, 0.999));
    a.eps = static_cast<float>(number_field(o, fn, "eps", true, 1e-8));
    a.weight_decay = static_cast<float>(number_field(o, fn, "weightDecay", true, 0.0));
    const float clip = static_cast<float>(number_field(o, fn, "clipNorm", true, 0.0));
    if (a.lr < 0 || a.beta1 < 0 || a.beta1 >= 1 || a.beta2 < 0 || a.beta2 >= 1 || a.eps <= 0 ||
        a.weight_decay < 0)
      throw_range(
          info.Env(),
          std::string(fn) + ": need lr >= 0, 0 <= beta1, beta2 < 1, eps > 0, weightDecay >= 0");
    double norm = 0.0;
    Status st;
    int64_t steps = 0;
#if defined(NPR_WITH_CUDA)
    if (cuda_) {
      st = cuda_->optimizer_step(a, clip, &norm);
      steps = cuda_->optimizer_steps();
    }
#endif
    if (model_) {
      st = model_->optimizer_step(cpu_runtime().context(), a, clip, &norm);
      steps = model_->optimizer_steps();
    }
    if (!st.is_ok()) throw_status(info.Env(), st);
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("gradNorm", norm);
    out.Set("step", static_cast<double>(steps));
    return out;
  }

  Napi::Value MemoryBytes(const Napi::CallbackInfo& info) {
#if defined(NPR_WITH_CUDA)
    if (cuda_) return Napi::Number::New(info.Env(), static_cast<double>(cuda_->memory_bytes()));
#endif
    return Napi::Number::New(info.Env(), static_cast<double>(model_->memory_bytes()));
  }
  Napi::Value ParamCount(const Napi::CallbackInfo& info) {
    int64_t n = 0;
    for (const ParamInfo& p : params()) n += p.numel;
    return Napi::Number::New(info.Env(), static_cast<double>(n));
  }
  Napi::Value Backend(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), on_cuda() ? "cuda" : "cpu");
  }
  Napi::Value Deterministic(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), deterministic_);
  }
  Napi::Value Precision(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), precision_);
  }

  std::unique_ptr<Qwen3Model> model_;  // exactly one of model_ / cuda_ is set
#if defined(NPR_WITH_CUDA)
  std::unique_ptr<Qwen3CudaModel> cuda_;
#endif
  std::string precision_;
  bool deterministic_ = true;  // the CUDA context's switch (the CPU is deterministic anyway)
  std::shared_ptr<bool> busy_ = std::make_shared<bool>(false);
};

// Runs forward or backward on a worker thread; holds the JS arrays and the model alive.
class ModelWorker : public Napi::AsyncWorker {
 public:
  ModelWorker(Napi::Env env, Qwen3Handle* handle, Napi::Object self, const char* name)
      : Napi::AsyncWorker(env, name),
        deferred_(Napi::Promise::Deferred::New(env)),
        handle_(handle),
        busy_(handle->busy()),
        runtime_(cpu_runtime()) {
    keep_.push_back(Napi::Persistent(self.As<Napi::Object>()));
    *busy_ = true;
  }
  ~ModelWorker() override { *busy_ = false; }
  void keep(const Napi::Value& v) { keep_.push_back(Napi::Persistent(v.As<Napi::Object>())); }
  Napi::Promise promise() { return deferred_.Promise(); }

  Qwen3Batch batch;
  std::vector<int32_t> empty;
  float* logprob = nullptr;
  float* entropy = nullptr;
  const float* dlogprob = nullptr;

 protected:
  void Execute() override {
    status_ = dlogprob ? handle_->run_backward(runtime_.context(), dlogprob)
                       : handle_->run_forward(runtime_.context(), batch, logprob, entropy);
  }
  void OnOK() override {
    *busy_ = false;
    if (status_.is_ok())
      deferred_.Resolve(Env().Undefined());
    else
      deferred_.Reject(status_error(Env(), status_).Value());
  }
  void OnError(const Napi::Error& e) override {
    *busy_ = false;
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Qwen3Handle* handle_;
  std::shared_ptr<bool> busy_;
  CpuRuntime runtime_;
  Status status_;
  std::vector<Napi::ObjectReference> keep_;
};

Napi::Value Qwen3Handle::Forward(const Napi::CallbackInfo& info) {
  const char* fn = "forward";
  check_idle(info.Env(), fn);
  Napi::Object b = object_arg(info, 0, fn, "batch", false);
  Napi::Object outs = object_arg(info, 1, fn, "outputs", false);
  Napi::Int32Array ids = int32_field(b, fn, "ids", -1);
  const int64_t T = static_cast<int64_t>(ids.ElementLength());
  if (T < 1 || T > kMaxTokens)
    throw_range(info.Env(), std::string(fn) + ": batch.ids must hold 1.." +
                                std::to_string(kMaxTokens) + " tokens");
  Napi::Int32Array positions = int32_field(b, fn, "positions", T);
  Napi::Int32Array prev = int32_field(b, fn, "prev", T);
  Napi::Int32Array cu = int32_field(b, fn, "cuSeqlens", -1);
  if (cu.ElementLength() < 2)
    throw_range(info.Env(), std::string(fn) + ": batch.cuSeqlens needs at least 2 entries");
  const int64_t depth = int_field(b, fn, "depth", 0, 16, true, 0);
  Napi::Float32Array lp = f32_exact(outs.Get("logprob"), fn, "outputs.logprob", T);
  Napi::Value ev = outs.Get("entropy");
  Napi::Float32Array ent;
  if (!ev.IsUndefined()) ent = f32_exact(ev, fn, "outputs.entropy", T);
  Napi::Int32Array blk, stp;
  if (depth > 0) {
    blk = int32_field(b, fn, "block", T * depth);
    stp = int32_field(b, fn, "step", T * depth);
  }
  // Every argument is checked: only now is the worker made (it marks the model busy).
  auto* w = new ModelWorker(info.Env(), this, info.This().As<Napi::Object>(), "npr.qwen3.forward");
  for (const Napi::Value& v : {Napi::Value(ids), Napi::Value(positions), Napi::Value(prev),
                               Napi::Value(cu), Napi::Value(lp)})
    w->keep(v);
  w->logprob = lp.Data();
  if (!ev.IsUndefined()) {
    w->keep(ent);
    w->entropy = ent.Data();
  }
  StructureView st{T,         static_cast<int64_t>(cu.ElementLength()) - 1,
                   cu.Data(), static_cast<int32_t>(depth),
                   nullptr,   nullptr};
  if (depth > 0) {
    w->keep(blk);
    w->keep(stp);
    st.block = blk.Data();
    st.step = stp.Data();
  }
  w->batch = Qwen3Batch{T, ids.Data(), positions.Data(), prev.Data(), st};
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

Napi::Value Qwen3Handle::Backward(const Napi::CallbackInfo& info) {
  const char* fn = "backward";
  check_idle(info.Env(), fn);
  if (!info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw_type(info.Env(), std::string(fn) + ": argument 'dlogprob' must be a Float32Array (got " +
                               describe_type(info[0]) + ")");
  Napi::Float32Array d = info[0].As<Napi::Float32Array>();
  const int64_t T = saved_tokens();
  if (T == 0)
    throw_status(
        info.Env(),
        Status::invalid("backward: call forward first (each forward allows one backward)"));
  if (static_cast<int64_t>(d.ElementLength()) != T)
    throw_range(info.Env(), std::string(fn) + ": 'dlogprob' has " +
                                std::to_string(d.ElementLength()) +
                                " elements, the last forward had " + std::to_string(T) + " tokens");
  auto* w = new ModelWorker(info.Env(), this, info.This().As<Napi::Object>(), "npr.qwen3.backward");
  w->keep(d);
  w->dlogprob = d.Data();
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

// Per environment (each worker thread loads its own copy of the addon): the class, for
// instanceof checks from other bindings.
struct Qwen3ClassRef {
  Napi::FunctionReference ctor;
};

}  // namespace

Napi::Function define_qwen3_class(Napi::Env env) {
  Napi::Function f = Qwen3Handle::Define(env);
  env.SetInstanceData<Qwen3ClassRef>(new Qwen3ClassRef{Napi::Persistent(f)});
  return f;
}

Qwen3Access qwen3_access(const Napi::Value& v, const char* what) {
  Qwen3ClassRef* cls = v.Env().GetInstanceData<Qwen3ClassRef>();
  if (!v.IsObject() || !cls || !v.As<Napi::Object>().InstanceOf(cls->ctor.Value()))
    throw_type(v.Env(),
               std::string(what) + " must be a NativeQwen3 model (got " + describe_type(v) + ")");
  Qwen3Handle* h = Qwen3Handle::Unwrap(v.As<Napi::Object>());
  return Qwen3Access{h->cpu_model(), h->cuda_model(), h->busy()};
}

}  // namespace npr::addon
