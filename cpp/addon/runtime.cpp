#include "addon/runtime.h"

#include <mutex>

namespace npr::addon {

namespace {
std::mutex g_mu;
CpuRuntime* g_runtime = nullptr;  // created on first use, lives for the process

CpuRuntime& locked_runtime() {
  if (!g_runtime) {
    g_runtime = new CpuRuntime();
    g_runtime->pool = std::make_shared<ThreadPool>(ThreadPool::default_threads());
    g_runtime->simd = detect_simd();
  }
  return *g_runtime;
}
}  // namespace

CpuRuntime cpu_runtime() {
  std::lock_guard<std::mutex> lock(g_mu);
  return locked_runtime();
}

Status configure_cpu(int threads, SimdLevel simd) {
  NPR_TRY(check_simd(simd));
  std::lock_guard<std::mutex> lock(g_mu);
  CpuRuntime& rt = locked_runtime();
  if (threads > 0 && threads != rt.pool->size()) rt.pool = std::make_shared<ThreadPool>(threads);
  rt.simd = simd;
  return Status::ok();
}

}  // namespace npr::addon
