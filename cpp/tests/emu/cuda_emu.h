// Force-included (-include) into every translation unit of the emulator build (CMakeLists.txt,
// target npr_emu): device code compiled as host C++ with NPR_EMU defined and namespace npr
// renamed npr_emu (so nothing here meets the real kernels' symbols). It gives the CUDA keywords
// empty meanings, keeps the CUDA runtime headers out (the launchers see the emulated runtime API
// of emu_cuda_api.h), takes bf16 from the toolkit's cuda_bf16.h (host side), and maps the built-in
// variables and intrinsics onto emu_runtime.h / emu_ptx.h. The kernels' inline PTX has NPR_EMU
// branches that call emu::ptx.
#pragma once

#if !defined(NPR_EMU)
#error "cuda_emu.h belongs to the emulator build (NPR_EMU)"
#endif

#define __host__
#define __device__
#define __global__
#define __shared__
#define __launch_bounds__(...)
#define __grid_constant__
// cuda_runtime.h / cuda_runtime_api.h become empty: the runtime API is emu_cuda_api.h's.
#define __CUDA_RUNTIME_H__
#define __CUDA_RUNTIME_API_H__

#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "tests/emu/emu_cuda_api.h"
#include "tests/emu/emu_cuda_launch.h"
#include "tests/emu/emu_ptx.h"
#include "tests/emu/emu_runtime.h"

using namespace emu::cuda;

// A plain `__shared__` array would be a per-thread array here (every thread is a fiber with its
// own stack), so a block reduction through it would read only its own thread's slots: a compile
// error instead. Kernels declare shared memory with core/dynamic_shared.cuh's macros.
#undef __shared__
#define __shared__ \
  static_assert(   \
      false, "plain __shared__ is not emulated: use NPR_STATIC_SHARED (core/dynamic_shared.cuh)");

#define threadIdx (::emu::thread_idx())
#define blockIdx (::emu::block_idx())
// Not macros, as the two above are (a launch configuration has fields of these names): the same
// for every thread of a launch, so references to the emulator's copy of the running launch's.
inline const emu::Dim3& blockDim = ::emu::block_dim();
inline const emu::Dim3& gridDim = ::emu::grid_dim();

inline void __syncthreads() {
  emu::sync_threads();
}
// One OS thread runs every emulated thread: memory is always coherent.
inline void __threadfence() {}
[[noreturn]] inline void __trap() {
  emu::fail("__trap()");
}
inline size_t __cvta_generic_to_shared(const void* p) {
  return emu::shared_address(p);
}
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  if (mask != 0xffffffffu) emu::fail("__syncwarp with a partial mask");
  emu::ptx::syncwarp();
}
inline float __uint_as_float(unsigned u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// The device library's integer min / max.
inline int min(int a, int b) {
  return a < b ? a : b;
}
inline int max(int a, int b) {
  return a < b ? b : a;
}
inline float __int_as_float(int i) {
  float f;
  std::memcpy(&f, &i, 4);
  return f;
}
inline float __shfl_xor_sync(unsigned mask, float v, int lane_mask) {
  if (mask != 0xffffffffu) emu::fail("__shfl_xor_sync with a partial mask");
  uint32_t u;
  std::memcpy(&u, &v, 4);
  u = emu::ptx::shfl_xor(u, lane_mask);
  std::memcpy(&v, &u, 4);
  return v;
}
inline int __shfl_xor_sync(unsigned mask, int v, int lane_mask) {
  if (mask != 0xffffffffu) emu::fail("__shfl_xor_sync with a partial mask");
  return static_cast<int>(emu::ptx::shfl_xor(static_cast<uint32_t>(v), lane_mask));
}
inline int __shfl_sync(unsigned mask, int v, int src_lane) {
  if (mask != 0xffffffffu) emu::fail("__shfl_sync with a partial mask");
  return static_cast<int>(emu::ptx::shfl_idx(static_cast<uint32_t>(v), src_lane));
}
inline unsigned __shfl_xor_sync(unsigned mask, unsigned v, int lane_mask) {
  return static_cast<unsigned>(__shfl_xor_sync(mask, static_cast<int>(v), lane_mask));
}
// 8-byte values: two 32-bit shuffles (shfl: emu::ptx::shfl_xor or shfl_idx with its lane
// argument), as the device library does them.
template <typename T>
T shfl_8_bytes(unsigned mask, T v, uint32_t (*shfl)(uint32_t, int), int lane, const char* name) {
  static_assert(sizeof(T) == 8, "8-byte values only");
  if (mask != 0xffffffffu) emu::fail(std::string(name) + " with a partial mask");
  uint32_t w[2];
  std::memcpy(w, &v, 8);
  w[0] = shfl(w[0], lane);
  w[1] = shfl(w[1], lane);
  std::memcpy(&v, w, 8);
  return v;
}
template <typename T>
T shfl_xor_8_bytes(unsigned mask, T v, int lane_mask) {
  return shfl_8_bytes(mask, v, emu::ptx::shfl_xor, lane_mask, "__shfl_xor_sync");
}
inline double __shfl_xor_sync(unsigned mask, double v, int lane_mask) {
  return shfl_xor_8_bytes(mask, v, lane_mask);
}
inline double __shfl_sync(unsigned mask, double v, int src_lane) {
  return shfl_8_bytes(mask, v, emu::ptx::shfl_idx, src_lane, "__shfl_sync");
}
inline long __shfl_xor_sync(unsigned mask, long v, int lane_mask) {
  return shfl_xor_8_bytes(mask, v, lane_mask);
}
inline long long __shfl_xor_sync(unsigned mask, long long v, int lane_mask) {
  return shfl_xor_8_bytes(mask, v, lane_mask);
}
inline unsigned long long __shfl_xor_sync(unsigned mask, unsigned long long v, int lane_mask) {
  return shfl_xor_8_bytes(mask, v, lane_mask);
}
inline unsigned __float_as_uint(float f) {
  unsigned u;
  std::memcpy(&u, &f, 4);
  return u;
}
// Atomics: one OS thread runs every emulated thread and a fiber gives way only where it waits,
// so a read-modify-write is atomic as written.
inline int atomicMin(int* p, int v) {
  const int old = *p;
  if (v < old) *p = v;
  return old;
}
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
  const unsigned long long old = *p;
  *p = old + v;
  return old;
}
inline unsigned long long atomicMax(unsigned long long* p, unsigned long long v) {
  const unsigned long long old = *p;
  if (v > old) *p = v;
  return old;
}
// The device library's classification functions, in the global namespace as CUDA has them.
using std::isfinite;
using std::isinf;
using std::isnan;
// The cached loads: plain loads here (one OS thread, coherent memory); __ldg is the read-only
// path, checked as ld.global.nc is.
template <typename T>
T __ldg(const T* p) {
  emu::check_read_only(p, sizeof(T), "__ldg");
  return *p;
}
template <typename T>
T __ldcg(const T* p) {
  return *p;
}
inline bool __any_sync(unsigned mask, bool pred) {
  if (mask != 0xffffffffu) emu::fail("__any_sync with a partial mask");
  return emu::ptx::any(pred);
}
inline bool __all_sync(unsigned mask, bool pred) {
  if (mask != 0xffffffffu) emu::fail("__all_sync with a partial mask");
  return !emu::ptx::any(!pred);
}
