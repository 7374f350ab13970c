// Prints the JSON lines kernel_trace_inject.cpp writes for hand-made CUPTI records, so that
// test/kernel-trace.test.ts can check the bench's reader against the library's writer on a
// machine without a GPU: a templated kernel in an anonymous namespace (its name mangled, as
// CUPTI gives it), a kernel whose name is not mangled and needs escaping, a memcpy and a memset
// inside a graph; and records the library leaves out (no stamps, never completed, another kind),
// which print nothing. Makes no CUPTI or CUDA call.
#include "kernel_trace_inject.cpp"

namespace {
// What the library writes for a record, as its activity-buffer callback sees it.
template <typename R>
void print(const R& r) {
  const std::string line = record_line(reinterpret_cast<const CUpti_Activity*>(&r));
  if (!line.empty()) std::printf("%s\n", line.c_str());
}
}  // namespace

int main() {
  g_base = 1000000;  // InitializeInjection's CUPTI clock; every stamp is written relative to it

  KernelRecord k{};
  k.kind = CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
  k.name = "_ZN3npr12_GLOBAL__N_16kernelILi1EEEvPf";
  k.start = g_base + 5000;
  k.end = g_base + 9250;
  k.streamId = 7;
  k.correlationId = 42;
  k.graphId = 3;
  k.graphNodeId = (1ull << 40) + 5;  // node ids pass 2^32
  k.gridX = 128;
  k.gridY = 2;
  k.gridZ = 1;
  k.blockX = 256;
  k.blockY = 1;
  k.blockZ = 1;
  k.registersPerThread = 96;
  k.staticSharedMemory = 1024;
  k.dynamicSharedMemory = 74752;
  print(k);

  KernelRecord plain = k;
  plain.name = "odd\"name\\with\tescapes";
  plain.start = g_base - 300;  // before the library started: a negative stamp
  plain.end = g_base + 100;
  plain.graphId = 0;
  plain.graphNodeId = 0;
  plain.correlationId = 43;
  print(plain);

  MemcpyRecord c{};
  c.kind = CUPTI_ACTIVITY_KIND_MEMCPY;
  c.bytes = 4096;
  c.start = g_base + 10000;
  c.end = g_base + 11500;
  c.streamId = 7;
  c.correlationId = 44;
  print(c);

  MemsetRecord m{};
  m.kind = CUPTI_ACTIVITY_KIND_MEMSET;
  m.bytes = 256;
  m.start = g_base + 12000;
  m.end = g_base + 12400;
  m.streamId = 7;
  m.correlationId = 42;
  m.graphId = 3;
  m.graphNodeId = 9;
  print(m);

  KernelRecord untimed = k;  // CUPTI could not collect its stamps: both 0
  untimed.start = untimed.end = 0;
  print(untimed);
  MemcpyRecord unfinished = c;  // never completed: end 0
  unfinished.end = 0;
  print(unfinished);
  MemsetRecord other = m;  // a kind the library does not write
  other.kind = CUPTI_ACTIVITY_KIND_OVERHEAD;
  print(other);
  return 0;
}
