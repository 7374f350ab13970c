// Helpers to spread row-wise CPU work over the context's pool in contiguous chunks.
#pragma once

#include <algorithm>
#include <cstdint>

#include "core/cpu_info.h"
#include "core/thread_pool.h"

namespace npr {

// Calls fn(begin, end) over [0, n) split into at most pool-size chunks of at least `grain`
// items; runs inline when there is no pool or too little work.
template <typename F>
void parallel_rows(const CpuContext& ctx, int64_t n, int64_t grain, F&& fn) {
  if (n <= 0) return;
  const int threads = ctx.pool ? ctx.pool->size() : 1;
  const int64_t chunks =
      std::max<int64_t>(1, std::min<int64_t>(threads, n / std::max<int64_t>(1, grain)));
  if (chunks == 1) {
    fn(int64_t{0}, n);
    return;
  }
  ctx.pool->parallel_for(chunks, [&](int64_t c, int) {
    const int64_t b = n * c / chunks, e = n * (c + 1) / chunks;
    if (e > b) fn(b, e);
  });
}

}  // namespace npr
