// Counter-based random numbers: a draw is a pure function of (seed, request, branch, token
// index, draw), so a rollout samples the same tokens whatever the batch it shares, the thread
// count or the backend. Integer-only mixing (SplitMix64 finaliser) that a CUDA kernel can
// reproduce bit for bit.
#pragma once

#include <cstdint>

#include "core/host_device.h"

namespace npr {

NPR_HOST_DEVICE inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform in [0, 1) with 24 random bits (exactly representable as float).
NPR_HOST_DEVICE inline float counter_uniform(uint64_t seed, uint64_t request, uint64_t branch,
                                             uint64_t index, uint64_t draw = 0) {
  uint64_t h = splitmix64(seed);
  h = splitmix64(h ^ request);
  h = splitmix64(h ^ (branch * 0x632be59bd9b4e019ull));
  h = splitmix64(h ^ index);
  h = splitmix64(h ^ (draw + 0x8cb92ba72f3d8dd7ull));
  return static_cast<float>(h >> 40) * (1.0f / 16777216.0f);
}

}  // namespace npr
