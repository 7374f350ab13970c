// The emulator's instructions (see emu_runtime.h): what the kernels' inline PTX does, for the
// instructions our bf16 attention kernels use, written from the PTX ISA's fragment layouts. The
// device wrappers (kernels/mma_bf16.cuh, kernels/wgmma.cuh, ...) call these instead of their asm
// when compiled with NPR_EMU. Warp-wide instructions (wgmma's fence, commit and wait among them)
// are collectives of the warp's 32 lanes, wgmma.mma_async one of the warpgroup's 128 threads;
// all must be reached by every thread of the scope.
//
// Asynchronous completion follows emu::options().eager_async: cp.async copies and wgmma MMAs
// land at issue (the MMAs not with mma_at_wait), or only at the first wait that covers them
// (cp.async.wait_group per thread, wgmma.wait_group per warp). In the deferred mode a wgmma checks
// at completion that its accumulator and A registers were not written while it was in flight, and
// every wgmma checks that it reads no shared byte a cp.async wrote before a fence.proxy.async, and
// that a wgmma.fence came between the warpgroup's last wait and it.
//
// Hopper mbarriers and the 1-D bulk (TMA-style) loads they track (emu_mbarrier.cpp) follow the
// same switch: a bulk load lands at issue, or when a thread of the block waits on its mbarrier
// (try_wait.parity), or when every thread of the launch waits for something (a producer that
// never waits on the mbarrier it loads through), never sooner.
#pragma once

#include <cstdint>
#include <set>

namespace emu::ptx {

// shfl.sync.bfly with a full mask: the value of lane (lane ^ lane_mask).
uint32_t shfl_xor(uint32_t v, int lane_mask);
// shfl.sync.idx with a full mask: lane src_lane's value (each lane names its own source).
uint32_t shfl_idx(uint32_t v, int src_lane);
// bar.warp.sync with a full mask: every lane of the warp arrives before any leaves.
void syncwarp();
// vote.any with a full mask.
bool any(bool pred);

// ldmatrix.sync.aligned.m8n8.x{1,2,4}[.trans].shared.b16: lanes 8 i .. 8 i + 7 give the 16-byte
// rows of matrix i.
void ldmatrix(uint32_t* r, int matrices, bool trans, uint32_t addr);

// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32: d = a b + d.
void mma_m16n8k16(float d[4], const uint32_t a[4], const uint32_t b[2]);

// cp.async.{ca,cg}.shared.global [dst], [src], cp_bytes, src_bytes (zero fill past src_bytes).
void cp_async(uint32_t dst, const void* src, int cp_bytes, int src_bytes);
void cp_async_commit();
void cp_async_wait(int n);  // cp.async.wait_group n

// cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 [dst], [src], bytes: the floats at
// shared address src added into dst (both 16-byte aligned, bytes a multiple of 16), issued by
// the calling thread alone; cp.async.bulk.commit_group; cp.async.bulk.wait_group{.read} n. They
// complete as cp.async does (eager_async): at issue, or at the first wait that covers them, or
// when the thread ends. The deferred mode reads the source then, so a kernel that rewrites it
// before waiting adds the wrong values.
void bulk_reduce_add_f32(float* dst, uint32_t src, int bytes);
void bulk_commit();
void bulk_wait(int n);

// mbarrier (PTX ISA "Parallel Synchronization and Communication Instructions: mbarrier"): an
// 8-byte object at an 8-aligned shared address of the block's window, kept here in a side
// table of the block (its 8 bytes are neither read nor written; plain stores over them are not
// caught). A phase completes when its pending arrivals and its transaction count (bytes
// announced by expect_tx, less bytes landed by the bulk loads it tracks) both reach zero: the
// completed-phase count goes up by one, the pending arrivals go back to the init count. The
// transaction count may dip below zero meanwhile (a load landing before its expect_tx), as on the
// hardware; an expect_tx may not bring it to 2^20 or more, as the ISA requires. An address
// never initialised, a second init while bulk loads it tracks are in flight, and more arrivals
// than a phase expects are faults.
//
// mbarrier.init.shared::cta.b64 [addr], count (1 <= count < 2^20): phase count 0, `count`
// arrivals pending, no transactions.
void mbarrier_init(uint32_t addr, uint32_t count);
// mbarrier.arrive.shared::cta.b64 _, [addr]: one arrival.
void mbarrier_arrive(uint32_t addr);
// mbarrier.arrive.expect_tx.shared::cta.b64 _, [addr], tx: tx bytes announced, then one arrival.
void mbarrier_arrive_expect_tx(uint32_t addr, uint32_t tx);
// A loop of mbarrier.try_wait.parity.shared::cta.b64 until it returns true: waits until the
// phase of this parity has completed (the PTX rule: it returns once the completed-phase count's
// parity differs from `parity`, so after init parity 0 waits for the first completion and
// parity 1 returns at once). In the deferred mode it first lands the bulk loads the mbarrier
// tracks, in issue order; a block where no thread can then go on is the deadlock fault.
void mbarrier_wait_parity(uint32_t addr, uint32_t parity);
// cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [dst], [src], bytes, [mbar]
// (the CTA's own window): `bytes` (a positive multiple of 16) from global src (16-aligned, in a
// registered buffer) to shared dst (16-aligned, in the window, not over an mbarrier), which then
// counts them off mbar's transactions (complete_tx). The copy reads its source when it lands
// (at issue, or at a wait on mbar: a kernel that rewrites the source first loads the new bytes)
// and writes through the async proxy, so a read after the mbarrier wait needs no
// fence.proxy.async. Loads still in flight when the block ends are a fault.
void bulk_load(uint32_t dst, const void* src, uint32_t bytes, uint32_t mbar);

// A 2-D tensor map (CUtensorMap) as the emulator build encodes it (kernels/tma_map.cu): a
// row-major bf16 or other `elem_bytes` matrix of `rows` rows of `inner` elements, `row_bytes`
// apart, copied in boxes of box_rows x box_inner elements with the 128-byte swizzle.
struct TensorMap2d {
  static constexpr uint32_t kMagic = 0x544d3244u;  // "TM2D"
  uint32_t magic;
  uint32_t elem_bytes;
  const void* base;
  int64_t inner, rows, row_bytes;
  int32_t box_inner, box_rows;
};
// cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [dst], [map, {x,
// y}], [mbar] with the map's SWIZZLE_128B: the box at element column x, row y lands at shared dst
// (1024-aligned), box row r's 16-byte chunk c at dst + 128 r + 16 (c ^ r % 8), elements outside
// the matrix as zeros; mbar's transactions count the whole box. Lands as bulk_load does.
void tensor_load_2d(uint32_t dst, const void* map, int x, int y, uint32_t mbar);

void fence_proxy_async();  // fence.proxy.async.shared::cta
void wgmma_fence();
void wgmma_commit();
void wgmma_wait(int n);  // wgmma.wait_group n

// wgmma.mma_async m64nNk16 f32.bf16.bf16: D (64 x n) = A (64 x 16) B (16 x n) (+ D if
// scale_d). d: this thread's n / 2 accumulators (n / 8 fragments of 4, mma.sync's C layout on
// the warp's 16 rows); a_regs: this thread's 4 A registers (mma.sync's A layout), or null for A
// from a_desc; trans_a / trans_b: the operand is M- / N-major (else K-major).
void wgmma(int n, float* d, const uint32_t* a_regs, uint64_t a_desc, uint64_t b_desc, bool scale_d,
           bool trans_a, bool trans_b);

// red.global.add.v2.f32; red.global.add.u32 (any ordering: one OS thread runs every fiber).
void red_add_f32x2(float* p, float x, float y);
void red_add_u32(uint32_t* p, uint32_t v);
// ld.global.nc of `bytes` (the read-only path); prefetch.global.L2 of the line holding p. Both
// must address a registered global buffer (emu_runtime.h).
void load_global_nc(void* dst, const void* src, int bytes);
void prefetch_l2(const void* p);
// The 128-byte lines (address / 128) prefetch.global.L2 touched while recording: on clears the
// record and starts it, off stops it.
void record_prefetches(bool on);
const std::set<uint64_t>& prefetched_lines();
// Global bytes read since reset_traffic() by ld.global.nc, by cp.async (the bytes it reads
// from its source, not its zero fill) and by cp.async.bulk loads, counted at issue: what a
// kernel streams from memory.
struct Traffic {
  uint64_t nc_bytes = 0, cp_async_bytes = 0;
  uint64_t bulk_load_bytes = 0;
};
const Traffic& traffic();
void reset_traffic();
namespace detail {
// The counters traffic() reads, which the instruction files (emu_ptx.cpp, emu_mbarrier.cpp) add to.
Traffic& traffic_counters();
}  // namespace detail
// ex2.approx.ftz.f32 (here exact exp2, results below the normal range flushed to zero).
float ex2_approx_ftz(float x);

}  // namespace emu::ptx
