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
#pragma once

#include <cstdint>

namespace emu::ptx {

// shfl.sync.bfly with a full mask: the value of lane (lane ^ lane_mask).
uint32_t shfl_xor(uint32_t v, int lane_mask);
// shfl.sync.idx with a full mask and the same source lane in every lane: lane src_lane's value.
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
// Global bytes read since reset_traffic() by ld.global.nc and by cp.async (the bytes it reads
// from its source, not its zero fill), counted at issue: what a kernel streams from memory.
struct Traffic {
  uint64_t nc_bytes = 0, cp_async_bytes = 0;
};
const Traffic& traffic();
void reset_traffic();
// ex2.approx.ftz.f32 (here exact exp2, results below the normal range flushed to zero).
float ex2_approx_ftz(float x);

}  // namespace emu::ptx
