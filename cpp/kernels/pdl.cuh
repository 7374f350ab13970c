// Programmatic dependent launch (PDL, Hopper and later): a kernel launched with the
// programmatic-serialization attribute may start while the kernel before it on the stream is
// still running, as soon as every CTA of that one has called launch_dependents(); it must call
// wait() before it reads anything an earlier kernel writes (wait() returns once those kernels
// have finished and their writes are visible). What runs before wait() overlaps the kernel
// before: the decode's skinny linear layers prefetch their weights into L2 there, since weights
// do not depend on earlier kernels. Both calls are no-ops where nothing was launched that way,
// and compile to nothing below sm_90 (where launch_pdl launches normally). In the emulator build
// they are emu's, which runs a programmatic kernel's blocks up to their wait against memory from
// before the kernels they may overlap (tests/emu/emu_pdl_check.h). Inside .cu files only.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <utility>

namespace npr::pdl {

__device__ __forceinline__ void launch_dependents() {
#if defined(NPR_EMU)
  emu::pdl_launch_dependents();
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

__device__ __forceinline__ void wait() {
#if defined(NPR_EMU)
  emu::pdl_wait();
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Prefetches the 128-byte line holding p into L2 (by the calling thread).
__device__ __forceinline__ void prefetch_line_l2(const void* p) {
#if defined(NPR_EMU)
  emu::ptx::prefetch_l2(p);
#else
  asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
#endif
}

// Prefetches [p, p + bytes) into L2, 128-byte lines spread over the CTA's threads.
__device__ __forceinline__ void prefetch_l2(const void* p, int64_t bytes) {
  if (bytes <= 0) return;
  const char* c = static_cast<const char*>(p);
  for (int64_t off = static_cast<int64_t>(threadIdx.x) * 128; off < bytes;
       off += static_cast<int64_t>(blockDim.x) * 128)
    prefetch_line_l2(c + off);
  if (threadIdx.x == 0) prefetch_line_l2(c + bytes - 1);
}

// The calling CTA's share of [p, p + bytes) prefetched into L2: the range cut into gridDim.x
// runs of whole 128-byte lines, run blockIdx.x for this CTA (none where the range is shorter than
// the grid). Every byte is inside the range.
__device__ __forceinline__ void prefetch_l2_share(const void* p, int64_t bytes) {
  if (bytes <= 0) return;
  const int64_t lines = (bytes + 127) / 128, grid = gridDim.x;
  const int64_t per = (lines + grid - 1) / grid, first = static_cast<int64_t>(blockIdx.x) * per;
  if (first >= lines) return;
  const int64_t end = (first + per) * 128 < bytes ? (first + per) * 128 : bytes;
  prefetch_l2(static_cast<const char*>(p) + first * 128, end - first * 128);
}

// Whether the current device can launch programmatically dependent kernels (compute 9.0+).
inline bool device_supports_pdl() {
  int dev = 0, major = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return false;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess)
    return false;
  return major >= 9;
}

// Launches kernel<<<grid, block, smem, stream>>>(args...), with the programmatic-serialization
// attribute when `pdl` is asked for and the device supports it.
template <typename... Params, typename... Args>
cudaError_t launch(bool pdl, void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                   cudaStream_t stream, Args&&... args) {
  static const bool supported = device_supports_pdl();
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = pdl && supported ? 1 : 0;
  return cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...);
}

}  // namespace npr::pdl
