#include "core/cpu_info.h"

#include <cstring>

#if defined(__linux__)
#include <unistd.h>
#endif

namespace npr {

const char* simd_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::kScalar: return "scalar";
    case SimdLevel::kAvx2: return "avx2";
    case SimdLevel::kAvx512: return "avx512";
  }
  return "unknown";
}

bool parse_simd(const char* text, SimdLevel* out) {
  if (std::strcmp(text, "scalar") == 0)
    *out = SimdLevel::kScalar;
  else if (std::strcmp(text, "avx2") == 0)
    *out = SimdLevel::kAvx2;
  else if (std::strcmp(text, "avx512") == 0)
    *out = SimdLevel::kAvx512;
  else
    return false;
  return true;
}

SimdLevel detect_simd() {
#if defined(__x86_64__) && defined(NPR_HAVE_X86_KERNELS)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return SimdLevel::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return SimdLevel::kAvx2;
#endif
  return SimdLevel::kScalar;
}

Status check_simd(SimdLevel level) {
  if (static_cast<int>(level) <= static_cast<int>(detect_simd())) return Status::ok();
  return Status::unavailable(std::string("SIMD level '") + simd_name(level) +
                             "' is not supported by this CPU (best available: '" +
                             simd_name(detect_simd()) + "')");
}

long l1d_cache_bytes() {
  static const long bytes = [] {
    long b = 0;
#if defined(__linux__) && defined(_SC_LEVEL1_DCACHE_SIZE)
    b = sysconf(_SC_LEVEL1_DCACHE_SIZE);
#endif
    return b >= 4096 ? b : 32 * 1024L;
  }();
  return bytes;
}

}  // namespace npr
