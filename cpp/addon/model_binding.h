// The Qwen3 model as a JS class (NativeQwen3): a handle owning one Qwen3Model.
#pragma once

#include <napi.h>

namespace npr::addon {

Napi::Function define_qwen3_class(Napi::Env env);

}  // namespace npr::addon
