// fmaPeak({ simd?, seconds? }) -> GFLOP/s of one core: the peak benchmarks report against.
#include <string>

#include "addon/args.h"
#include "addon/bindings.h"
#include "addon/runtime.h"
#include "core/cuda_device.h"
#include "kernels/bandwidth_probe.h"
#include "kernels/fma_peak.h"

namespace npr::addon {

namespace {

Napi::Value fma_peak(const Napi::CallbackInfo& info) {
  const char* fn = "fmaPeak";
  Napi::Object o = object_arg(info, 0, fn, "options", true);
  const std::string simd =
      enum_field(o, fn, "simd", {"scalar", "avx2", "avx512"}, simd_name(detect_simd()));
  const double seconds = number_field(o, fn, "seconds", true, 0.5);
  if (seconds <= 0.0 || seconds > 10.0)
    throw_range(info.Env(), std::string(fn) + ": options.seconds must be in (0, 10]");
  SimdLevel level;
  parse_simd(simd.c_str(), &level);
  double gflops = 0.0;
  Status st = fma_peak_gflops(level, seconds, &gflops);
  if (!st.is_ok()) throw_status(info.Env(), st);
  return Napi::Number::New(info.Env(), gflops);
}

// memBandwidth({ megabytes? = 1024, passes? = 5 }) -> GB/s of a streaming read with the pool.
Napi::Value mem_bandwidth(const Napi::CallbackInfo& info) {
  const char* fn = "memBandwidth";
  Napi::Object o = object_arg(info, 0, fn, "options", true);
  const int64_t mb = int_field(o, fn, "megabytes", 1, 16384, true, 1024);
  const int passes = static_cast<int>(int_field(o, fn, "passes", 1, 100, true, 5));
  double gbps = 0.0;
  Status st = read_bandwidth_gbps(cpu_runtime().context(), mb << 20, passes, &gbps);
  if (!st.is_ok()) throw_status(info.Env(), st);
  return Napi::Number::New(info.Env(), gbps);
}

// cudaProfilerRange(start: boolean) -> whether a CUDA profiler range was started / stopped.
Napi::Value cuda_profiler(const Napi::CallbackInfo& info) {
  if (!info[0].IsBoolean())
    throw_type(info.Env(), "cudaProfilerRange: argument 'start' must be a boolean (got " +
                               describe_type(info[0]) + ")");
  return Napi::Boolean::New(info.Env(), cuda_profiler_range(info[0].As<Napi::Boolean>().Value()));
}

}  // namespace

void register_probes(Napi::Env env, Napi::Object exports) {
  exports.Set("fmaPeak", Napi::Function::New(env, fma_peak, "fmaPeak"));
  exports.Set("memBandwidth", Napi::Function::New(env, mem_bandwidth, "memBandwidth"));
  exports.Set("cudaProfilerRange", Napi::Function::New(env, cuda_profiler, "cudaProfilerRange"));
}

}  // namespace npr::addon
