// The part of the CUDA runtime API that the emulator build's host code calls (launchers,
// CudaContext, DeviceDecodePlan), over one emulated device: device memory is host memory,
// poisoned when allocated (0xff: bf16 and fp32 NaN) and followed by a guard that every launch
// and every free checks (a write past an allocation's end fails like compute-sanitizer's
// memcheck); streams run everything at once; copies to or from device memory must lie inside a
// live allocation; the shared-memory opt-in, occupancy and the cooperative limit are those the
// runtime applies, for a device whose size the test sets. Included by cuda_emu.h (namespace
// emu::cuda, used unqualified there), which adds the launch itself (emu_cuda_launch.h).
//
// Device allocations are registered with the emulator's global-memory checks (register_global)
// for their lifetime, as buffers the kernel does not write: a test that hands a kernel a buffer
// it writes registers that range again as written.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "tests/emu/emu_pdl_check.h"
#include "tests/emu/emu_runtime.h"

namespace emu {

// The emulated device. Occupancy: blocks an SM holds = the least of max_blocks_per_sm (what
// registers would allow), threads_per_sm / threads and shared_per_sm / (dynamic bytes + 1 KB the
// runtime reserves per block).
struct Device {
  int sms = 8;
  int max_blocks_per_sm = 32;
  int threads_per_sm = 2048;
  int shared_per_sm = 233472;  // an H100's 228 KB
  int64_t memory = int64_t{1} << 30;
  bool cooperative = true;   // cudaDevAttrCooperativeLaunch
  int major = 9, minor = 0;  // compute capability: an H100's (the sm_90a kernels run)
};
void set_device(const Device& d);
const Device& device();
int occupancy(unsigned threads, int dynamic_smem);

// Bytes of device memory allocated and not freed, and live allocations (leak checks).
int64_t device_bytes_in_use();
int64_t device_allocations();
// "" or what broke: a live allocation whose guard was overwritten (checked after every launch).
std::string check_device_guards();

// Deferred mode (the default): kernel launches, copies between the device and page-locked
// memory, memsets, event records and graph replays are queued, as a GPU queues them, and run at
// a synchronisation: a stream's or the device's, a blocking copy, cudaFree, or an event's (the
// work up to its record, and no more). A copy from pageable memory takes its bytes when called,
// one into pageable memory waits for the device, as the driver does. So a caller that reads a
// result before its sync, or rewrites a page-locked source before the copy has run, gets what a
// GPU would give it. Off (set_deferred(false), or NPR_EMU_EAGER=1 in the environment, to tell a
// missing sync from a kernel's own fault): everything runs when called. set_deferred runs what is
// queued first.
void set_deferred(bool on);
bool deferred();
// Runs everything queued (the tests' cudaDeviceSynchronize without the error checks).
void synchronize();

namespace cuda {

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorUnknown = 999,
  cudaErrorNotReady = 600,
  cudaErrorLaunchFailure = 719,
  cudaErrorCooperativeLaunchTooLarge = 720
};
using cudaStream_t = struct EmuStream*;
using cudaEvent_t = struct EmuEvent*;
using cudaGraph_t = struct EmuGraph*;
using cudaGraphExec_t = struct EmuGraph*;
enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1
};
enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributePreferredSharedMemoryCarveout = 9
};
enum { cudaSharedmemCarveoutMaxShared = 100 };
enum cudaDeviceAttr {
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrCooperativeLaunch = 95,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97
};
enum cudaMemcpyKind {
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3
};
enum { cudaStreamNonBlocking = 1, cudaHostAllocDefault = 0, cudaHostAllocMapped = 2 };
enum { cudaEventDisableTiming = 2 };

// A kernel's fault (a trap, an access outside the buffers, a write past an allocation's guard)
// is asynchronous and sticky, as on a GPU: the launch goes through; the next runtime call finds
// it (cudaErrorLaunchFailure), and from then on every call returns it (frees and destroys still
// release what they name) until cudaDeviceReset.
const char* cudaGetErrorName(cudaError_t e);
// For cudaErrorLaunchFailure: the fault, as the emulator named it.
const char* cudaGetErrorString(cudaError_t e);
// The last error of a call and clears it; once a fault has been found, that fault (not cleared).
cudaError_t cudaGetLastError();
// Frees every allocation and clears the errors (a fault's too). Unlike a GPU's, it keeps the
// kernels' shared-memory opt-ins: the product sets some once a process, and tests reset between.
cudaError_t cudaDeviceReset();
// Not CUDA: the fault a launch since the last call left (empty if none), with the errors
// cleared but the allocations kept, so that a test that runs kernel after kernel on the same
// buffers names the launch that faulted instead of finding its fault at the next launch.
std::string take_launch_fault();

cudaError_t cudaSetDevice(int d);
cudaError_t cudaGetDevice(int* d);
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr a, int d);
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);
cudaError_t cudaMalloc(void** p, size_t bytes);
template <typename T>
cudaError_t cudaMalloc(T** p, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind k);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaFree(void* p);
cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned flags);
cudaError_t cudaHostGetDevicePointer(void** d, void* h, unsigned flags);
cudaError_t cudaFreeHost(void* p);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind k,
                            cudaStream_t s);
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t s);

// Events: a record takes the emulated clock's reading (timings here are not the GPU's).
cudaError_t cudaEventCreate(cudaEvent_t* e);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b);

// Graphs: between begin and end of a capture, launches, copies and memsets are recorded (their
// arguments by value, as a graph keeps them) instead of run; a launch of the instantiated graph
// runs them in order. A synchronisation while capturing is an error, as on a GPU.
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* g);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* e, cudaGraph_t g, unsigned long long flags);
cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t s);
cudaError_t cudaGraphDestroy(cudaGraph_t g);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e);
// What a queued op is: a kernel launch (programmatically dependent or not: emu_pdl_check.h
// checks what those read before their wait) or anything else.
using QueuedKind = pdl_check::OpKind;
// Whether a capture is recording, and what it records (an op returns its error at replay).
bool capturing();
void record(std::function<cudaError_t()> op, QueuedKind kind = QueuedKind::kOther);
// Whether a launch is queued now (a capture's, or deferred mode's) rather than run, and the
// queueing: into the capture, or onto the streams' queue.
bool queued();
void enqueue(std::function<cudaError_t()> op, QueuedKind kind = QueuedKind::kOther);
// Graphs captured, replays run (the tests' evidence that a path replayed).
int64_t graph_launches();
// Kernel grids run so far, eagerly or by a graph's replay (the tests' evidence of a fused launch).
int64_t kernels_run();

// The per-kernel opt-in (cudaFuncAttributeMaxDynamicSharedMemorySize), by the kernel's address.
cudaError_t set_kernel_shared(const void* kernel, int bytes);
int kernel_shared(const void* kernel);
// A launch's result: success; a fault (or a broken guard after it) becomes the sticky error.
cudaError_t launch_result(const std::string& fault);
// A launch's checks, as the runtime makes them: a grid of 1 to 2^31 - 1 blocks in x and 1 to
// 65,535 in y and z (cudaErrorInvalidConfiguration otherwise), 1 to 1024 threads a block
// (threads = blockDim.x, block_yz = blockDim.y * blockDim.z), dynamic shared bytes within the
// kernel's opt-in; a cooperative grid must fit the device at once.
cudaError_t check_launch(const void* kernel, Dim3 grid, unsigned threads, unsigned block_yz,
                         size_t dynamic_smem, bool cooperative);

template <typename F>
cudaError_t cudaFuncSetAttribute(F* kernel, cudaFuncAttribute a, int v) {
  if (a == cudaFuncAttributeMaxDynamicSharedMemorySize)
    return set_kernel_shared(reinterpret_cast<const void*>(kernel), v);
  return cudaSuccess;
}

template <typename F>
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* n, F*, int threads, size_t smem) {
  *n = occupancy(static_cast<unsigned>(threads), static_cast<int>(smem));
  return cudaSuccess;
}

}  // namespace cuda

}  // namespace emu
