// The N-API module: the only translation units that include napi.h live in cpp/addon.
// Exports are grouped by concern; their TypeScript types are in ts/bindings/native.ts.
#include <napi.h>

#include "addon/bindings.h"
#include "addon/model_binding.h"

namespace {

Napi::Object init(Napi::Env env, Napi::Object exports) {
  npr::addon::register_backends(env, exports);
  npr::addon::register_gemm(env, exports);
  npr::addon::register_probes(env, exports);
  npr::addon::register_openblas(env, exports);
  npr::addon::register_attention(env, exports);
  npr::addon::register_attention_cuda(env, exports);
  npr::addon::register_kv(env, exports);
  npr::addon::register_sampler(env, exports);
  npr::addon::register_trainer(env, exports);
  exports.Set("NativeQwen3", npr::addon::define_qwen3_class(env));
  exports.Set("abiVersion", Napi::Number::New(env, 6));
  return exports;
}

}  // namespace

NODE_API_MODULE(npr, init)
