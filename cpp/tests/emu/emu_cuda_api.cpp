// emu_cuda_api.h: the emulated device's memory, streams and launch checks.
#include "tests/emu/emu_cuda_api.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>

namespace emu {

namespace {

constexpr size_t kGuardBytes = 256;
constexpr unsigned char kGuardByte = 0xa5;
constexpr int kReservedSharedPerBlock = 1024;
constexpr int kDefaultDynamicShared = 48 * 1024;  // without the opt-in

struct Allocation {
  size_t bytes;
  bool host;  // cudaHostAlloc'd (no guard check, not in device memory)
};

Device g_device;
std::map<const unsigned char*, Allocation> g_allocs;  // by start
int64_t g_device_bytes = 0;
std::map<const void*, int> g_kernel_shared;  // the opt-in, per kernel
cuda::cudaError_t g_last = cuda::cudaSuccess;
std::string g_fault;
int g_streams = 0;

cuda::cudaError_t fail_with(cuda::cudaError_t e) {
  g_last = e;
  return e;
}

// The live allocation holding [p, p + bytes), or null.
const Allocation* holding(const void* p, size_t bytes) {
  const auto* c = static_cast<const unsigned char*>(p);
  auto it = g_allocs.upper_bound(c);
  if (it == g_allocs.begin()) return nullptr;
  --it;
  if (c + bytes > it->first + it->second.bytes) return nullptr;
  return &it->second;
}

std::string guard_of(const unsigned char* p, const Allocation& a) {
  for (size_t i = 0; i < kGuardBytes; ++i)
    if (p[a.bytes + i] != kGuardByte)
      return "a write " + std::to_string(i) + " bytes past the end of a device allocation of " +
             std::to_string(a.bytes) + " bytes";
  return {};
}

}  // namespace

void set_device(const Device& d) {
  g_device = d;
}
const Device& device() {
  return g_device;
}

int occupancy(unsigned threads, int dynamic_smem) {
  if (threads == 0) return 0;
  return std::min({g_device.max_blocks_per_sm, g_device.threads_per_sm / static_cast<int>(threads),
                   g_device.shared_per_sm / (dynamic_smem + kReservedSharedPerBlock)});
}

int64_t device_bytes_in_use() {
  return g_device_bytes;
}
int64_t device_allocations() {
  int64_t n = 0;
  for (const auto& [p, a] : g_allocs) n += a.host ? 0 : 1;
  return n;
}

std::string check_device_guards() {
  for (const auto& [p, a] : g_allocs)
    if (!a.host)
      if (std::string e = guard_of(p, a); !e.empty()) return e;
  return {};
}

namespace cuda {

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorCooperativeLaunchTooLarge: return "cudaErrorCooperativeLaunchTooLarge";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorLaunchFailure: return g_fault.c_str();
    case cudaErrorCooperativeLaunchTooLarge: return "too many blocks in cooperative launch";
  }
  return "unknown error";
}

cudaError_t cudaGetLastError() {
  const cudaError_t e = g_last;
  g_last = cudaSuccess;
  return e;
}

cudaError_t cudaSetDevice(int d) {
  return d == 0 ? cudaSuccess : fail_with(cudaErrorInvalidValue);
}
cudaError_t cudaGetDevice(int* d) {
  *d = 0;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr a, int d) {
  if (d != 0) return fail_with(cudaErrorInvalidValue);
  switch (a) {
    case cudaDevAttrMultiProcessorCount: *v = g_device.sms; break;
    case cudaDevAttrComputeCapabilityMajor: *v = g_device.major; break;
    case cudaDevAttrComputeCapabilityMinor: *v = g_device.minor; break;
    case cudaDevAttrCooperativeLaunch: *v = g_device.cooperative ? 1 : 0; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *v = kMaxDynamicShared; break;
    default: return fail_with(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  *total_bytes = static_cast<size_t>(g_device.memory);
  *free_bytes = static_cast<size_t>(g_device.memory - g_device_bytes);
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** p, size_t bytes) {
  if (bytes == 0) return fail_with(cudaErrorInvalidValue);
  if (static_cast<int64_t>(bytes) > g_device.memory - g_device_bytes)
    return fail_with(cudaErrorMemoryAllocation);
  const size_t rounded = (bytes + 255) / 256 * 256;
  auto* m = static_cast<unsigned char*>(std::aligned_alloc(256, rounded + kGuardBytes));
  if (!m) return fail_with(cudaErrorMemoryAllocation);
  std::memset(m, 0xff, bytes);
  std::memset(m + bytes, kGuardByte, rounded + kGuardBytes - bytes);
  g_allocs[m] = Allocation{bytes, false};
  g_device_bytes += static_cast<int64_t>(bytes);
  register_allocation(m, bytes);
  *p = m;
  return cudaSuccess;
}

cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  auto it = g_allocs.find(static_cast<unsigned char*>(p));
  if (it == g_allocs.end() || it->second.host) return fail_with(cudaErrorInvalidDevicePointer);
  const std::string broken = guard_of(it->first, it->second);
  g_device_bytes -= static_cast<int64_t>(it->second.bytes);
  unregister_allocation(p);
  g_allocs.erase(it);
  std::free(p);
  if (broken.empty()) return cudaSuccess;
  g_fault = "cudaFree: " + broken;  // freed all the same
  return fail_with(cudaErrorLaunchFailure);
}

cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned) {
  if (bytes == 0) return fail_with(cudaErrorInvalidValue);
  auto* m = static_cast<unsigned char*>(std::aligned_alloc(256, (bytes + 255) / 256 * 256));
  if (!m) return fail_with(cudaErrorMemoryAllocation);
  std::memset(m, 0xff, bytes);
  g_allocs[m] = Allocation{bytes, true};
  *p = m;
  return cudaSuccess;
}

cudaError_t cudaHostGetDevicePointer(void** d, void* h, unsigned flags) {
  const Allocation* a = holding(h, 1);
  if (flags != 0 || !a || !a->host) return fail_with(cudaErrorInvalidValue);
  *d = h;  // one address space
  return cudaSuccess;
}

cudaError_t cudaFreeHost(void* p) {
  auto it = g_allocs.find(static_cast<unsigned char*>(p));
  if (it == g_allocs.end() || !it->second.host) return fail_with(cudaErrorInvalidValue);
  g_allocs.erase(it);
  std::free(p);
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  *s = reinterpret_cast<cudaStream_t>(static_cast<uintptr_t>(++g_streams));
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t) {
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) {
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind k,
                            cudaStream_t) {
  const void* dev = k == cudaMemcpyHostToDevice ? dst : src;
  const Allocation* a = holding(dev, bytes);
  if (!a || a->host) return fail_with(cudaErrorInvalidValue);
  std::memcpy(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t) {
  const Allocation* a = holding(dst, bytes);
  if (!a || a->host) return fail_with(cudaErrorInvalidValue);
  std::memset(dst, value, bytes);
  return cudaSuccess;
}

cudaError_t set_kernel_shared(const void* kernel, int bytes) {
  if (bytes < 0 || bytes > kMaxDynamicShared) return fail_with(cudaErrorInvalidValue);
  g_kernel_shared[kernel] = bytes;
  return cudaSuccess;
}
int kernel_shared(const void* kernel) {
  const auto it = g_kernel_shared.find(kernel);
  return it == g_kernel_shared.end() ? kDefaultDynamicShared : it->second;
}

cudaError_t check_launch(const void* kernel, uint64_t blocks, unsigned threads, unsigned block_yz,
                         size_t dynamic_smem, bool cooperative) {
  const int smem = static_cast<int>(dynamic_smem);
  if (smem > kernel_shared(kernel) || block_yz != 1) return fail_with(cudaErrorInvalidValue);
  if (!cooperative) return cudaSuccess;
  if (!g_device.cooperative) return fail_with(cudaErrorInvalidValue);
  const uint64_t most = static_cast<uint64_t>(occupancy(threads, smem)) * g_device.sms;
  if (blocks > most) return fail_with(cudaErrorCooperativeLaunchTooLarge);
  return cudaSuccess;
}

cudaError_t launch_result(const std::string& fault) {
  g_fault = fault.empty() ? check_device_guards() : fault;
  return g_fault.empty() ? cudaSuccess : fail_with(cudaErrorLaunchFailure);
}

}  // namespace cuda

}  // namespace emu
