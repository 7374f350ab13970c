// A block's shared memory under the emulator (emu_runtime.h): the dynamic window, static
// __shared__ arrays below the window's top, shared addresses, and which thread's cp.async last
// wrote each byte until a fence.proxy.async publishes it. The launches and the scheduler are
// emu_runtime.cpp's.
#include <algorithm>
#include <string>

#include "tests/emu/emu_runtime.h"
#include "tests/emu/emu_runtime_state.h"

namespace emu {

using namespace state;

unsigned char* dynamic_shared() {
  Launch& l = active();
  return my_block().shared + l.opt.dynamic_shared_base;
}

void* static_shared(const void* tag, size_t bytes, uint32_t align) {
  Launch& l = active();
  Block& b = my_block();
  for (const auto& [t, addr] : b.statics)
    if (t == tag) return b.shared + addr;
  align = std::max<uint32_t>(align, 16);
  const uint32_t dyn_hi = l.opt.dynamic_shared_base + static_cast<uint32_t>(l.dynamic_bytes);
  const uint64_t lo =
      bytes > b.static_lo ? 0 : (static_cast<uint64_t>(b.static_lo) - bytes) / align * align;
  const uint64_t used = kSharedWindow - lo;
  if ((align & (align - 1)) != 0 || bytes > b.static_lo || lo < dyn_hi ||
      used + static_cast<uint64_t>(l.dynamic_bytes) > static_cast<uint64_t>(kMaxDynamicShared))
    fail("a static __shared__ array of " + std::to_string(bytes) + " bytes (aligned to " +
         std::to_string(align) + "): with the " + std::to_string(kSharedWindow - b.static_lo) +
         " static and " + std::to_string(l.dynamic_bytes) +
         " dynamic bytes already there it passes the " + std::to_string(kMaxDynamicShared) +
         " bytes a block may have");
  b.static_lo = static_cast<uint32_t>(lo);
  b.statics.emplace_back(tag, b.static_lo);
  return b.shared + b.static_lo;
}

uint32_t shared_address(const void* p) {
  Block& b = my_block();
  const auto* c = static_cast<const unsigned char*>(p);
  if (c < b.shared || c >= b.shared + kSharedWindow)
    fail("__cvta_generic_to_shared of a pointer outside the block's shared memory");
  return static_cast<uint32_t>(c - b.shared);
}

unsigned char* shared_bytes(uint32_t addr, uint32_t bytes, const char* what) {
  Launch& l = active();
  const uint32_t lo = l.opt.dynamic_shared_base, hi = lo + static_cast<uint32_t>(l.dynamic_bytes);
  const uint32_t static_lo = my_block().static_lo;
  const bool in_dynamic = addr >= lo && addr + bytes <= hi;
  const bool in_static = addr >= static_lo && addr + bytes <= kSharedWindow;
  if (addr + bytes < addr || (!in_dynamic && !in_static))
    fail(std::string(what) + ": shared bytes [" + std::to_string(addr) + ", " +
         std::to_string(addr + bytes) + ") outside the block's dynamic shared memory [" +
         std::to_string(lo) + ", " + std::to_string(hi) + ") and its static arrays [" +
         std::to_string(static_lo) + ", " + std::to_string(kSharedWindow) + ")");
  return my_block().shared + addr;
}

void mark_async_written(uint32_t addr, uint32_t bytes) {
  Block& b = my_block();
  const auto t = static_cast<int16_t>(me().linear);
  for (uint32_t i = 0; i < bytes; ++i) b.async_writer[addr + i] = t;
  me().unfenced.emplace_back(addr, bytes);
}

void fence_proxy_async() {
  Block& b = my_block();
  Fiber& f = me();
  const auto t = static_cast<int16_t>(f.linear);
  for (const auto& [addr, bytes] : f.unfenced)
    for (uint32_t i = 0; i < bytes; ++i)
      if (b.async_writer[addr + i] == t) b.async_writer[addr + i] = -1;
  f.unfenced.clear();
}

void check_async_visible(uint32_t addr, uint32_t bytes, const char* what) {
  Block& b = my_block();
  for (uint32_t i = 0; i < bytes; ++i)
    if (b.async_writer[addr + i] >= 0)
      fail(std::string(what) + " reads shared byte " + std::to_string(addr + i) + " that thread " +
           std::to_string(b.async_writer[addr + i]) +
           "'s cp.async wrote with no fence.proxy.async after it");
}

}  // namespace emu
