// The addon's process-wide CPU runtime: one thread pool and the SIMD level in use.
//
// Configured from TypeScript (which resolves NPR_THREADS / NPR_SIMD once, at the edge) through
// `configure`; until then: all cores the process may use, the best SIMD level of the CPU.
// Async work takes a snapshot (shared ownership of the pool), so reconfiguring while a job
// runs never frees a pool under it.
#pragma once

#include <memory>

#include "core/cpu_info.h"
#include "core/status.h"
#include "core/thread_pool.h"

namespace npr::addon {

struct CpuRuntime {
  std::shared_ptr<ThreadPool> pool;  // never null
  SimdLevel simd = SimdLevel::kScalar;

  CpuContext context() const { return CpuContext{pool.get(), simd}; }
  int threads() const { return pool->size(); }
};

CpuRuntime cpu_runtime();
// threads <= 0 keeps the current count.
Status configure_cpu(int threads, SimdLevel simd);

}  // namespace npr::addon
