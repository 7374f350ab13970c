// The emulator's launches and thread scheduler (emu_runtime.h): fibers (emu_context.h), one per
// thread of the running block; a thread gives way only where it waits (barrier, collective), so
// every interleaving the emulator produces is one the hardware allows. Their state is
// emu_runtime_state.h's; a block's shared memory is emu_shared.cpp's.
#include "tests/emu/emu_runtime.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "tests/emu/emu_context.h"
#include "tests/emu/emu_runtime_state.h"

#if defined(NPR_EMU_ASAN)
extern "C" void __sanitizer_start_switch_fiber(void** fake_stack_save, const void* bottom,
                                               size_t size);
extern "C" void __sanitizer_finish_switch_fiber(void* fake_stack_save, const void** bottom_old,
                                                size_t* size_old);
extern "C" void __asan_unpoison_memory_region(void const volatile* addr, size_t size);
#endif

namespace emu {

using namespace state;

namespace {

struct Fault {};  // unwinds a thread after fail()

constexpr uint64_t kStuckClockStepNs = 500000000;  // what a round of lone spinners costs

Options g_options;
Launch* g_launch = nullptr;
Dim3 g_grid_dim{0, 0, 0}, g_block_dim{0, 0, 0};  // the running launch's (zero between launches)

// "x" or "(x, y)".
std::string block_name(const Dim3& id) {
  if (g_launch && g_launch->grid.y == 1) return std::to_string(id.x);
  return "(" + std::to_string(id.x) + ", " + std::to_string(id.y) + ")";
}

}  // namespace

namespace state {

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
Block& my_block() {
  return *me().block;
}
}  // namespace state

namespace {

std::string where(const Launch& l) {
  if (l.current < 0) return "emu";
  const Fiber& f = l.fibers[static_cast<size_t>(l.current)];
  const std::string t = l.block.y == 1 && l.block.z == 1
                            ? std::to_string(f.tid.x)
                            : "(" + std::to_string(f.tid.x) + ", " + std::to_string(f.tid.y) +
                                  ", " + std::to_string(f.tid.z) + ")";
  return "block " + block_name(f.block->id) + " thread " + t;
}
}  // namespace

namespace state {

// The priority position of the fiber of thread `t` of block `b`.
unsigned position(const Launch& l, const Block& b, unsigned t) {
  const unsigned i = b.first_fiber + t, n = static_cast<unsigned>(l.fibers.size());
  return l.opt.reverse_order ? n - 1 - i : i;
}

}  // namespace state

namespace {

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
}  // namespace

namespace state {

void wait_for(const uint64_t* generation) {
  Fiber& f = me();
  f.wait_on = generation;
  f.wait_value = *generation;
  switch_to_scheduler(false);
  f.wait_on = nullptr;
  if (active().aborted) throw Fault{};
}

}  // namespace state

namespace {

void fiber_main() {
  Launch& l = active();
#if defined(NPR_EMU_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, &l.scheduler_bottom, &l.scheduler_size);
#endif
  Fiber& f = me();
  Block& b = *f.block;
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
  ++b.exited;
  ++l.exited;
  if (!l.aborted && b.barrier_arrived > 0) {
    l.error = where(l) + ": left the kernel while " + std::to_string(b.barrier_arrived) +
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

// Threads a block of the launch.
}  // namespace

namespace state {

unsigned block_threads(const Launch& l) {
  return l.block.x * l.block.y * l.block.z;
}

void wake_block(const Block& b) {
  Launch& l = active();
  const unsigned p0 = position(l, b, 0), p1 = position(l, b, block_threads(l) - 1);
  l.hint = std::min({l.hint, p0, p1});
}

}  // namespace state

namespace {

void init_block(Launch& l, Block& b, unsigned id, unsigned first_fiber) {
  const unsigned n = block_threads(l);
  b.id.x = id % l.grid.x;
  b.id.y = id / l.grid.x;
  b.first_fiber = first_fiber;
  b.warps.assign((n + 31) / 32, Slot{});
  b.warpgroups.assign((n + 127) / 128, Slot{});
  b.group_async.resize((n + 127) / 128);
  b.shared_storage.assign(kSharedWindow + 1024, 0xff);  // poison: bf16 and fp32 NaN
  const auto base = reinterpret_cast<uintptr_t>(b.shared_storage.data());
  b.shared = b.shared_storage.data() + ((1024 - base % 1024) % 1024);  // address 0: 1024-aligned
  b.async_writer.assign(kSharedWindow, int16_t{-1});
}

// A fault of block b found outside its threads (its PDL view's): it ends the launch (the first).
void block_fault(Launch& l, const Block& b, const std::string& fault) {
  if (fault.empty() || l.aborted) return;
  l.error = "block " + block_name(b.id) + ": " + fault;
  l.aborted = true;
}

// Runs blocks [first, first + count) together to their end; false when one faulted (l.error
// says why).
bool run_blocks(Launch& l, Stacks& stacks, unsigned first, unsigned count) {
  const unsigned threads = block_threads(l), n = threads * count;
  l.blocks.clear();
  l.blocks.resize(count);
  l.fibers.clear();
  l.fibers.resize(n);
  l.exited = 0;
  l.hint = 0;
  for (unsigned k = 0; k < count; ++k) init_block(l, l.blocks[k], first + k, k * threads);
  for (unsigned i = 0; i < n; ++i) {
    Fiber& f = l.fibers[i];
    f.block = &l.blocks[i / threads];
    f.linear = i % threads;
    f.tid.x = f.linear % l.block.x;
    f.tid.y = f.linear / l.block.x % l.block.y;
    f.tid.z = f.linear / (l.block.x * l.block.y);
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
  if (count == 1) pdl_block_start(l, l.blocks[0]);
  // Always the first runnable thread in priority order (lowest index first, or highest): a
  // thread runs as far as it can before any later one moves, which makes a missing barrier
  // between producer and consumer threads show up as unlanded data.
  bool spinners_alone = false;
  for (;;) {
    if (l.aborted) l.hint = 0;  // every thread runs once more, to unwind
    int pick = -1;
    for (unsigned k = l.hint; k < n && pick < 0; ++k) {
      const int i = static_cast<int>(l.opt.reverse_order ? n - 1 - k : k);
      const Fiber& f = l.fibers[static_cast<size_t>(i)];
      if (f.done || (f.spinning && !l.aborted)) continue;
      if (l.aborted || !f.wait_on || *f.wait_on != f.wait_value) {
        pick = i;
        l.hint = k;
      }
    }
    if (l.exited == n) break;
    if (pick >= 0) {
      spinners_alone = false;
      resume(l, pick);
      continue;
    }
    // Every thread waits: work in flight that some of them wait for (a bulk load an mbarrier
    // tracks, whose producer need not wait on it) lands now, the latest the hardware may land it.
    bool landed = false;
    for (Block& b : l.blocks) landed = (b.async && b.async->stalled()) || landed;
    if (landed) {
      l.hint = 0;
      continue;
    }
    // The kernels before have finished: threads waiting at griddepcontrol.wait go on.
    bool went_live = false;
    for (Block& b : l.blocks)
      if (waits_for_pdl(l, b)) {
        block_fault(l, b, pdl_go_live(l, b));
        went_live = true;
      }
    if (went_live) {
      l.hint = 0;
      continue;
    }
    // Only spinning threads can move: they poll once more each; if they were alone last round
    // too, time passes (a barrier timeout can fire) instead of nothing at all.
    std::vector<int> spinners;
    for (unsigned k = 0; k < n; ++k) {
      const int i = static_cast<int>(l.opt.reverse_order ? n - 1 - k : k);
      if (!l.fibers[static_cast<size_t>(i)].done && l.fibers[static_cast<size_t>(i)].spinning)
        spinners.push_back(i);
    }
    if (!spinners.empty()) {
      if (spinners_alone) l.clock_ns += kStuckClockStepNs;
      spinners_alone = true;
      for (const int i : spinners)
        if (!l.fibers[static_cast<size_t>(i)].done) resume(l, i);
      continue;
    }
    // Every live thread waits for something no thread can do.
    unsigned at_barriers = 0;
    for (const Block& b : l.blocks) at_barriers += b.barrier_arrived;
    l.error = "block " + block_name(l.blocks[0].id) + (count > 1 ? "+" : "") + ": deadlock (" +
              std::to_string(n - l.exited) + " threads wait and none can go on; " +
              std::to_string(at_barriers) + " at __syncthreads)";
    l.aborted = true;
  }
  for (Block& b : l.blocks) block_fault(l, b, pdl_block_end(l, b));
  if (!l.aborted)
    for (const Block& b : l.blocks) {
      const std::string own = b.async ? b.async->block_end() : std::string();
      if (!own.empty() && !l.aborted) {
        l.error = "block " + block_name(b.id) + ": " + own;
        l.aborted = true;
      }
      for (size_t g = 0; g < b.group_async.size(); ++g)
        if (b.group_async[g]) {
          const std::string left = b.group_async[g]->block_end();
          if (!left.empty() && !l.aborted) {
            l.error = "block " + block_name(b.id) + " warpgroup " + std::to_string(g) + ": " + left;
            l.aborted = true;
          }
        }
    }
  return !l.aborted;
}

std::string run(Dim3 grid_dim, Dim3 block_dim, int dynamic_smem, bool cooperative,
                const std::function<void()>& body) {
  PdlView* const pdl_view = take_pdl_view();  // this launch's, whether it runs or not
  const uint64_t threads = uint64_t{block_dim.x} * block_dim.y * block_dim.z;
  const unsigned grid = grid_dim.x * grid_dim.y;
  if (grid_dim.z != 1 || grid_dim.x == 0 || grid_dim.y == 0 || grid / grid_dim.y != grid_dim.x)
    return "emu: a grid of " + std::to_string(grid_dim.x) + " x " + std::to_string(grid_dim.y) +
           " x " + std::to_string(grid_dim.z) + " blocks (x and y only, each at least 1)";
  if (g_launch) return "emu: launch inside a launch";
  if (threads == 0 || threads > 1024 || block_dim.z > 64)
    return "emu: a block of " + std::to_string(block_dim.x) + " x " + std::to_string(block_dim.y) +
           " x " + std::to_string(block_dim.z) + " threads (1 to 1024, z at most 64)";
  if (dynamic_smem < 0 || dynamic_smem > kMaxDynamicShared)
    return "emu: " + std::to_string(dynamic_smem) + " bytes of dynamic shared memory (at most " +
           std::to_string(kMaxDynamicShared) + ")";
  if (g_options.dynamic_shared_base % 16 != 0 ||
      g_options.dynamic_shared_base + static_cast<uint32_t>(dynamic_smem) > kSharedWindow)
    return "emu: dynamic shared base " + std::to_string(g_options.dynamic_shared_base);
  if (cooperative && grid > kMaxCooperativeBlocks)
    return "emu: a cooperative grid of " + std::to_string(grid) + " blocks (at most " +
           std::to_string(kMaxCooperativeBlocks) + ")";
  Launch l;
  l.opt = g_options;
  l.grid = grid_dim;
  l.block = block_dim;
  l.dynamic_bytes = dynamic_smem;
  l.body = &body;
  l.pdl_view = cooperative ? nullptr : pdl_view;
  Stacks stacks;
  g_launch = &l;
  g_grid_dim = l.grid;
  g_block_dim = l.block;
  if (cooperative) {
    run_blocks(l, stacks, 0, grid);
  } else {
    for (unsigned b = 0; b < grid; ++b)
      if (!run_blocks(l, stacks, b, 1)) break;
  }
  g_launch = nullptr;
  g_grid_dim = g_block_dim = Dim3{0, 0, 0};
  set_last_pdl(l.pdl_trace);
  return l.error;
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
  return run(Dim3{grid, 1, 1}, Dim3{threads, 1, 1}, dynamic_smem, false, body);
}

std::string launch(Dim3 grid, unsigned threads, int dynamic_smem,
                   const std::function<void()>& body) {
  return run(grid, Dim3{threads, 1, 1}, dynamic_smem, false, body);
}

std::string launch(Dim3 grid, Dim3 block, int dynamic_smem, const std::function<void()>& body) {
  return run(grid, block, dynamic_smem, false, body);
}

std::string launch_cooperative(unsigned grid, unsigned threads, int dynamic_smem,
                               const std::function<void()>& body) {
  return run(Dim3{grid, 1, 1}, Dim3{threads, 1, 1}, dynamic_smem, true, body);
}

std::string launch_cooperative(unsigned grid, Dim3 block, int dynamic_smem,
                               const std::function<void()>& body) {
  return run(Dim3{grid, 1, 1}, block, dynamic_smem, true, body);
}

const Dim3& thread_idx() {
  return me().tid;
}
const Dim3& block_idx() {
  return my_block().id;
}
const Dim3& block_dim() {
  return g_block_dim;
}
const Dim3& grid_dim() {
  return g_grid_dim;
}

void fail(const std::string& what) {
  Launch& l = active();
  if (l.error.empty()) l.error = where(l) + ": " + what;
  l.aborted = true;
  throw Fault{};
}

void sync_threads() {
  Launch& l = active();
  Block& b = my_block();
  me().polled = false;
  if (b.exited > 0)
    fail("__syncthreads after " + std::to_string(b.exited) +
         " threads of the block left the kernel");
  if (++b.barrier_arrived == block_threads(l)) {
    b.barrier_arrived = 0;
    ++b.barrier_generation;
    const unsigned p0 = position(l, b, 0), p1 = position(l, b, block_threads(l) - 1);
    l.hint = std::min({l.hint, p0, p1});
    return;
  }
  wait_for(&b.barrier_generation);
}

namespace {

// One arrival at named barrier id (what: the instruction, for faults): true when it completes
// the phase, which then releases its waiters. Threads that left after arriving counted
// (barrier.arrive, then exit) as on the hardware; a phase they can no longer fill is the
// deadlock fault.
bool named_barrier_arrival(int id, unsigned count, const char* what) {
  Launch& l = active();
  Block& b = my_block();
  me().polled = false;
  if (id < 1 || id >= kNamedBarriers)
    fail(std::string(what) + " " + std::to_string(id) + ": ids 1.." +
         std::to_string(kNamedBarriers - 1) + " (0 is __syncthreads')");
  if (count == 0 || count % 32 != 0 || count > block_threads(l))
    fail(std::string(what) + " " + std::to_string(id) + ", " + std::to_string(count) +
         ": the count must be a multiple of 32 and at most the block's threads");
  if (b.named_arrived[id] == 0) b.named_count[id] = count;
  if (b.named_count[id] != count)
    fail(std::string(what) + " " + std::to_string(id) + ": threads named counts " +
         std::to_string(b.named_count[id]) + " and " + std::to_string(count) + " in one phase");
  if (++b.named_arrived[id] != count) return false;
  b.named_arrived[id] = 0;
  ++b.named_generation[id];
  const unsigned p0 = position(l, b, 0), p1 = position(l, b, block_threads(l) - 1);
  l.hint = std::min({l.hint, p0, p1});
  return true;
}

}  // namespace

void named_barrier_sync(int id, unsigned count) {
  if (!named_barrier_arrival(id, count, "barrier.sync")) wait_for(&my_block().named_generation[id]);
}

void named_barrier_arrive(int id, unsigned count) {
  (void)named_barrier_arrival(id, count, "barrier.arrive");
}

void spin_wait() {
  Fiber& f = me();
  // The first poll reads at once: a wait that a poll ends needs no other thread to have moved
  // first, so a wait that ends when it should not (a stale count, a flag left set) lets this
  // block run ahead of the others, as on a GPU.
  if (!f.polled) {
    f.polled = true;
    return;
  }
  f.spinning = true;
  switch_to_scheduler(false);
  f.spinning = false;
  if (active().aborted) throw Fault{};
}

uint64_t clock_ns() {
  Launch& l = active();
  l.clock_ns += 100;
  return l.clock_ns;
}

int group_of(Scope s) {
  return static_cast<int>(me().linear / (s == Scope::kWarp ? 32u : 128u));
}

void collective(Scope s, const char* name, const void* in, void* out, CollectiveFn fn, void* ctx) {
  Launch& l = active();
  Block& b = my_block();
  me().polled = false;
  const unsigned members = s == Scope::kWarp ? 32u : 128u;
  const unsigned threads = block_threads(l);
  // The thread's own warp or warpgroup must be whole (a block may end in a part of a warpgroup,
  // a producer warp, as long as that part never meets a warpgroup collective).
  if ((me().linear / members + 1) * members > threads)
    fail(std::string(name) + ": this thread's " + (s == Scope::kWarp ? "warp" : "warpgroup") +
         " is not whole (the block has " + std::to_string(threads) + " threads)");
  Slot& slot = (s == Scope::kWarp ? b.warps : b.warpgroups)[me().linear / members];
  if (slot.arrived > 0 && std::strcmp(slot.name, name) != 0)
    fail(std::string("divergent collective: this thread is at ") + name + ", others of its " +
         (s == Scope::kWarp ? "warp" : "warpgroup") + " at " + slot.name);
  slot.name = name;
  const unsigned rank = me().linear % members;
  slot.in[rank] = in;
  slot.out[rank] = out;
  if (++slot.arrived == static_cast<int>(members)) {
    fn(slot.in, slot.out, static_cast<int>(members), ctx);
    slot.arrived = 0;
    ++slot.generation;
    // The scope's threads may run again: the first of them in priority order.
    const unsigned first = me().linear - rank;
    l.hint = std::min({l.hint, position(l, b, first), position(l, b, first + members - 1)});
    return;
  }
  wait_for(&slot.generation);
}

std::unique_ptr<AsyncState>& thread_async() {
  return me().async;
}

std::unique_ptr<AsyncState>& warpgroup_async() {
  return my_block().group_async[me().linear / 128];
}

std::unique_ptr<AsyncState>& block_async() {
  return my_block().async;
}

}  // namespace emu
