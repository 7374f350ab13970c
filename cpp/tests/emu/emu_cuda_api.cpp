// emu_cuda_api.h: the emulated device's memory, streams and launch checks.
#include "tests/emu/emu_cuda_api.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <vector>

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
// A kernel's fault, as a GPU has it: the launch goes through, the next call that is not an error
// query finds the fault (`seen` from then on), and every call after fails with it, until
// cudaDeviceReset.
cuda::cudaError_t g_sticky = cuda::cudaSuccess;
bool g_sticky_seen = false;
int g_streams = 0;
// The capture in progress (null when none) and the graphs' ops.
struct GraphOp {
  std::function<cuda::cudaError_t()> fn;
  cuda::QueuedKind kind;
};
struct Graph {
  std::vector<GraphOp> ops;
};
Graph* g_capture = nullptr;
cuda::cudaStream_t g_capture_stream = nullptr;
// Work enqueued on the streams and not yet run (deferred mode, the default): it runs at a
// synchronisation (everything, or up to an event's record), as a GPU runs it at its own pace.
// One queue for every stream: the order of enqueueing is one the streams could have run in.
struct Pending {
  uint64_t seq;
  std::function<cuda::cudaError_t()> op;
  cuda::QueuedKind kind = cuda::QueuedKind::kOther;
};
std::deque<Pending> g_pending;
uint64_t g_enqueued = 0;  // ops enqueued so far (the last one's seq)
bool g_deferred = std::getenv("NPR_EMU_EAGER") == nullptr;
bool g_running = false;                       // inside drain: an op's own API calls run at once
std::map<const void*, uint64_t> g_event_seq;  // an event's last record, by its seq
int64_t g_graph_launches = 0;
int64_t g_kernels_run = 0;   // kernel grids run: eager launches and graph replays' launches
uint64_t g_event_clock = 0;  // events' readings: one tick a record

cuda::cudaError_t fail_with(cuda::cudaError_t e) {
  g_last = e;
  return e;
}

// The sticky fault, now found, or success.
cuda::cudaError_t sticky() {
  if (g_sticky == cuda::cudaSuccess) return cuda::cudaSuccess;
  g_sticky_seen = true;
  return fail_with(g_sticky);
}
#define EMU_STICKY()                                                              \
  do {                                                                            \
    if (const cudaError_t sticky_e_ = sticky(); sticky_e_ != 0) return sticky_e_; \
  } while (0)

// Runs the enqueued ops with seq <= through, in order. After a fault nothing more runs: the
// context is lost, as on a GPU (the ops are dropped). An op that fails when it runs (a graph's
// copy into memory freed since its capture) is such a fault, found at the next call.
void drain(uint64_t through = UINT64_MAX) {
  if (g_running) return;
  g_running = true;
  while (!g_pending.empty() && g_pending.front().seq <= through) {
    const std::function<cuda::cudaError_t()> op = std::move(g_pending.front().op);
    const cuda::QueuedKind kind = g_pending.front().kind;
    g_pending.pop_front();
    if (g_sticky != cuda::cudaSuccess) continue;
    // The op after this one in stream order, wherever this drain stops.
    pdl_check::before(kind, g_pending.empty() ? cuda::QueuedKind::kOther : g_pending.front().kind);
    const cuda::cudaError_t e = op();
    const std::string pdl_fault = pdl_check::after(kind);
    if (e != cuda::cudaSuccess && g_sticky == cuda::cudaSuccess) {
      g_sticky = e;
      g_sticky_seen = false;
    }
    if (!pdl_fault.empty() && g_sticky == cuda::cudaSuccess) {  // the launch's own fault
      g_fault = pdl_fault;
      g_sticky = cuda::cudaErrorLaunchFailure;
      g_sticky_seen = false;
    }
  }
  pdl_check::reset();  // what runs next follows a synchronisation
  g_running = false;
}

// Whether stream work is enqueued now rather than run: deferred mode, outside a drain.
bool deferring() {
  return g_deferred && !g_running;
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

void set_deferred(bool on) {
  drain();
  g_deferred = on;
}
bool deferred() {
  return g_deferred;
}
void synchronize() {
  drain();
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
  drain();
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
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorUnknown: return "cudaErrorUnknown";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorCooperativeLaunchTooLarge: return "cudaErrorCooperativeLaunchTooLarge";
    case cudaErrorNotReady: return "cudaErrorNotReady";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorStreamCaptureUnsupported:
      return "operation not permitted when stream is capturing";
    case cudaErrorUnknown: return "unknown error";
    case cudaErrorLaunchFailure: return g_fault.c_str();
    case cudaErrorCooperativeLaunchTooLarge: return "too many blocks in cooperative launch";
    case cudaErrorNotReady: return "device not ready";
  }
  return "unknown error";
}

cudaError_t cudaGetLastError() {
  if (g_sticky_seen) return g_sticky;  // not cleared, as a GPU's sticky error is not
  const cudaError_t e = g_last;
  g_last = cudaSuccess;
  return e;
}

cudaError_t cudaSetDevice(int d) {
  EMU_STICKY();
  return d == 0 ? cudaSuccess : fail_with(cudaErrorInvalidValue);
}
cudaError_t cudaGetDevice(int* d) {
  EMU_STICKY();
  *d = 0;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr a, int d) {
  EMU_STICKY();
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
  EMU_STICKY();
  *total_bytes = static_cast<size_t>(g_device.memory);
  *free_bytes = static_cast<size_t>(g_device.memory - g_device_bytes);
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** p, size_t bytes) {
  EMU_STICKY();
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
  drain();  // cudaFree waits for the device
  auto it = g_allocs.find(static_cast<unsigned char*>(p));
  if (it == g_allocs.end() || it->second.host) return fail_with(cudaErrorInvalidDevicePointer);
  const std::string broken = guard_of(it->first, it->second);
  g_device_bytes -= static_cast<int64_t>(it->second.bytes);
  unregister_allocation(p);
  g_allocs.erase(it);
  std::free(p);
  if (broken.empty()) return sticky();  // a fault's error, if any: freed all the same
  g_fault = "cudaFree: " + broken;
  return fail_with(cudaErrorLaunchFailure);
}

cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned) {
  EMU_STICKY();
  if (bytes == 0) return fail_with(cudaErrorInvalidValue);
  auto* m = static_cast<unsigned char*>(std::aligned_alloc(256, (bytes + 255) / 256 * 256));
  if (!m) return fail_with(cudaErrorMemoryAllocation);
  std::memset(m, 0xff, bytes);
  g_allocs[m] = Allocation{bytes, true};
  *p = m;
  return cudaSuccess;
}

cudaError_t cudaHostGetDevicePointer(void** d, void* h, unsigned flags) {
  EMU_STICKY();
  const Allocation* a = holding(h, 1);
  if (flags != 0 || !a || !a->host) return fail_with(cudaErrorInvalidValue);
  *d = h;  // one address space
  return cudaSuccess;
}

cudaError_t cudaFreeHost(void* p) {
  drain();  // as cudaFree
  auto it = g_allocs.find(static_cast<unsigned char*>(p));
  if (it == g_allocs.end() || !it->second.host) return fail_with(cudaErrorInvalidValue);
  g_allocs.erase(it);
  std::free(p);
  return sticky();
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  EMU_STICKY();
  *s = reinterpret_cast<cudaStream_t>(static_cast<uintptr_t>(++g_streams));
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t) {
  drain();  // its work still runs
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) {
  if (capturing()) return fail_with(cudaErrorStreamCaptureUnsupported);
  drain();
  EMU_STICKY();
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* e) {
  EMU_STICKY();
  *e = reinterpret_cast<cudaEvent_t>(new uint64_t(0));
  return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) {
  return cudaEventCreate(e);
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  drain(g_event_seq[e]);  // a record still pending writes the event
  g_event_seq.erase(e);
  delete reinterpret_cast<uint64_t*>(e);
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  EMU_STICKY();
  if (!e) return fail_with(cudaErrorInvalidResourceHandle);
  auto* clock = reinterpret_cast<uint64_t*>(e);
  if (!deferring() || capturing()) {
    *clock = ++g_event_clock;
    return cudaSuccess;
  }
  g_pending.push_back(Pending{++g_enqueued, [clock] {
                                *clock = ++g_event_clock;
                                return cudaSuccess;
                              }});
  g_event_seq[e] = g_enqueued;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  if (!e) return fail_with(cudaErrorInvalidResourceHandle);
  drain(g_event_seq[e]);  // the work before its last record, and no more
  EMU_STICKY();
  return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  EMU_STICKY();
  if (!a || !b) return fail_with(cudaErrorInvalidResourceHandle);
  if (g_pending.size() &&
      (g_pending.front().seq <= g_event_seq[a] || g_pending.front().seq <= g_event_seq[b]))
    return fail_with(cudaErrorNotReady);
  *ms =
      1e-3f * static_cast<float>(*reinterpret_cast<uint64_t*>(b) - *reinterpret_cast<uint64_t*>(a));
  return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode) {
  EMU_STICKY();
  if (g_capture) return fail_with(cudaErrorStreamCaptureUnsupported);
  g_capture = new Graph;
  g_capture_stream = s;
  return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* g) {
  if (!g_capture || s != g_capture_stream) return fail_with(cudaErrorInvalidValue);
  *g = reinterpret_cast<cudaGraph_t>(g_capture);
  g_capture = nullptr;
  return sticky();
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* e, cudaGraph_t g, unsigned long long) {
  EMU_STICKY();
  if (!g) return fail_with(cudaErrorInvalidValue);
  *e = reinterpret_cast<cudaGraphExec_t>(new Graph(*reinterpret_cast<Graph*>(g)));
  return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t) {
  EMU_STICKY();
  if (!e || capturing()) return fail_with(cudaErrorInvalidValue);
  ++g_graph_launches;
  const Graph* g = reinterpret_cast<Graph*>(e);
  if (deferring()) {  // the ops as the graph holds them now (destroying it later does not matter)
    for (const auto& op : g->ops) enqueue(op.fn, op.kind);
    return cudaSuccess;
  }
  for (const auto& op : g->ops) {
    if (const cudaError_t err = op.fn(); err != cudaSuccess) return err;
    if (g_sticky != cudaSuccess) break;  // a kernel faulted: the rest never runs
  }
  return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t g) {
  delete reinterpret_cast<Graph*>(g);
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e) {
  delete reinterpret_cast<Graph*>(e);
  return cudaSuccess;
}
bool capturing() {
  return g_capture != nullptr;
}
void record(std::function<cudaError_t()> op, QueuedKind kind) {
  g_capture->ops.push_back(GraphOp{std::move(op), kind});
}
bool queued() {
  return capturing() || deferring();
}
void enqueue(std::function<cudaError_t()> op, QueuedKind kind) {
  if (capturing())
    record(std::move(op), kind);
  else
    g_pending.push_back(Pending{++g_enqueued, std::move(op), kind});
}
int64_t graph_launches() {
  return g_graph_launches;
}
int64_t kernels_run() {
  drain();  // what has run once the device is idle
  return g_kernels_run;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind k,
                            cudaStream_t s) {
  EMU_STICKY();
  if (capturing()) {
    record([=] { return cudaMemcpyAsync(dst, src, bytes, k, s); });
    return cudaSuccess;
  }
  const auto in_device = [&](const void* p) {
    const Allocation* a = holding(p, bytes);
    return a && !a->host;
  };
  if ((k != cudaMemcpyDeviceToHost && !in_device(dst)) ||
      (k != cudaMemcpyHostToDevice && !in_device(src)))
    return fail_with(cudaErrorInvalidValue);
  if (!deferring() || bytes == 0) {
    std::memcpy(dst, src, bytes);
    return cudaSuccess;
  }
  const auto pinned = [&](const void* p) {
    const Allocation* a = holding(p, bytes);
    return a && a->host;
  };
  if (k == cudaMemcpyHostToDevice && !pinned(src)) {
    // From pageable memory the driver takes the bytes before the call returns.
    auto taken = std::make_shared<std::vector<unsigned char>>(
        static_cast<const unsigned char*>(src), static_cast<const unsigned char*>(src) + bytes);
    enqueue([dst, taken] {
      std::memcpy(dst, taken->data(), taken->size());
      return cudaSuccess;
    });
    return cudaSuccess;
  }
  if (k == cudaMemcpyDeviceToHost && !pinned(dst)) {  // to pageable memory: synchronous
    drain();
    EMU_STICKY();
    std::memcpy(dst, src, bytes);
    return cudaSuccess;
  }
  // Page-locked host memory or the device: read and written when the copy runs.
  enqueue([dst, src, bytes] {
    std::memcpy(dst, src, bytes);
    return cudaSuccess;
  });
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind k) {
  EMU_STICKY();
  if (capturing()) return fail_with(cudaErrorStreamCaptureUnsupported);
  drain();
  EMU_STICKY();
  const cudaError_t e = cudaMemcpyAsync(dst, src, bytes, k, nullptr);
  drain();
  return e;
}

cudaError_t cudaDeviceSynchronize() {
  if (capturing()) return fail_with(cudaErrorStreamCaptureUnsupported);
  drain();
  EMU_STICKY();
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t s) {
  EMU_STICKY();
  if (capturing()) {
    record([=] { return cudaMemsetAsync(dst, value, bytes, s); });
    return cudaSuccess;
  }
  const Allocation* a = holding(dst, bytes);
  if (!a || a->host) return fail_with(cudaErrorInvalidValue);
  if (deferring()) {
    enqueue([dst, value, bytes] {
      std::memset(dst, value, bytes);
      return cudaSuccess;
    });
    return cudaSuccess;
  }
  std::memset(dst, value, bytes);
  return cudaSuccess;
}

cudaError_t set_kernel_shared(const void* kernel, int bytes) {
  EMU_STICKY();
  if (bytes < 0 || bytes > kMaxDynamicShared) return fail_with(cudaErrorInvalidValue);
  g_kernel_shared[kernel] = bytes;
  return cudaSuccess;
}
int kernel_shared(const void* kernel) {
  const auto it = g_kernel_shared.find(kernel);
  return it == g_kernel_shared.end() ? kDefaultDynamicShared : it->second;
}

cudaError_t check_launch(const void* kernel, Dim3 grid, unsigned threads, unsigned block_yz,
                         size_t dynamic_smem, bool cooperative) {
  EMU_STICKY();
  if (grid.x == 0 || grid.x > 2147483647u || grid.y == 0 || grid.y > 65535 || grid.z == 0 ||
      grid.z > 65535)
    return fail_with(cudaErrorInvalidConfiguration);
  const uint64_t blocks = uint64_t{grid.x} * grid.y * grid.z;
  const int smem = static_cast<int>(dynamic_smem);
  const uint64_t block = uint64_t{threads} * block_yz;
  if (smem > kernel_shared(kernel) || block == 0 || block > 1024)
    return fail_with(cudaErrorInvalidValue);
  if (!cooperative) return cudaSuccess;
  if (!g_device.cooperative) return fail_with(cudaErrorInvalidValue);
  const uint64_t most =
      static_cast<uint64_t>(occupancy(static_cast<unsigned>(block), smem)) * g_device.sms;
  if (blocks > most) return fail_with(cudaErrorCooperativeLaunchTooLarge);
  return cudaSuccess;
}

cudaError_t launch_result(const std::string& fault) {
  ++g_kernels_run;
  const std::string f = fault.empty() ? check_device_guards() : fault;
  if (!f.empty()) {  // asynchronous: the launch itself went through
    g_fault = f;
    g_sticky = cudaErrorLaunchFailure;
    g_sticky_seen = false;
  }
  return cudaSuccess;
}

std::string take_launch_fault() {
  drain();
  std::string f = g_sticky == cudaSuccess ? std::string() : g_fault;
  g_sticky = g_last = cudaSuccess;
  g_sticky_seen = false;
  g_fault.clear();
  return f;
}

cudaError_t cudaDeviceReset() {
  g_pending.clear();  // work not yet run is lost with the context
  g_event_seq.clear();
  for (auto it = g_allocs.begin(); it != g_allocs.end();) {
    if (!it->second.host) {
      g_device_bytes -= static_cast<int64_t>(it->second.bytes);
      unregister_allocation(it->first);
    }
    std::free(const_cast<unsigned char*>(it->first));
    it = g_allocs.erase(it);
  }
  delete g_capture;
  g_capture = nullptr;
  g_sticky = g_last = cudaSuccess;
  g_sticky_seen = false;
  g_fault.clear();
  return cudaSuccess;
}

}  // namespace cuda

}  // namespace emu
