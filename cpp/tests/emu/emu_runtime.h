// A CPU emulator for CUDA kernels, for tests only: it runs a kernel's device code, compiled as
// host C++ (cuda_emu.h), with every thread of a block as a fiber on one OS thread, so the
// kernels that no GPU here can run (the sm_90a wgmma ones) are checked against the CPU oracles
// on every machine that has the toolkit's headers. This file: launches, the thread scheduler,
// barriers, warp / warpgroup collectives, shared memory, the registry of global buffers, faults.
// The instructions themselves (mma, ldmatrix, cp.async, wgmma, mbarrier and the bulk copies it
// tracks) are emu_ptx.h's.
//
// Semantics kept strict on purpose, so that a kernel that only works by luck of timing fails:
// threads switch only at barriers, collectives and mbarrier waits, and the first runnable thread
// in priority order (first-first, or last-first) always runs, so consumers outrun unsynchronised
// producers; asynchronous copies and MMAs complete either at issue or only at their wait
// (Options; a bulk load an mbarrier tracks lands when a thread waits on that mbarrier, at the
// latest when every thread of the launch waits for something); shared memory starts poisoned
// (0xff: bf16 and fp32 NaN) at an address that is not 1024-aligned; a thread that leaves while
// others wait at a barrier, lanes that meet at different collectives, and a block where no
// thread can progress are faults. Blocks run one after another, or all together for a
// cooperative launch (grid barriers: pollers give way, the clock can run out).
//
// Not emulated: timing, occupancy, register limits, bank conflicts, the generic / async proxy
// ordering of plain shared stores (only cp.async writes are tracked for fence.proxy.async), and
// memory ordering beyond the order threads run in (a __syncwarp that only orders memory, where a
// shuffle before it already makes the lanes meet, is not missed; nor is a __threadfence).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace emu {

struct Dim3 {
  unsigned x = 0, y = 1, z = 1;
};

struct Options {
  bool eager_async = false;             // cp.async, bulk loads, wgmma done at issue (else at waits)
  bool reverse_order = false;           // priority to the last threads (else the first)
  uint32_t dynamic_shared_base = 0x90;  // shared address of the dynamic window (16-aligned)
  // With eager_async, wgmma still completes only at its wait: copies land at once and MMAs read
  // shared memory late, so a copy that overwrites a stage buffer an MMA in flight still reads
  // (a ring reused too early) changes the result.
  bool mma_at_wait = false;
};
void set_options(const Options& o);
const Options& options();

// The largest dynamic shared memory a block may ask for (an H100's opt-in limit).
constexpr int kMaxDynamicShared = 232448;

// Runs body() as every thread of `grid` blocks of `threads` (1-D), `dynamic_smem` bytes of
// dynamic shared memory each, one block after another. Returns "" or the first fault, naming
// the block and thread.
std::string launch(unsigned grid, unsigned threads, int dynamic_smem,
                   const std::function<void()>& body);
// The same over a 2-D grid (grid.z = 1): blocks run x-major, blockIdx.y = block / grid.x.
std::string launch(Dim3 grid, unsigned threads, int dynamic_smem,
                   const std::function<void()>& body);
// The same with 2-D or 3-D blocks (at most 1024 threads): threads numbered x-fastest, as CUDA
// does, so warp w holds linear indices 32 w .. 32 w + 31.
std::string launch(Dim3 grid, Dim3 block, int dynamic_smem, const std::function<void()>& body);
// The same with every block resident at once (a cooperative launch: grid barriers work), at most
// kMaxCooperativeBlocks of them.
constexpr unsigned kMaxCooperativeBlocks = 64;
std::string launch_cooperative(unsigned grid, unsigned threads, int dynamic_smem,
                               const std::function<void()>& body);
std::string launch_cooperative(unsigned grid, Dim3 block, int dynamic_smem,
                               const std::function<void()>& body);

// ---- programmatic dependent launches (pdl.cuh) ---------------------------------------------
// A kernel launched programmatically dependent may run what comes before its griddepcontrol.wait
// while the kernels before it still run. set_pdl_view gives the next launch (one block at a
// time: not a cooperative one) a view of global memory as those kernels found it: stale() puts it
// in place as each block starts; live() puts the memory as it is back once every thread of the
// block that can still move waits at pdl_wait, or when the block ends, and returns "" or a fault
// (the block wrote, before its wait, bytes those kernels write). So a read before the wait of
// something an earlier kernel writes gets the old bytes, as it could on a GPU.
struct PdlView {
  virtual ~PdlView() = default;
  virtual void stale() = 0;
  virtual std::string live() = 0;
};
void set_pdl_view(PdlView* view);
// What the last launch's blocks did of the two: early, every block let its dependents launch
// (pdl_launch_dependents) before it first waited (pdl_wait), or never waited (the kernel after it
// may then overlap the kernels this one waits for too); triggered, some thread let them launch
// at all (the kernel after it may then start before this one ends); waited, some thread waited.
struct PdlTrace {
  bool early = true, triggered = false, waited = false;
};
const PdlTrace& last_launch_pdl();
// griddepcontrol.launch_dependents and griddepcontrol.wait, as pdl.cuh's.
void pdl_launch_dependents();
void pdl_wait();

// ---- inside a launch ----------------------------------------------------------------------
const Dim3& thread_idx();
const Dim3& block_idx();
// The running launch's block and grid sizes (the same objects always: zero between launches).
const Dim3& block_dim();
const Dim3& grid_dim();

// Records the fault (the launch's first) and unwinds this thread; the launch then stops.
[[noreturn]] void fail(const std::string& what);

void sync_threads();
// barrier.sync id, count (id 1..15, count a multiple of 32): waits until `count` threads of the
// block have arrived at barrier `id`, wherever in the code each reaches it (the non-.aligned
// form). Barrier 0 is sync_threads'.
void named_barrier_sync(int id, unsigned count);
// barrier.arrive id, count: counts this thread at barrier id without waiting for the phase (the
// producer side of a named barrier whose other threads sync on it).
void named_barrier_arrive(int id, unsigned count);
// A thread polling global memory (a grid barrier's spin): the first poll since the thread last
// met its block or warp reads at once; each further one gives way to every thread that can
// move; when only pollers are left round after round, the emulated clock jumps ahead.
void spin_wait();
// The emulated %globaltimer: nanoseconds, advancing with every read and with stuck rounds.
uint64_t clock_ns();

// The dynamic shared window: its first byte, the shared address of a generic pointer into it,
// and the bytes at a shared address (a fault unless [addr, addr + bytes) lies in the window).
unsigned char* dynamic_shared();
// A static __shared__ array of the running block (core/dynamic_shared.cuh's NPR_STATIC_SHARED):
// `bytes` at an `align`-aligned shared address (at least 16), the same for every thread of the
// block that passes the same tag (the declaration's own static object), poisoned like the
// dynamic window. Static and dynamic bytes together must fit what a block may have.
void* static_shared(const void* tag, size_t bytes, uint32_t align = 16);
uint32_t shared_address(const void* p);
unsigned char* shared_bytes(uint32_t addr, uint32_t bytes, const char* what);

// Which thread's cp.async last wrote each shared byte and has not yet published it to the async
// proxy (fence.proxy.async); -1 where none.
void mark_async_written(uint32_t addr, uint32_t bytes);
void fence_proxy_async();
void check_async_visible(uint32_t addr, uint32_t bytes, const char* what);

// A collective of the `members` threads of this thread's warp (32) or warpgroup (128): each
// passes its input and output; the last to arrive runs fn over all of them (member order) and
// releases the others. Threads that meet at collectives of different names are a fault.
using CollectiveFn = void (*)(const void* const* ins, void* const* outs, int members, void* ctx);
enum class Scope { kWarp, kWarpgroup };
void collective(Scope s, const char* name, const void* in, void* out, CollectiveFn fn, void* ctx);
// The index in the block of this thread's warp / warpgroup.
int group_of(Scope s);

// Per-thread, per-warpgroup and per-block slots for the instruction layer's asynchronous state
// (empty at the start of every block; the instruction layer fills them): thread_exit runs when
// the thread ends, block_end when the block does ("" or what was left in flight). stalled (the
// block's slot only) runs when no thread of the launch can move: it completes work in flight
// that some waiting thread waits for, as late as the hardware may, and says whether it did (then
// the scheduler looks again; else the launch is a deadlock). It runs outside every thread, so it
// may not fault: what it does was checked at issue.
struct AsyncState {
  virtual ~AsyncState() = default;
  virtual void thread_exit() {}
  virtual std::string block_end() { return {}; }
  virtual bool stalled() { return false; }
};
std::unique_ptr<AsyncState>& thread_async();
std::unique_ptr<AsyncState>& warpgroup_async();
std::unique_ptr<AsyncState>& block_async();

// Global buffers the test hands to a kernel: asynchronous copies and reductions must stay
// inside one of them (plain loads and stores are not checked; AddressSanitizer builds do).
// A buffer registered as written by the kernel (the launch's outputs and scratch) must not be
// read through the read-only path (ld.global.nc, __ldg): that path is for data constant while
// the kernel runs, and may return stale bytes for data the kernel wrote.
void register_global(const void* p, size_t bytes, bool kernel_writes = false);
// Drops what register_global registered, once the kernels queued so far have run (deferred
// mode: they read those buffers); device allocations (emu_cuda_api.h's cudaMalloc), registered
// by these two for their lifetime, stay.
void clear_globals();
void register_allocation(const void* p, size_t bytes);
void unregister_allocation(const void* p);
// Every registered buffer's bytes, as disjoint extents in address order (overlapping
// registrations merged).
std::vector<std::pair<unsigned char*, size_t>> global_ranges();
void check_global(const void* p, size_t bytes, const char* what);
void check_read_only(const void* p, size_t bytes, const char* what);

}  // namespace emu
