// CPU feature detection and the execution context handed to CPU kernels.
//
// Every x86-64 build contains the AVX-512, AVX2 and portable kernel variants (each compiled in
// its own translation unit with its own flags); the variant is picked at run time from what
// the CPU supports, and may be forced lower (NPR_SIMD=avx2 at the edge) to test the AVX2 path
// on an AVX-512 machine. Forcing a level the CPU lacks is refused, never executed.
#pragma once

#include "core/status.h"

namespace npr {

class ThreadPool;

enum class SimdLevel : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

const char* simd_name(SimdLevel level);
// Parses "scalar" | "avx2" | "avx512"; false on anything else.
bool parse_simd(const char* text, SimdLevel* out);
// The best level both compiled in and supported by this CPU and OS.
SimdLevel detect_simd();
// Ok when `level` can run here; otherwise Unavailable naming what the CPU lacks.
Status check_simd(SimdLevel level);
// Bytes of one core's L1 data cache (read once; 32 KiB where the system does not say).
long l1d_cache_bytes();

// What a CPU kernel needs from its caller: where to run and with which instructions.
struct CpuContext {
  ThreadPool* pool = nullptr;  // null: run on the calling thread
  SimdLevel simd = SimdLevel::kScalar;
};

}  // namespace npr
