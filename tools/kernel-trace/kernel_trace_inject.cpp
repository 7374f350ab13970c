// A CUDA injection library for bench/decode-timeline.ts: where CUDA_INJECTION64_PATH names it,
// the CUDA driver loads it at cuInit and calls InitializeInjection. From then on it records, with
// the CUPTI activity API, every kernel, memcpy and memset the process runs on the device: the
// device's own start and end stamps (ns), the stream, the correlation id of the API call that
// launched it (one cudaGraphLaunch for all kernels of a graph replay) and the graph node it
// came from. It writes them as JSON lines to the file NPR_KERNEL_TRACE_OUT names each time the
// process calls cudaProfilerStop, and at exit: a timeline of a graph replay as the GPU ran it,
// programmatic launches overlapping included, which ncu (one kernel at a time, caches flushed)
// cannot give and which this project's GPU hosts have no nsys for.
//
// Built by the bench on the machine it runs on, against that machine's CUPTI
// (bench/_kernel-trace.ts); not part of the addon or the package's install. It collects no
// metrics and changes nothing that runs; CUPTI's kernel tracing itself costs a little per launch,
// which the bench reports beside the untraced step time.
#include <cupti.h>
#include <cxxabi.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

namespace {

// The newest record layouts of the CUPTI this is compiled against (CUDA 13: the *10 / *6 / *4
// structs; CUDA 12: *9 / *5 / *4). Every field read below is in both.
#if CUPTI_API_VERSION >= 130000
using KernelRecord = CUpti_ActivityKernel10;
using MemcpyRecord = CUpti_ActivityMemcpy6;
#else
using KernelRecord = CUpti_ActivityKernel9;
using MemcpyRecord = CUpti_ActivityMemcpy5;
#endif
using MemsetRecord = CUpti_ActivityMemset4;

constexpr size_t kBufferBytes = 8u << 20;  // one activity buffer
constexpr size_t kBufferAlign = 8;         // CUPTI wants 8-byte aligned buffers

std::mutex g_mutex;
std::vector<std::string> g_lines;  // JSON lines, in the order CUPTI handed the records over
std::string g_error;               // the first CUPTI call that failed, if one did
uint64_t g_base = 0;  // CUPTI's clock at InitializeInjection: stamps are written as ns after it
                      // (absolute ones pass 2^53 and would lose ~256 ns in a JSON reader)

// s as a JSON string literal.
std::string json_string(const char* s) {
  std::string out = "\"";
  for (const char* p = s ? s : ""; *p; ++p) {
    const unsigned char c = static_cast<unsigned char>(*p);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", c);
      out += esc;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// The kernel's C++ name (CUPTI reports the mangled one).
std::string demangled(const char* name) {
  if (!name) return "?";
  int status = 0;
  char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string out = status == 0 && d ? d : name;
  std::free(d);
  return out;
}

// The fields every record kind shares: its device interval, stream, launch call and graph node.
template <typename R>
std::string common_fields(const R& r) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "\"start\":%lld,\"end\":%lld,\"stream\":%u,\"corr\":%u,\"graph\":%u,\"node\":%llu",
                static_cast<long long>(r.start - g_base), static_cast<long long>(r.end - g_base),
                r.streamId, r.correlationId, r.graphId,
                static_cast<unsigned long long>(r.graphNodeId));
  return buf;
}

std::string kernel_line(const KernelRecord& k) {
  char buf[192];
  std::snprintf(
      buf, sizeof buf, ",\"grid\":[%d,%d,%d],\"block\":[%d,%d,%d],\"regs\":%u,\"smem\":%d}",
      k.gridX, k.gridY, k.gridZ, k.blockX, k.blockY, k.blockZ,
      static_cast<unsigned>(k.registersPerThread), k.staticSharedMemory + k.dynamicSharedMemory);
  return "{\"k\":\"kernel\",\"name\":" + json_string(demangled(k.name).c_str()) + "," +
         common_fields(k) + buf;
}

template <typename R>
std::string copy_line(const char* kind, const R& r) {
  char buf[64];
  std::snprintf(buf, sizeof buf, ",\"bytes\":%llu}", static_cast<unsigned long long>(r.bytes));
  return std::string("{\"k\":\"") + kind + "\"," + common_fields(r) + buf;
}

// Whether a record carries its interval: CUPTI gives 0 for both stamps where it could not collect
// them (and end 0 for a record it never completed); such a record says nothing about time.
template <typename R>
bool timed(const R& r) {
  return r.start != 0 && r.end != 0 && r.end >= r.start;
}

// A record's JSON line, or "" for a record not written: another kind, or one without its interval.
std::string record_line(const CUpti_Activity* record) {
  switch (record->kind) {
    case CUPTI_ACTIVITY_KIND_KERNEL:
    case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: {
      const auto& k = *reinterpret_cast<const KernelRecord*>(record);
      return timed(k) ? kernel_line(k) : "";
    }
    case CUPTI_ACTIVITY_KIND_MEMCPY: {
      const auto& c = *reinterpret_cast<const MemcpyRecord*>(record);
      return timed(c) ? copy_line("memcpy", c) : "";
    }
    case CUPTI_ACTIVITY_KIND_MEMSET: {
      const auto& m = *reinterpret_cast<const MemsetRecord*>(record);
      return timed(m) ? copy_line("memset", m) : "";
    }
    default: return "";
  }
}

void CUPTIAPI on_buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  void* p = std::aligned_alloc(kBufferAlign, kBufferBytes);
  *buffer = static_cast<uint8_t*>(p);
  *size = p ? kBufferBytes : 0;
  *max_records = 0;  // as many as fit
}

void CUPTIAPI on_buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  std::vector<std::string> lines;
  CUpti_Activity* record = nullptr;
  while (cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
    std::string line = record_line(record);
    if (!line.empty()) lines.push_back(std::move(line));
  }
  size_t dropped = 0;
  cuptiActivityGetNumDroppedRecords(nullptr, 0, &dropped);
  std::lock_guard<std::mutex> lock(g_mutex);
  for (auto& l : lines) g_lines.push_back(std::move(l));
  if (dropped > 0)
    g_lines.push_back("{\"k\":\"dropped\",\"count\":" + std::to_string(dropped) + "}");
  std::free(buffer);
}

// Flushes CUPTI's buffers and writes every line so far to NPR_KERNEL_TRACE_OUT (replacing it).
void flush_and_write() {
  cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  const char* path = std::getenv("NPR_KERNEL_TRACE_OUT");
  if (!path || !*path) return;
  std::lock_guard<std::mutex> lock(g_mutex);
  std::FILE* f = std::fopen(path, "w");
  if (!f) {
    std::fprintf(stderr, "kernel-trace: cannot write %s\n", path);
    return;
  }
  if (!g_error.empty())
    std::fprintf(f, "{\"k\":\"error\",\"what\":%s}\n", json_string(g_error.c_str()).c_str());
  for (const auto& l : g_lines) std::fprintf(f, "%s\n", l.c_str());
  std::fclose(f);
}

void CUPTIAPI on_api(void*, CUpti_CallbackDomain domain, CUpti_CallbackId id, const void* data) {
  const auto* info = static_cast<const CUpti_CallbackData*>(data);
  const bool stop =
      (domain == CUPTI_CB_DOMAIN_DRIVER_API && id == CUPTI_DRIVER_TRACE_CBID_cuProfilerStop) ||
      (domain == CUPTI_CB_DOMAIN_RUNTIME_API &&
       id == CUPTI_RUNTIME_TRACE_CBID_cudaProfilerStop_v4000);
  if (stop && info->callbackSite == CUPTI_API_EXIT) flush_and_write();
}

void at_exit() {
  flush_and_write();
}

// Records the first failing CUPTI call; true when it succeeded.
bool ok(CUptiResult r, const char* what) {
  if (r == CUPTI_SUCCESS) return true;
  const char* msg = nullptr;
  cuptiGetResultString(r, &msg);
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_error.empty()) g_error = std::string(what) + ": " + (msg ? msg : "unknown CUPTI error");
  std::fprintf(stderr, "kernel-trace: %s\n", g_error.c_str());
  return false;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) int InitializeInjection(void) {
  static bool initialized = false;
  if (initialized) return 1;
  initialized = true;
  std::atexit(at_exit);
  ok(cuptiGetTimestamp(&g_base), "cuptiGetTimestamp");
  if (!ok(cuptiActivityRegisterCallbacks(on_buffer_requested, on_buffer_completed),
          "cuptiActivityRegisterCallbacks"))
    return 1;
  ok(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "enable kernel activity");
  ok(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMCPY), "enable memcpy activity");
  ok(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMSET), "enable memset activity");
  CUpti_SubscriberHandle subscriber;
  if (ok(cuptiSubscribe(&subscriber, on_api, nullptr), "cuptiSubscribe")) {
    ok(cuptiEnableCallback(1, subscriber, CUPTI_CB_DOMAIN_DRIVER_API,
                           CUPTI_DRIVER_TRACE_CBID_cuProfilerStop),
       "cuProfilerStop callback");
    ok(cuptiEnableCallback(1, subscriber, CUPTI_CB_DOMAIN_RUNTIME_API,
                           CUPTI_RUNTIME_TRACE_CBID_cudaProfilerStop_v4000),
       "cudaProfilerStop callback");
  }
  return 1;
}
