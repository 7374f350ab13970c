// The emulator's launches and thread scheduler (emu_runtime.h): fibers (emu_context.h), one per
// thread of the running block; a thread gives way only where it waits (barrier, collective), so
// every interleaving the emulator produces is one the hardware allows.
#include "tests/emu/emu_runtime.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "tests/emu/emu_context.h"

#if defined(__SANITIZE_ADDRESS__)
#define NPR_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NPR_EMU_ASAN 1
#endif
#endif
#if defined(NPR_EMU_ASAN)
extern "C" void __sanitizer_start_switch_fiber(void** fake_stack_save, const void* bottom,
                                               size_t size);
extern "C" void __sanitizer_finish_switch_fiber(void* fake_stack_save, const void** bottom_old,
                                                size_t* size_old);
extern "C" void __asan_unpoison_memory_region(void const volatile* addr, size_t size);
#endif

namespace emu {

namespace {

constexpr size_t kStackBytes = 512 * 1024;  // a kernel thread's frame plus the emulator's
constexpr size_t kGuardBytes = 4096;
constexpr uint32_t kSharedWindow = 256 * 1024;  // shared addresses 0 .. kSharedWindow - 1

struct Fault {};  // unwinds a thread after fail()

struct Slot {  // one warp's / warpgroup's collective in progress
  int arrived = 0;
  uint64_t generation = 0;
  const char* name = nullptr;
  const void* in[128];
  void* out[128];
};

struct Fiber {
  FiberContext ctx;
  unsigned char* stack = nullptr;  // kStackBytes, the lowest kGuardBytes inaccessible
  Dim3 tid;
  bool done = false;
  const uint64_t* wait_on = nullptr;  // waiting until *wait_on != wait_value
  uint64_t wait_value = 0;
  std::unique_ptr<AsyncState> async;
  std::vector<std::pair<uint32_t, uint32_t>> unfenced;  // cp.async writes not yet published
#if defined(NPR_EMU_ASAN)
  void* fake_stack = nullptr;
#endif
};

struct Launch {
  Options opt;
  Dim3 grid, block, block_id;
  int dynamic_bytes = 0;
  std::vector<Fiber> fibers;
  int current = -1;
  FiberContext scheduler;
  std::string error;
  bool aborted = false;
  // Barrier.
  unsigned barrier_arrived = 0, exited = 0;
  // Scheduling: threads in priority order (position p of thread i: i, or n - 1 - i); no thread
  // before position `hint` can run.
  unsigned hint = 0;
  uint64_t barrier_generation = 0;
  std::vector<Slot> warps, warpgroups;
  std::vector<std::unique_ptr<AsyncState>> group_async;
  // Shared memory: kSharedWindow bytes, 1024-aligned, and the last async writer of each byte.
  std::vector<unsigned char> shared_storage;
  unsigned char* shared = nullptr;
  std::vector<int16_t> async_writer;
  const std::function<void()>* body = nullptr;
#if defined(NPR_EMU_ASAN)
  void* scheduler_fake_stack = nullptr;
  const void* scheduler_bottom = nullptr;
  size_t scheduler_size = 0;
#endif
};

Options g_options;
Launch* g_launch = nullptr;
struct Global {
  const unsigned char* p;
  size_t bytes;
};
std::vector<Global> g_globals;

Launch& active() {
  if (!g_launch) {
    std::fprintf(stderr, "emu: a device function was called outside a launch\n");
    std::abort();
  }
  return *g_launch;
}
Fiber& me() {
  Launch& l = active();
  return l.fibers[static_cast<size_t>(l.current)];
}
std::string where(const Launch& l) {
  return "block " + std::to_string(l.block_id.x) + " thread " +
         (l.current >= 0 ? std::to_string(l.current) : std::string("-"));
}

// Fiber -> scheduler; returns when resumed; unwinds if the launch was aborted meanwhile.
void switch_to_scheduler(bool exiting) {
  Launch& l = active();
  Fiber& f = me();
#if defined(NPR_EMU_ASAN)
  __sanitizer_start_switch_fiber(exiting ? nullptr : &f.fake_stack, l.scheduler_bottom,
                                 l.scheduler_size);
#endif
  context_switch(&f.ctx, &l.scheduler);
#if defined(NPR_EMU_ASAN)
  __sanitizer_finish_switch_fiber(f.fake_stack, &l.scheduler_bottom, &l.scheduler_size);
#endif
  (void)exiting;
}

// Gives way until *generation moves past its current value.
void wait_for(const uint64_t* generation) {
  Fiber& f = me();
  f.wait_on = generation;
  f.wait_value = *generation;
  switch_to_scheduler(false);
  f.wait_on = nullptr;
  if (active().aborted) throw Fault{};
}

void fiber_main() {
  Launch& l = active();
#if defined(NPR_EMU_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, &l.scheduler_bottom, &l.scheduler_size);
#endif
  Fiber& f = me();
  if (!l.aborted) {
    try {
      (*l.body)();
      if (f.async) f.async->thread_exit();
    } catch (const Fault&) {
    } catch (const std::exception& e) {
      if (l.error.empty()) l.error = where(l) + ": exception " + e.what();
      l.aborted = true;
    }
  }
  f.done = true;
  ++l.exited;
  if (!l.aborted && l.barrier_arrived > 0) {
    l.error = where(l) + ": left the kernel while " + std::to_string(l.barrier_arrived) +
              " threads wait at __syncthreads";
    l.aborted = true;
  }
  switch_to_scheduler(true);
  std::abort();  // never resumed
}

void resume(Launch& l, int i) {
  l.current = i;
  Fiber& f = l.fibers[static_cast<size_t>(i)];
#if defined(NPR_EMU_ASAN)
  __sanitizer_start_switch_fiber(&l.scheduler_fake_stack, f.stack + kGuardBytes,
                                 kStackBytes - kGuardBytes);
#endif
  context_switch(&l.scheduler, &f.ctx);
#if defined(NPR_EMU_ASAN)
  __sanitizer_finish_switch_fiber(l.scheduler_fake_stack, nullptr, nullptr);
#endif
  l.current = -1;
}

struct Stacks {
  std::vector<unsigned char*> stacks;
  ~Stacks() {
    for (unsigned char* s : stacks) munmap(s, kStackBytes);
  }
  unsigned char* get(size_t i) {
    while (stacks.size() <= i) {
      void* p = mmap(nullptr, kStackBytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED) return nullptr;
      mprotect(p, kGuardBytes, PROT_NONE);  // a stack overflow faults instead of corrupting
      stacks.push_back(static_cast<unsigned char*>(p));
    }
    return stacks[i];
  }
};

// Runs one block to its end; false when it faulted (l.error says why).
bool run_block(Launch& l, Stacks& stacks) {
  const unsigned n = l.block.x;
  l.fibers.clear();
  l.fibers.resize(n);
  l.barrier_arrived = 0;
  l.exited = 0;
  l.hint = 0;
  l.warps.assign((n + 31) / 32, Slot{});
  l.warpgroups.assign((n + 127) / 128, Slot{});
  l.group_async.clear();
  l.group_async.resize((n + 127) / 128);
  std::fill(l.shared_storage.begin(), l.shared_storage.end(), 0xff);
  std::fill(l.async_writer.begin(), l.async_writer.end(), int16_t{-1});
  for (unsigned i = 0; i < n; ++i) {
    Fiber& f = l.fibers[i];
    f.tid.x = i;
    f.stack = stacks.get(i);
    if (!f.stack) {
      l.error = "emu: out of memory for thread stacks";
      return false;
    }
#if defined(NPR_EMU_ASAN)
    // A reused stack still carries the shadow of the frames its last thread left by switching
    // away (they never returned): clear it, or the new frames read as out of scope.
    __asan_unpoison_memory_region(f.stack + kGuardBytes, kStackBytes - kGuardBytes);
#endif
    context_init(&f.ctx, f.stack + kGuardBytes, kStackBytes - kGuardBytes, fiber_main);
  }
  // Always the first runnable thread in priority order (lowest index first, or highest): a
  // thread runs as far as it can before any later one moves, which makes a missing barrier
  // between producer and consumer threads show up as unlanded data.
  for (;;) {
    if (l.aborted) l.hint = 0;  // every thread runs once more, to unwind
    int pick = -1;
    for (unsigned k = l.hint; k < n && pick < 0; ++k) {
      const int i = static_cast<int>(l.opt.reverse_order ? n - 1 - k : k);
      const Fiber& f = l.fibers[static_cast<size_t>(i)];
      if (!f.done && (l.aborted || !f.wait_on || *f.wait_on != f.wait_value)) {
        pick = i;
        l.hint = k;
      }
    }
    const unsigned live = n - l.exited;
    if (live == 0) break;
    if (pick < 0) {  // every live thread waits for something no thread can do
      l.error = "block " + std::to_string(l.block_id.x) + ": deadlock (" + std::to_string(live) +
                " threads wait and none can go on; " + std::to_string(l.barrier_arrived) +
                " at __syncthreads)";
      l.aborted = true;
      continue;
    }
    resume(l, pick);
  }
  if (!l.aborted)
    for (size_t g = 0; g < l.group_async.size(); ++g)
      if (l.group_async[g]) {
        const std::string left = l.group_async[g]->block_end();
        if (!left.empty()) {
          l.error = "block " + std::to_string(l.block_id.x) + " warpgroup " + std::to_string(g) +
                    ": " + left;
          l.aborted = true;
        }
      }
  return !l.aborted;
}

}  // namespace

void set_options(const Options& o) {
  g_options = o;
}
const Options& options() {
  return g_options;
}

std::string launch(unsigned grid, unsigned threads, int dynamic_smem,
                   const std::function<void()>& body) {
  if (g_launch) return "emu: launch inside a launch";
  if (threads == 0 || threads > 1024) return "emu: " + std::to_string(threads) + " threads a block";
  if (dynamic_smem < 0 || dynamic_smem > kMaxDynamicShared)
    return "emu: " + std::to_string(dynamic_smem) + " bytes of dynamic shared memory (at most " +
           std::to_string(kMaxDynamicShared) + ")";
  if (g_options.dynamic_shared_base % 16 != 0 ||
      g_options.dynamic_shared_base + static_cast<uint32_t>(dynamic_smem) > kSharedWindow)
    return "emu: dynamic shared base " + std::to_string(g_options.dynamic_shared_base);
  Launch l;
  l.opt = g_options;
  l.grid.x = grid;
  l.block.x = threads;
  l.dynamic_bytes = dynamic_smem;
  l.body = &body;
  l.shared_storage.resize(kSharedWindow + 1024);
  const auto base = reinterpret_cast<uintptr_t>(l.shared_storage.data());
  l.shared = l.shared_storage.data() + ((1024 - base % 1024) % 1024);  // address 0: 1024-aligned
  l.async_writer.resize(kSharedWindow);
  Stacks stacks;
  g_launch = &l;
  for (unsigned b = 0; b < grid; ++b) {
    l.block_id.x = b;
    if (!run_block(l, stacks)) break;
  }
  g_launch = nullptr;
  return l.error;
}

const Dim3& thread_idx() {
  return me().tid;
}
const Dim3& block_idx() {
  return active().block_id;
}
const Dim3& block_dim() {
  return active().block;
}
const Dim3& grid_dim() {
  return active().grid;
}

void fail(const std::string& what) {
  Launch& l = active();
  if (l.error.empty()) l.error = where(l) + ": " + what;
  l.aborted = true;
  throw Fault{};
}

void sync_threads() {
  Launch& l = active();
  if (l.exited > 0)
    fail("__syncthreads after " + std::to_string(l.exited) +
         " threads of the block left the kernel");
  if (++l.barrier_arrived == l.block.x) {
    l.barrier_arrived = 0;
    ++l.barrier_generation;
    l.hint = 0;
    return;
  }
  wait_for(&l.barrier_generation);
}

unsigned char* dynamic_shared() {
  Launch& l = active();
  return l.shared + l.opt.dynamic_shared_base;
}

uint32_t shared_address(const void* p) {
  Launch& l = active();
  const auto* c = static_cast<const unsigned char*>(p);
  if (c < l.shared || c >= l.shared + kSharedWindow)
    fail("__cvta_generic_to_shared of a pointer outside shared memory");
  return static_cast<uint32_t>(c - l.shared);
}

unsigned char* shared_bytes(uint32_t addr, uint32_t bytes, const char* what) {
  Launch& l = active();
  const uint32_t lo = l.opt.dynamic_shared_base, hi = lo + static_cast<uint32_t>(l.dynamic_bytes);
  if (addr < lo || addr + bytes > hi || addr + bytes < addr)
    fail(std::string(what) + ": shared bytes [" + std::to_string(addr) + ", " +
         std::to_string(addr + bytes) + ") outside the block's dynamic shared memory [" +
         std::to_string(lo) + ", " + std::to_string(hi) + ")");
  return l.shared + addr;
}

void mark_async_written(uint32_t addr, uint32_t bytes) {
  Launch& l = active();
  const auto t = static_cast<int16_t>(l.current);
  for (uint32_t i = 0; i < bytes; ++i) l.async_writer[addr + i] = t;
  me().unfenced.emplace_back(addr, bytes);
}

void fence_proxy_async() {
  Launch& l = active();
  Fiber& f = me();
  const auto t = static_cast<int16_t>(l.current);
  for (const auto& [addr, bytes] : f.unfenced)
    for (uint32_t i = 0; i < bytes; ++i)
      if (l.async_writer[addr + i] == t) l.async_writer[addr + i] = -1;
  f.unfenced.clear();
}

void check_async_visible(uint32_t addr, uint32_t bytes, const char* what) {
  Launch& l = active();
  for (uint32_t i = 0; i < bytes; ++i)
    if (l.async_writer[addr + i] >= 0)
      fail(std::string(what) + " reads shared byte " + std::to_string(addr + i) + " that thread " +
           std::to_string(l.async_writer[addr + i]) +
           "'s cp.async wrote with no fence.proxy.async after it");
}

int lane_of(Scope s) {
  return static_cast<int>(me().tid.x % (s == Scope::kWarp ? 32u : 128u));
}
int group_of(Scope s) {
  return static_cast<int>(me().tid.x / (s == Scope::kWarp ? 32u : 128u));
}

void collective(Scope s, const char* name, const void* in, void* out, CollectiveFn fn, void* ctx) {
  Launch& l = active();
  const unsigned members = s == Scope::kWarp ? 32u : 128u;
  if (l.block.x % members != 0)
    fail(std::string(name) + ": the block's " + std::to_string(l.block.x) +
         " threads are not whole " + (s == Scope::kWarp ? "warps" : "warpgroups"));
  Slot& slot = (s == Scope::kWarp ? l.warps : l.warpgroups)[me().tid.x / members];
  if (slot.arrived > 0 && std::strcmp(slot.name, name) != 0)
    fail(std::string("divergent collective: this thread is at ") + name + ", others of its " +
         (s == Scope::kWarp ? "warp" : "warpgroup") + " at " + slot.name);
  slot.name = name;
  const unsigned rank = me().tid.x % members;
  slot.in[rank] = in;
  slot.out[rank] = out;
  if (++slot.arrived == static_cast<int>(members)) {
    fn(slot.in, slot.out, static_cast<int>(members), ctx);
    slot.arrived = 0;
    ++slot.generation;
    // The scope's threads may run again: the first of them in priority order.
    const unsigned first = me().tid.x - rank, last = first + members - 1;
    const unsigned pos = l.opt.reverse_order ? l.block.x - 1 - last : first;
    l.hint = std::min(l.hint, pos);
    return;
  }
  wait_for(&slot.generation);
}

std::unique_ptr<AsyncState>& thread_async() {
  return me().async;
}

std::unique_ptr<AsyncState>& warpgroup_async() {
  return active().group_async[me().tid.x / 128];
}

void register_global(const void* p, size_t bytes) {
  g_globals.push_back(Global{static_cast<const unsigned char*>(p), bytes});
}
void clear_globals() {
  g_globals.clear();
}
void check_global(const void* p, size_t bytes, const char* what) {
  if (g_globals.empty()) return;
  const auto* c = static_cast<const unsigned char*>(p);
  for (const Global& g : g_globals)
    if (c >= g.p && c + bytes <= g.p + g.bytes) return;
  fail(std::string(what) + ": " + std::to_string(bytes) +
       " bytes of global memory outside every buffer the test passed");
}

}  // namespace emu
