#include "kernels/bandwidth_probe.h"

#include <chrono>
#include <vector>

#include "core/huge_pages.h"
#include "core/thread_pool.h"

namespace npr {

Status read_bandwidth_gbps(const CpuContext& ctx, int64_t bytes, int passes, double* gbps) {
  if (bytes < (1 << 20) || bytes > (int64_t{1} << 34) || passes < 1 || passes > 100)
    return Status::out_of_range(
        "bandwidth probe: bytes must be in [1 MiB, 16 GiB], passes in [1, 100]");
  const int64_t n = bytes / static_cast<int64_t>(sizeof(float));
  HugeFloats data;  // as the weights it stands for
  try {
    data.assign(static_cast<size_t>(n), 1.0f);
  } catch (const std::bad_alloc&) {
    return Status::oom("bandwidth probe: could not allocate the array");
  }
  const int parts = ctx.pool ? ctx.pool->size() : 1;
  std::vector<float> sums(static_cast<size_t>(parts) * 16, 0.0f);  // one cache line per part
  double best = 0.0;
  for (int p = 0; p < passes; ++p) {
    const auto t0 = std::chrono::steady_clock::now();
    auto body = [&](int64_t part) {
      const int64_t b = n * part / parts, e = n * (part + 1) / parts;
      float acc[16] = {};
      int64_t i = b;
      for (; i + 16 <= e; i += 16)
        for (int j = 0; j < 16; ++j) acc[j] += data[i + j];
      for (; i < e; ++i) acc[0] += data[i];
      float s = 0.0f;
      for (float x : acc) s += x;
      sums[part * 16] += s;
    };
    if (ctx.pool && parts > 1) {
      ctx.pool->parallel_for(parts, [&](int64_t part, int) { body(part); });
    } else {
      body(0);
    }
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (dt > 0) best = std::max(best, static_cast<double>(n) * sizeof(float) / dt / 1e9);
  }
  *gbps = best + 0.0 * sums[0];
  return Status::ok();
}

}  // namespace npr
