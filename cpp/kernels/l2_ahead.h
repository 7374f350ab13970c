// Weights a kernel prefetches into L2 for the kernel after it (the decode's skinny linear layers:
// SkinnyLaunch::ahead). A batch-1 decode step is a chain of small kernels, each streaming a few MB
// of weights; between two of them DRAM idles while one drains and the next ramps up. A kernel that
// starts the next one's weights on their way to L2 keeps DRAM busy across that gap, and the next
// kernel then reads them from L2. Prefetches change no result, only where the bytes come from.
#pragma once

#include <cstdint>

namespace npr {

struct L2Ahead {
  const void* p = nullptr;  // first byte (any alignment)
  int64_t bytes = 0;        // 0: nothing to prefetch
};

}  // namespace npr
