// Private to the emulator's runtime (emu_runtime.cpp, emu_shared.cpp, emu_pdl_runtime.cpp, and
// emu_mbarrier.cpp, whose waits give way as barriers do): the state of the running launch, its
// blocks and their threads' fibers, and the accessors these files use. Tests and kernels see
// emu_runtime.h only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tests/emu/emu_context.h"
#include "tests/emu/emu_runtime.h"

#if defined(__SANITIZE_ADDRESS__)
#define NPR_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NPR_EMU_ASAN 1
#endif
#endif

namespace emu::state {

constexpr size_t kStackBytes = 512 * 1024;  // a kernel thread's frame plus the emulator's
constexpr size_t kGuardBytes = 4096;
constexpr uint32_t kSharedWindow = 256 * 1024;  // shared addresses 0 .. kSharedWindow - 1

struct Slot {  // one warp's / warpgroup's collective in progress
  int arrived = 0;
  uint64_t generation = 0;
  const char* name = nullptr;
  const void* in[128];
  void* out[128];
};

struct Block;

struct Fiber {
  FiberContext ctx;
  unsigned char* stack = nullptr;  // kStackBytes, the lowest kGuardBytes inaccessible
  Block* block = nullptr;
  Dim3 tid;             // threadIdx
  unsigned linear = 0;  // its index in the block: x + y * blockDim.x + z * blockDim.x * blockDim.y
  bool done = false, spinning = false;
  bool polled = false;                // polled since it last met its block or warp (spin_wait)
  const uint64_t* wait_on = nullptr;  // waiting until *wait_on != wait_value
  uint64_t wait_value = 0;
  std::unique_ptr<AsyncState> async;
  std::vector<std::pair<uint32_t, uint32_t>> unfenced;  // cp.async writes not yet published
#if defined(NPR_EMU_ASAN)
  void* fake_stack = nullptr;
#endif
};

// A resident block: its barrier, collectives, warpgroups' async state and shared memory.
constexpr int kNamedBarriers = 16;  // barrier ids 0..15, as on the hardware

struct Block {
  Dim3 id;
  unsigned first_fiber = 0;  // its threads are fibers first_fiber .. + threads - 1
  unsigned barrier_arrived = 0, exited = 0;
  uint64_t barrier_generation = 0;
  // barrier.sync id, count with id 1..15: arrivals so far and the count they name, and the
  // generation that completes each phase.
  unsigned named_arrived[kNamedBarriers] = {}, named_count[kNamedBarriers] = {};
  uint64_t named_generation[kNamedBarriers] = {};
  std::vector<Slot> warps, warpgroups;
  std::vector<std::unique_ptr<AsyncState>> group_async;
  std::unique_ptr<AsyncState> async;  // the block's own (its mbarriers: emu_mbarrier.cpp)
  // Shared memory: kSharedWindow bytes, 1024-aligned, and the last async writer of each byte.
  std::vector<unsigned char> shared_storage;
  unsigned char* shared = nullptr;
  std::vector<int16_t> async_writer;
  // Static __shared__ arrays (NPR_STATIC_SHARED), each at its first use, downwards from the
  // window's top: [static_lo, kSharedWindow). Keyed by the declaration's tag.
  std::vector<std::pair<const void*, uint32_t>> statics;
  uint32_t static_lo = kSharedWindow;
  // Programmatic dependent launch: whether the launch's PdlView is in place for this block (its
  // threads wait at pdl_wait on pdl_generation until it goes live), whether a thread has waited,
  // whether one let the dependents launch before that, and whether one did at all.
  bool pdl_stale = false, pdl_waited = false, pdl_triggered = false, pdl_triggered_any = false;
  uint64_t pdl_generation = 0;
};

struct Launch {
  Options opt;
  Dim3 grid, block;
  int dynamic_bytes = 0;
  std::vector<Block> blocks;  // resident: one at a time, or the whole grid (cooperative)
  std::vector<Fiber> fibers;  // their threads, block-major
  int current = -1;
  FiberContext scheduler;
  std::string error;
  bool aborted = false;
  unsigned exited = 0;
  // Scheduling: fibers in priority order (position of fiber i: i, or n - 1 - i); no fiber before
  // position `hint` can run. Spinning fibers (polling global memory) run only when nothing else
  // can; when they alone are left round after round, the emulated clock jumps.
  unsigned hint = 0;
  uint64_t clock_ns = 1;
  const std::function<void()>* body = nullptr;
  PdlView* pdl_view = nullptr;  // set_pdl_view's, for this launch
  PdlTrace pdl_trace;           // over the blocks run so far
#if defined(NPR_EMU_ASAN)
  void* scheduler_fake_stack = nullptr;
  const void* scheduler_bottom = nullptr;
  size_t scheduler_size = 0;
#endif
};

// The running launch (aborts outside one), the running thread's fiber and its block.
Launch& active();
Fiber& me();
Block& my_block();
// The priority position of the fiber of thread `t` of block `b`.
unsigned position(const Launch& l, const Block& b, unsigned t);
unsigned block_threads(const Launch& l);
// Gives way until *generation changes (a barrier's or collective's phase ends).
void wait_for(const uint64_t* generation);
// Programmatic dependent launches (emu_pdl_runtime.cpp). take_pdl_view: set_pdl_view's view,
// for the launch starting now (the last launch's trace cleared: one refused before it runs
// neither waits nor lets others launch); set_last_pdl: the launch's trace, once it has run.
PdlView* take_pdl_view();
void set_last_pdl(const PdlTrace& trace);
// Block b starts: the launch's view, if any, in place.
void pdl_block_start(Launch& l, Block& b);
// Whether threads of block b wait for its view to go live (pdl_wait): the scheduler lets it go
// live when nothing else in the launch can move, as late as the kernels before may finish.
bool waits_for_pdl(const Launch& l, const Block& b);
// The memory as it is back in place of block b's view: "" or the view's fault.
std::string pdl_go_live(Launch& l, Block& b);
// Block b has ended: its view gone (a block that never waited, or a fault), what it did added to
// the launch's trace; "" or the view's fault.
std::string pdl_block_end(Launch& l, Block& b);
// The threads of block b may run again (a phase they wait for ended): the scheduler looks from
// the block's first thread in priority order, not only past the running one.
void wake_block(const Block& b);

}  // namespace emu::state
