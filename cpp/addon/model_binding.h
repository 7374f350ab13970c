// The Qwen3 model as a JS class (NativeQwen3): a handle owning one Qwen3Model.
#pragma once

#include <napi.h>

#include <memory>

namespace npr {
class Qwen3Model;
class Qwen3CudaModel;
}  // namespace npr

namespace npr::addon {

Napi::Function define_qwen3_class(Napi::Env env);

// The model inside a NativeQwen3 object (the CPU model, or the CUDA model with `model` null),
// and its busy flag (set while an async call runs on it). Throws a TypeError naming `what` when
// `v` is not a NativeQwen3.
struct Qwen3Access {
  Qwen3Model* model = nullptr;
  Qwen3CudaModel* cuda = nullptr;
  std::shared_ptr<bool> busy;
};
Qwen3Access qwen3_access(const Napi::Value& v, const char* what);

}  // namespace npr::addon
