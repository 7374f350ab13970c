// gemm(c, a, b, options) and gemmAsync(...) -> Promise<void>: C is written in place.
// options: { m, n, k, transA?, transB?, lda?, ldb?, ldc?, alpha? = 1, beta? = 0,
//            backend? = 'cpu' | 'cuda', impl? = 'fast' | 'reference' }.
// The async form runs on a libuv worker thread and keeps the three arrays alive until done;
// the caller must not touch them before the promise settles.
#include <memory>

#include "addon/bindings.h"
#include "addon/gemm_args.h"
#include "addon/runtime.h"
#include "core/cuda_device.h"
#if defined(NPR_WITH_CUDA)
#include "kernels/gemm_cuda.h"
#endif

namespace npr::addon {

namespace {

// Runs a parsed call; no N-API here, so it can run on a worker thread.
Status run_gemm(const GemmCall& call, const CpuRuntime& rt) {
  const GemmShape& s = call.shape;
  if (call.backend == "cuda") {
#if defined(NPR_WITH_CUDA)
    return gemm_f32_cuda_host(s, call.a.data, call.b.data, call.c.data);
#else
    return Status::unavailable("gemm: backend 'cuda' requested but " + cuda_info().reason);
#endif
  }
  if (call.impl == "reference") return gemm_f32_reference(s, call.a.data, call.b.data, call.c.data);
  return gemm_f32(rt.context(), s, call.a.data, call.b.data, call.c.data);
}

Napi::Value gemm(const Napi::CallbackInfo& info) {
  GemmCall call = parse_gemm_call(info, "gemm", false);
  Status st = run_gemm(call, cpu_runtime());
  if (!st.is_ok()) throw_status(info.Env(), st);
  return info.Env().Undefined();
}

class GemmWorker : public Napi::AsyncWorker {
 public:
  GemmWorker(Napi::Env env, GemmCall call)
      : Napi::AsyncWorker(env, "npr.gemm"),
        deferred_(Napi::Promise::Deferred::New(env)),
        call_(std::move(call)),
        runtime_(cpu_runtime()) {
    keep_a_ = Napi::Persistent(call_.a.array);
    keep_b_ = Napi::Persistent(call_.b.array);
    keep_c_ = Napi::Persistent(call_.c.array);
  }
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override { status_ = run_gemm(call_, runtime_); }
  void OnOK() override {
    if (status_.is_ok())
      deferred_.Resolve(Env().Undefined());
    else
      deferred_.Reject(status_error(Env(), status_).Value());
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  GemmCall call_;
  CpuRuntime runtime_;
  Status status_;
  Napi::Reference<Napi::Float32Array> keep_a_, keep_b_, keep_c_;
};

Napi::Value gemm_async(const Napi::CallbackInfo& info) {
  GemmCall call = parse_gemm_call(info, "gemmAsync", false);
  auto* worker = new GemmWorker(info.Env(), std::move(call));
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

}  // namespace

void register_gemm(Napi::Env env, Napi::Object exports) {
  exports.Set("gemm", Napi::Function::New(env, gemm, "gemm"));
  exports.Set("gemmAsync", Napi::Function::New(env, gemm_async, "gemmAsync"));
}

}  // namespace npr::addon
