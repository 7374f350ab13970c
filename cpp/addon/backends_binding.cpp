// backends(), configure() and buildInfo(): what this addon can run on and how it is set up.
#include "addon/bindings.h"

#include <string>

#include "addon/args.h"
#include "addon/runtime.h"
#include "core/cuda_device.h"

namespace npr::addon {

namespace {

Napi::Value backends(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CpuRuntime rt = cpu_runtime();
  Napi::Object cpu = Napi::Object::New(env);
  cpu.Set("threads", rt.threads());
  cpu.Set("simd", simd_name(rt.simd));
  cpu.Set("simdBest", simd_name(detect_simd()));
  cpu.Set("cores", ThreadPool::default_threads());

  const CudaInfo& ci = cuda_info();
  Napi::Object cuda = Napi::Object::New(env);
  cuda.Set("compiled", ci.compiled);
  cuda.Set("devices", ci.devices);
  cuda.Set("reason", ci.devices > 0 ? env.Null() : Napi::String::New(env, ci.reason));
  cuda.Set("runtimeVersion", ci.runtime_version);
  cuda.Set("deviceName",
           ci.device_name.empty() ? env.Null() : Napi::String::New(env, ci.device_name));

  Napi::Object out = Napi::Object::New(env);
  out.Set("cpu", cpu);
  out.Set("cuda", cuda);
  return out;
}

Napi::Value configure(const Napi::CallbackInfo& info) {
  const char* fn = "configure";
  Napi::Object opts = object_arg(info, 0, fn, "options", false);
  CpuRuntime rt = cpu_runtime();
  const int threads = static_cast<int>(int_field(opts, fn, "threads", 1, 1024, true, rt.threads()));
  const std::string simd =
      enum_field(opts, fn, "simd", {"scalar", "avx2", "avx512"}, simd_name(rt.simd));
  SimdLevel level;
  parse_simd(simd.c_str(), &level);
  Status st = configure_cpu(threads, level);
  if (!st.is_ok()) throw_range(info.Env(), std::string(fn) + ": " + st.message());
  return backends(info);
}

Napi::Value build_info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
#if defined(NPR_BUILD_NATIVE)
  out.Set("native", true);
#else
  out.Set("native", false);
#endif
#if defined(__clang__)
  out.Set("compiler", std::string("clang ") + __clang_version__);
#elif defined(__GNUC__)
  out.Set("compiler", std::string("gcc ") + __VERSION__);
#endif
#if defined(NPR_CUDA_ARCHS)
  out.Set("cudaArchitectures", NPR_CUDA_ARCHS);
#else
  out.Set("cudaArchitectures", env.Null());
#endif
  return out;
}

}  // namespace

void register_backends(Napi::Env env, Napi::Object exports) {
  exports.Set("backends", Napi::Function::New(env, backends, "backends"));
  exports.Set("configure", Napi::Function::New(env, configure, "configure"));
  exports.Set("buildInfo", Napi::Function::New(env, build_info, "buildInfo"));
}

}  // namespace npr::addon
