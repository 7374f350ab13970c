// emu_runtime.h's registry of global buffers: what a test hands its kernels and the device
// allocations (emu_cuda_api.h), and the checks of asynchronous copies, reductions and read-only
// loads against it.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "tests/emu/emu_cuda_api.h"
#include "tests/emu/emu_runtime.h"

namespace emu {

namespace {

struct Global {
  const unsigned char* p;
  size_t bytes;
  bool kernel_writes;
  bool allocation;  // a device allocation's, kept by clear_globals
};
std::vector<Global> g_globals;

}  // namespace

void register_global(const void* p, size_t bytes, bool kernel_writes) {
  g_globals.push_back(Global{static_cast<const unsigned char*>(p), bytes, kernel_writes, false});
}
void clear_globals() {
  synchronize();  // the kernels queued with these buffers run before they go
  g_globals.erase(std::remove_if(g_globals.begin(), g_globals.end(),
                                 [](const Global& g) { return !g.allocation; }),
                  g_globals.end());
}
void register_allocation(const void* p, size_t bytes) {
  g_globals.push_back(Global{static_cast<const unsigned char*>(p), bytes, false, true});
}
void unregister_allocation(const void* p) {
  g_globals.erase(std::remove_if(g_globals.begin(), g_globals.end(),
                                 [&](const Global& g) { return g.allocation && g.p == p; }),
                  g_globals.end());
}
std::vector<std::pair<unsigned char*, size_t>> global_ranges() {
  std::vector<std::pair<unsigned char*, size_t>> r;
  for (const Global& g : g_globals)
    if (g.bytes > 0) r.emplace_back(const_cast<unsigned char*>(g.p), g.bytes);
  std::sort(r.begin(), r.end());
  std::vector<std::pair<unsigned char*, size_t>> merged;
  for (const auto& [p, n] : r) {
    if (!merged.empty() && p <= merged.back().first + merged.back().second) {
      auto& m = merged.back();
      if (p + n > m.first + m.second) m.second = static_cast<size_t>(p + n - m.first);
      continue;
    }
    merged.emplace_back(p, n);
  }
  return merged;
}
void check_global(const void* p, size_t bytes, const char* what) {
  if (g_globals.empty()) return;
  const auto* c = static_cast<const unsigned char*>(p);
  const Global* below = nullptr;  // the buffer starting nearest below p, to say where p is
  for (const Global& g : g_globals) {
    if (c >= g.p && c + bytes <= g.p + g.bytes) return;
    if (g.p <= c && (!below || g.p > below->p)) below = &g;
  }
  std::string where;
  if (below)
    where = " (" + std::to_string(c - below->p) + " bytes into a buffer of " +
            std::to_string(below->bytes) + ")";
  fail(std::string(what) + ": " + std::to_string(bytes) +
       " bytes of global memory outside every buffer the test passed" + where);
}
void check_read_only(const void* p, size_t bytes, const char* what) {
  check_global(p, bytes, what);
  const auto* c = static_cast<const unsigned char*>(p);
  for (const Global& g : g_globals)
    if (g.kernel_writes && c < g.p + g.bytes && g.p < c + bytes)
      fail(std::string(what) +
           " (the read-only path) of a buffer the kernel writes: it may read "
           "stale bytes");
}

}  // namespace emu
