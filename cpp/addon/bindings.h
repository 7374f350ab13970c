// Registration of each group of exports (one file per group, see module.cpp).
#pragma once

#include <napi.h>

namespace npr::addon {

void register_backends(Napi::Env env, Napi::Object exports);
void register_gemm(Napi::Env env, Napi::Object exports);
void register_probes(Napi::Env env, Napi::Object exports);
void register_openblas(Napi::Env env, Napi::Object exports);
void register_kv(Napi::Env env, Napi::Object exports);
void register_attention(Napi::Env env, Napi::Object exports);
void register_attention_cuda(Napi::Env env, Napi::Object exports);
void register_sampler(Napi::Env env, Napi::Object exports);
// The trainer's exports: policyLoss (policy_loss_binding.cpp) and the optimizer state
// (optimizer_state_binding.cpp); register_trainer registers both.
void register_trainer(Napi::Env env, Napi::Object exports);
void register_optimizer_state(Napi::Env env, Napi::Object exports);

}  // namespace npr::addon
