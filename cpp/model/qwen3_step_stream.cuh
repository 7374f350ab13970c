// The one-kernel decode step's weight stream (Hopper): every weight byte a CTA's linear tiles
// read, in the order it reads them, copied into a ring of shared-memory slots by bulk copies
// (kernels/bulk_load.cuh) that run ahead of the compute, across phases and grid barriers.
//
// Why: the weights do not depend on the activations, so nothing stops a CTA from loading the
// next phase's tiles while it attends, merges or waits at a barrier. With loads issued by the
// compute itself (registers, the L2 prefetch), the GPU measured the step's weight phases at
// 0.44-1.5 TB/s of an H200's ~4.2: each phase starts cold after its barrier. A ring of ~150 KB
// an SM keeps HBM busy through the phases that read no weights.
//
// Layout. The stream of a CTA: for each layer q|k|v, o, gate|up, down, then the head; in each,
// the CTA's column tiles b = blockIdx.x, + gridDim.x, ... (those of the layer path's kernels:
// 8 weight rows, or 4 gate + 4 up rows), each cut along k into chunks of kChunk. A chunk is one
// slot: 8 rows of kRowElems bf16 (k elements kChunk kc .. + kChunk - 1 of each row, then a pad
// that puts row g's 16-byte chunks 64 g bytes apart across banks: the 8 lanes of a quarter warp,
// rows g and g + 1 at chunks 4 t .. 4 t + 3, hit 8 different bank groups). Slot s of the ring
// holds chunks s, s + slots, ...; its mbarrier completes one phase per chunk.
//
// Sum order. A slice folds the same steps with the same operands as skinny_tc::tile_dots
// (skinny_linear_mma.cuh), only read from the slot instead of global memory: kChunk is a
// multiple of 32 S, so a slice's steps stay in increasing order across chunks. Same bits as the
// layer path. Inside .cu files only (the step kernel's).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/grid_barrier.cuh"
#include "kernels/bulk_load.cuh"
#include "kernels/skinny_linear_core.cuh"
#include "kernels/skinny_linear_mma.cuh"
#include "model/qwen3_cuda_step_kernel.h"

namespace npr::onestep::stream {

constexpr int kChunk = 1024;                       // k elements of a tile a slot holds
constexpr int kStepsPerChunk = kChunk / 32;        // mma steps (32 k each) a chunk holds
constexpr int kRowElems = kChunk + 32;             // bf16 per slot row (the 64-byte pad above)
constexpr int kRows = skinny_tc::kTileRows;        // weight rows a tile has
constexpr int kSlotBytes = 2 * kRows * kRowElems;  // 16,896
constexpr int kMaxSlots = kMaxRingSlots;
constexpr int kMinSlots = kMinRingSlots;
static_assert(kStepsPerChunk % skinny_tc::kSlicesNarrow == 0 &&
                  kStepsPerChunk % skinny_tc::kSlicesWide == 0,
              "a chunk holds whole rounds of every slice count: slices keep their step order");
static_assert((2 * kRowElems) % 128 == 64, "rows g and g + 1 of a slot 64 bytes apart in banks");

// A linear phase: W (n, k) bf16, or for SwiGLU gate rows then up rows (2 n, k) with n = inter.
struct Phase {
  const uint16_t* w;
  int64_t n, k;
  bool swiglu;
  __device__ __forceinline__ int64_t tiles() const {
    return skinny::tiles(n, swiglu ? skinny_tc::kSwigluTileCols : skinny_tc::kLinearTileCols);
  }
  __device__ __forceinline__ int64_t chunks_per_tile() const { return (k + kChunk - 1) / kChunk; }
  // The tiles of the calling CTA: blockIdx.x, + gridDim.x, ...
  __device__ __forceinline__ int64_t my_tiles() const {
    const int64_t t = tiles();
    return t > blockIdx.x ? (t - blockIdx.x + gridDim.x - 1) / gridDim.x : 0;
  }
  // The weight row of tile b that slot row g holds (past the end: the last, read, not written).
  __device__ __forceinline__ int64_t row(int64_t b, int g) const {
    if (swiglu) return skinny_tc::swiglu_tile_row(n, b, g);
    const int64_t j = b * kRows + g;
    return j < n ? j : n - 1;
  }
};

// The ring, as every thread of the CTA sees it: `slots` slots at `mem` (shared address slots0),
// their mbarriers at shared address `bars` (8 bytes each); the next chunk to read is in slot
// `read`, its mbarrier in phase parity `parity` (the same in every thread). The issuers
// (issue_row) keep the stream's cursor: the next chunk to issue goes into slot `write`, and is
// k chunk `kc` of this CTA's tile `tile` of phase `phase` (`cur`, with `tiles` tiles for this CTA
// of `cpt` chunks each, once read). Slots and parities advance by increments: a 64-bit division
// by the runtime slot count costs ~100 instructions, and each chunk took four. waited: null, or
// (a timed launch) where thread 0 adds the nanoseconds it spends waiting for chunks to land.
struct Ring {
  const unsigned char* mem;
  uint32_t slots0, bars;
  int slots;
  int read = 0, write = 0;
  uint32_t parity = 0;
  int phase = -1;
  int tile = 0, tiles = 0, kc = 0, cpt = 0;
  Phase cur{};
  uint64_t* waited = nullptr;

  __device__ __forceinline__ uint32_t slot_addr(int i) const {
    return slots0 + static_cast<uint32_t>(i * kSlotBytes);
  }
  __device__ __forceinline__ const uint16_t* slot(int i) const {
    return reinterpret_cast<const uint16_t*>(mem + i * kSlotBytes);
  }
  __device__ __forceinline__ uint32_t bar(int i) const {
    return bars + static_cast<uint32_t>(8 * i);
  }
};

// The issuers: lanes 0 .. kRows - 1 of the CTA's last warp (the step kernel's 128 threads), lane
// g copying row g of each chunk. Eight lanes at once instead of one thread's eight copies one
// after another, in a warp that neither writes a tile's outputs (threads 0 .. 8 M - 1) nor keeps
// the clock (thread 0).
constexpr int kIssueThread0 = 96;

// The issuing row of the calling thread: 0 .. kRows - 1, or -1 where it does not issue.
__device__ __forceinline__ int issue_row() {
  const int g = static_cast<int>(threadIdx.x) - kIssueThread0;
  return g >= 0 && g < kRows ? g : -1;
}

// Issuer g (issue_row): row g of the next chunk of the stream into its slot, if the stream has
// one left; row 0's issuer first announces the chunk's bytes on the slot's barrier (a row that
// lands before that counts the barrier's transactions below zero, which the phase allows: its
// one arrival is still missing). Every issuer keeps the same cursor. phase_at(i) gives phase i
// of the stream, `phases` of them.
template <typename PhaseAt>
__device__ __forceinline__ void issue_next(Ring& r, const PhaseAt& phase_at, int phases, int g) {
  while (r.tile >= r.tiles) {  // on to the next phase with chunks for this CTA
    if (r.phase + 1 >= phases) return;
    ++r.phase;
    r.cur = phase_at(r.phase);
    r.tiles = static_cast<int>(r.cur.my_tiles());
    r.cpt = static_cast<int>(r.cur.chunks_per_tile());
    r.tile = 0;
    r.kc = 0;
  }
  const Phase& ph = r.cur;
  const int64_t b = blockIdx.x + static_cast<int64_t>(r.tile) * gridDim.x;
  const int64_t k0 = static_cast<int64_t>(r.kc) * kChunk;
  const int64_t len = ph.k - k0 < kChunk ? ph.k - k0 : kChunk;
  const uint32_t row_bytes = static_cast<uint32_t>(2 * len), bar = r.bar(r.write);
  if (g == 0) bulk_load::arrive_expect_tx(bar, kRows * row_bytes);
  bulk_load::copy(r.slot_addr(r.write) + static_cast<uint32_t>(g * 2 * kRowElems),
                  ph.w + ph.row(b, g) * ph.k + k0, row_bytes, bar);
  if (++r.write == r.slots) r.write = 0;
  if (++r.kc == r.cpt) {
    r.kc = 0;
    ++r.tile;
  }
}

// Thread 0 initialises the barriers; the CTA syncs; the issuers issue the first chunks (up to a
// full ring).
template <typename PhaseAt>
__device__ __forceinline__ void start(Ring& r, const PhaseAt& phase_at, int phases) {
  if (threadIdx.x == 0) {
    for (int s = 0; s < r.slots; ++s) bulk_load::init(r.bar(s), 1);
    bulk_load::fence_init();
  }
  __syncthreads();
  const int g = issue_row();
  if (g >= 0)
    for (int s = 0; s < r.slots; ++s) issue_next(r, phase_at, phases, g);
}

// c[v] += the calling warp's slices v (slice warp + v W) over the chunk in slot `slot` (chunk kc
// of its tile; k the tile's): skinny_tc::tile_dots' steps and operands, weights from the slot.
// x (M, k) bf16 in shared memory.
template <int M, int S, int W>
__device__ __forceinline__ void chunk_dots(float (&c)[S / W][4], const uint16_t* x,
                                           const uint16_t* slot, int64_t k, int64_t kc) {
  const int warp = static_cast<int>(threadIdx.x >> 5),
            g = static_cast<int>((threadIdx.x & 31) >> 2);
  const int q = static_cast<int>(threadIdx.x & 3);
  const int64_t chunks = k / 8, steps = (chunks + 3) / 4;
  const int64_t t0 = kc * kStepsPerChunk;
  const int64_t t1 = steps < t0 + kStepsPerChunk ? steps : t0 + kStepsPerChunk;
  // 16-byte chunk ch of the tile's row g: pw[ch - 4 t0] (the slot holds ch in [4 t0, 4 t1)).
  const uint4* pw = reinterpret_cast<const uint4*>(slot + g * kRowElems);
  const uint4* px = reinterpret_cast<const uint4*>(x) + (g < M ? g : 0) * chunks;
  const uint4 zero = make_uint4(0u, 0u, 0u, 0u);
#pragma unroll
  for (int v = 0; v < S / W; ++v) {
    const int slice = warp + v * W;
#pragma unroll 4
    for (int64_t t = t0 + slice; t < t1; t += S) {
      const int64_t ch = 4 * t + q;
      const bool ok = ch < chunks;
      const uint4 wv = ok ? pw[ch - 4 * t0] : zero;
      const uint4 xv = ok && g < M ? px[ch] : zero;
      skinny_tc::mma_chunk(c[v], xv, wv);
    }
  }
}

// The slice sums of the CTA's next tile of phase ph (k = ph.k), read chunk by chunk from the
// ring, into part (S, M, kTileRows). Each chunk: every thread waits for its slot and the warps
// fold it (on the tile's last chunk, storing their slice sums in part), the CTA syncs (the slot
// is free; after the last chunk part is whole), and the issuers refill the slot with the
// stream's next chunk. One sync a chunk: the caller writes the tile's outputs from part without
// another, so the next tile must put its sums in another buffer (this one is read until that
// tile's first sync), and the CTA syncs before anything depends on those outputs.
template <int M, int S, int W, typename PhaseAt>
__device__ __forceinline__ void tile_dots(float* part, const uint16_t* x, Ring& r, int64_t k,
                                          const PhaseAt& phase_at, int phases) {
  constexpr int V = S / W;
  float c[V][4];
#pragma unroll
  for (int v = 0; v < V; ++v) c[v][0] = c[v][1] = c[v][2] = c[v][3] = 0.0f;
  const int64_t cpt = (k + kChunk - 1) / kChunk;
  const int warp = static_cast<int>(threadIdx.x >> 5),
            g = static_cast<int>((threadIdx.x & 31) >> 2);
  const int q = static_cast<int>(threadIdx.x & 3);
  for (int64_t kc = 0; kc < cpt; ++kc) {
    if (r.waited && threadIdx.x == 0) {
      const uint64_t t0 = grid::now_ns();
      bulk_load::wait(r.bar(r.read), r.parity);
      *r.waited += grid::now_ns() - t0;
    } else {
      bulk_load::wait(r.bar(r.read), r.parity);
    }
    chunk_dots<M, S, W>(c, x, r.slot(r.read), k, kc);
    if (kc + 1 == cpt && g < M)
#pragma unroll
      for (int v = 0; v < V; ++v) skinny_tc::store_slice_sums<M>(part, warp + v * W, g, q, c[v]);
    __syncthreads();  // every warp is done with the slot (and has its sums in part)
    if (++r.read == r.slots) {
      r.read = 0;
      r.parity ^= 1u;
    }
    const int ig = issue_row();
    if (ig >= 0) issue_next(r, phase_at, phases, ig);
  }
}

}  // namespace npr::onestep::stream
