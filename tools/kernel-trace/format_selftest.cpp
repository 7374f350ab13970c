// Prints the JSON lines kernel_trace_inject.cpp writes for hand-made CUPTI records, so that
// test/kernel-trace.test.ts can check the bench's reader against the library's writer on a
// machine without a GPU: a templated kernel in an anonymous namespace (its name mangled, as
// CUPTI gives it), a kernel whose name is not mangled and needs escaping, a memcpy and a memset
// inside a graph. Makes no CUPTI or CUDA call.
#include "kernel_trace_inject.cpp"

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
  std::printf("%s\n", kernel_line(k).c_str());

  KernelRecord plain = k;
  plain.name = "odd\"name\\with\tescapes";
  plain.start = g_base - 300;  // before the library started: a negative stamp
  plain.end = g_base + 100;
  plain.graphId = 0;
  plain.graphNodeId = 0;
  plain.correlationId = 43;
  std::printf("%s\n", kernel_line(plain).c_str());

  MemcpyRecord c{};
  c.kind = CUPTI_ACTIVITY_KIND_MEMCPY;
  c.bytes = 4096;
  c.start = g_base + 10000;
  c.end = g_base + 11500;
  c.streamId = 7;
  c.correlationId = 44;
  std::printf("%s\n", copy_line("memcpy", c).c_str());

  MemsetRecord m{};
  m.kind = CUPTI_ACTIVITY_KIND_MEMSET;
  m.bytes = 256;
  m.start = g_base + 12000;
  m.end = g_base + 12400;
  m.streamId = 7;
  m.correlationId = 42;
  m.graphId = 3;
  m.graphNodeId = 9;
  std::printf("%s\n", copy_line("memset", m).c_str());
  return 0;
}
