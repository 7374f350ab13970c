// The one-kernel decode step's device code (see qwen3_cuda_step_kernel.h): a persistent kernel
// walking the step's phases. In each phase a CTA takes the work units blockIdx.x, + gridDim.x,
// ... (column tiles, (token, head) rows, attention items, (query, head) merges) and runs on them
// the device functions of the layer path's kernels; a grid barrier ends the phase. The merges
// may instead run inside the attention phase, each in the CTA that finishes a query's last
// partial state (Params::fold_merge), and the attention may wait for its own kv head's q|k|v
// tiles alone instead of a barrier after the whole projection (Params::head_flags). The CTA is
// 128 threads, the block of every one of those kernels but the narrow tensor-core linear layers
// (16 warps there, one a slice of k; here each warp folds 4 slices, all in flight at once:
// skinny_linear_mma.cuh's tile_dots_deep, which sums the same way and takes registers the
// attention phase has reserved anyway).
//
// Activations written in the launch are read with L2 loads (__ldcg) or plain loads after a
// barrier, never through the read-only path (ld.global.nc is for data constant during a kernel).
//
// STREAM (sm_90): the linear phases read their weights from the ring of qwen3_step_stream.cuh,
// which its issuers (8 lanes of the last warp) start filling before the embedding and refill
// chunk by chunk as the tiles consume it, so the next phases' weights load during attention,
// merge and the barriers.
//
// Inside .cu files only: the launcher (qwen3_cuda_step_kernel.cu) and the kernels' emulator in
// the tests (cpp/tests/emu) include it.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "core/dynamic_shared.cuh"
#include "core/grid_barrier.cuh"
#include "core/last_arrival.cuh"
#include "kernels/decode_attend_new_tokens.cuh"
#include "kernels/decode_attention_mma.cuh"
#include "kernels/decode_merge_staged.cuh"
#include "kernels/decode_work.h"
#include "kernels/qk_norm_rope_row.cuh"
#include "kernels/skinny_linear_core.cuh"
#include "kernels/skinny_linear_cuda.h"
#include "kernels/skinny_linear_mma.cuh"
#include "kernels/skinny_rmsnorm_stage.cuh"
#include "model/qwen3_config.h"
#include "model/qwen3_cuda_step_kernel.h"
#include "model/qwen3_step_clock.h"
#include "model/qwen3_step_heads.h"
#include "model/qwen3_step_stream.cuh"

namespace npr::onestep {

using bf16_t = __nv_bfloat16;
constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
static_assert(kThreads == skinny::kThreads && kThreads == decode_mma::kThreads,
              "every phase runs on the CTA its layer-path kernel has");
static_assert(stream::kIssueThread0 + 32 == kThreads &&
                  skinny_tc::kTileRows * kSkinnyMaxRows <= stream::kIssueThread0,
              "the stream's issuers are the last warp, apart from the threads writing a tile");
// The one head dim compiled (every Qwen3 size has it): each instance is ~5 s of nvcc per arch.
constexpr int kHeadDim = 128;
// What the streamed kernel leaves for its static shared memory (a tile's slice sums, the merge's
// and the staged RMSNorm's arrays: 5,024 bytes at 8 rows by ptxas) when it sizes its ring.
// scripts/wgmma-check.mjs fails where ptxas reports more.
constexpr int64_t kStaticSmemBytes = 6144;
static_assert(kStaticSmemBytes >=
                  4 * skinny_tc::kPartFloats<kSkinnyMaxRows, skinny_tc::kSlicesNarrow>,
              "the slice sums alone must fit");

// The kernel's arguments, resolved on the host.
struct Params {
  const StepKernelLayer* layers;
  const uint16_t *embed, *lm_head;
  const float* final_norm;
  const int32_t *ids, *slots;
  const float *cos, *sin;
  const int32_t *header, *items, *q_order, *indices, *merge_ptr, *merge_rows;
  float *part_m, *part_l, *part_acc;
  // fold_merge: the merges run where a query's last partial state arrives (merge_if_last), not
  // in a phase of their own; merge_counts (rows, kv_heads): the arrivals, zeroed before the
  // launch, left zeroed by it.
  bool fold_merge;
  uint32_t* merge_counts;
  // head_flags: no grid barrier between q|k|v and the attention; each q|k|v tile done counts at
  // head_ready (kv_heads) for the kv head whose attention reads it, and an attention unit waits
  // for its head's count (qkv_tiles_per_head a layer, cumulative over the layers; zeroed before
  // the launch).
  bool head_flags;
  uint32_t* head_ready;
  float* x;
  bf16_t *qkv, *attn, *act;
  float* logits;
  grid::Barrier bar;
  uint64_t* stamps;  // null, or (kStampsFixed + kPhasesPerLayer layers): CTA 0's clock as each
                     // phase ends; then (kCtaClockFields) the CTAs' waits
  int layers_n, hidden, inter, heads, kv_heads, vocab, block_tokens;
  float eps, scale;
  bool prefetch;
  // The weight stream's ring (the streamed kernel only, qwen3_step_stream.cuh): ring_slots slots
  // at byte ring_offset of the dynamic shared memory, then their mbarriers (8 bytes each).
  int ring_slots;
  int64_t ring_offset;
};

// The arguments of a launch for a step of model c, all but the layer table, the plan, the
// barrier and the phase clock (the launcher's).
inline Params params_of(const Qwen3Config& c, const StepKernelArgs& a) {
  Params p{};
  p.embed = static_cast<const uint16_t*>(a.embed);
  p.lm_head = static_cast<const uint16_t*>(a.lm_head);
  p.final_norm = a.final_norm;
  p.ids = a.ids;
  p.slots = a.slots;
  p.cos = a.cos;
  p.sin = a.sin;
  p.x = a.x;
  p.qkv = static_cast<bf16_t*>(a.qkv);
  p.attn = static_cast<bf16_t*>(a.attn);
  p.act = static_cast<bf16_t*>(a.act);
  p.logits = a.logits;
  p.layers_n = static_cast<int>(c.layers);
  p.hidden = static_cast<int>(c.hidden);
  p.inter = static_cast<int>(c.intermediate);
  p.heads = static_cast<int>(c.heads);
  p.kv_heads = static_cast<int>(c.kv_heads);
  p.vocab = static_cast<int>(c.vocab);
  p.block_tokens = a.block_tokens;
  p.eps = c.rms_eps;
  p.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim)));
  p.prefetch = a.prefetch;
  p.fold_merge = a.fold_merge;
  p.head_flags = a.head_flags;
  return p;
}

// elems bf16 (a multiple of 8) written earlier in this launch, into shared memory through L2.
__device__ __forceinline__ void stage_rows(uint16_t* dst, const void* src, int64_t elems) {
  const uint4* s = static_cast<const uint4*>(src);
  uint4* d = reinterpret_cast<uint4*>(dst);
  for (int64_t i = threadIdx.x; i < elems / 8; i += kThreads) d[i] = __ldcg(s + i);
  __syncthreads();
}

// f(std::integral_constant<int, S>) for each of this CTA's tiles b of `tiles` (a grid-stride
// walk), with S = skinny_tc::slices_for(tiles): f(s, b, i), tile b the CTA's i-th.
template <typename F>
__device__ __forceinline__ void for_my_tiles(int64_t tiles, F&& f) {
  const auto walk = [&](auto s) {
    int i = 0;
    for (int64_t b = blockIdx.x; b < tiles; b += gridDim.x, ++i) f(s, b, i);
  };
  if (skinny_tc::slices_for(tiles) == skinny_tc::kSlicesNarrow)
    walk(std::integral_constant<int, skinny_tc::kSlicesNarrow>{});
  else
    walk(std::integral_constant<int, skinny_tc::kSlicesWide>{});
}

// This CTA's column tiles of y (M, n) of type CT = xs (M, k, shared) . W (n, k)^T, or +=.
template <int M, typename CT>
__device__ __forceinline__ void linear_tiles(CT* y, const uint16_t* xs, const uint16_t* W,
                                             int64_t k, int64_t n, bool acc, float* part) {
  for_my_tiles(skinny::tiles(n, skinny_tc::kLinearTileCols), [&](auto s, int64_t b, int) {
    constexpr int S = decltype(s)::value;
    skinny_tc::linear_tile<M, true, S, kWarps, CT, true>(y, xs, W, k, n, acc, b, part);
  });
}

// This CTA's tiles of act (M, inter) = swiglu over W (2 inter, k) of xs (M, k, shared).
template <int M>
__device__ __forceinline__ void swiglu_tiles(bf16_t* act, const uint16_t* xs, const uint16_t* W,
                                             int64_t k, int64_t inter, float* part) {
  for_my_tiles(skinny::tiles(inter, skinny_tc::kSwigluTileCols), [&](auto s, int64_t b, int) {
    constexpr int S = decltype(s)::value;
    skinny_tc::swiglu_tile<M, true, S, kWarps, true>(act, xs, W, k, inter, b, part);
  });
}

// Phase i of the weight stream (qwen3_step_stream.cuh): per layer q|k|v, o, gate|up, down; then
// the head. kStreamPhasesPerLayer a layer, 4 layers_n + 1 in all.
constexpr int kStreamPhasesPerLayer = 4;
struct StreamPhases {
  const Params* p;
  __device__ __forceinline__ stream::Phase operator()(int i) const {
    const int64_t H = p->hidden, I = p->inter, qd = static_cast<int64_t>(p->heads) * kHeadDim;
    if (i >= kStreamPhasesPerLayer * p->layers_n)
      return {static_cast<const uint16_t*>(p->lm_head), p->vocab, H, false};
    const StepKernelLayer& L = p->layers[i / kStreamPhasesPerLayer];
    switch (i % kStreamPhasesPerLayer) {
      case 0:
        return {static_cast<const uint16_t*>(L.wqkv), qd + 2LL * p->kv_heads * kHeadDim, H, false};
      case 1: return {static_cast<const uint16_t*>(L.wo), H, qd, false};
      case 2: return {static_cast<const uint16_t*>(L.wgu), I, H, true};
      default: return {static_cast<const uint16_t*>(L.wdown), H, I, false};
    }
  }
  __device__ __forceinline__ int count() const { return kStreamPhasesPerLayer * p->layers_n + 1; }
};

// The streamed phases' slice sums (stream::tile_dots): the CTA's tiles alternate between two
// buffers, part (static) and the one at byte second_part_offset of the dynamic shared memory,
// after the staged rows (free in a linear phase).
__host__ __device__ inline int64_t second_part_offset(int64_t rows, int64_t hidden, int64_t q_dim,
                                                      int64_t inter) {
  const int64_t widest =
      hidden > q_dim ? (hidden > inter ? hidden : inter) : (q_dim > inter ? q_dim : inter);
  return (2 * rows * widest + 15) / 16 * 16;
}
__host__ __device__ constexpr int64_t part_bytes(int64_t rows) {
  return 4 * skinny_tc::kSlicesNarrow * rows * skinny_tc::kTileRows;
}
static_assert(part_bytes(kSkinnyMaxRows) ==
                  4 * skinny_tc::kPartFloats<kSkinnyMaxRows, skinny_tc::kSlicesNarrow>,
              "part_bytes is the static buffer's size");

// This CTA's `tiles` tiles of a streamed phase (k = the phase's k), the weights from the
// stream's ring, which holds this phase's tiles next: each tile's slice sums into part0 or part1
// in turn (stream::tile_dots), then write(s, b, sums) writes tile b's outputs, with no sync
// after it; the CTA syncs once at the end, before anything reads them or counts them done.
template <int M, typename Write>
__device__ __forceinline__ void streamed_tiles(int64_t tiles, const uint16_t* xs, int64_t k,
                                               float* part0, float* part1, stream::Ring& r,
                                               const StreamPhases& ph, Write&& write) {
  for_my_tiles(tiles, [&](auto s, int64_t b, int i) {
    constexpr int S = decltype(s)::value;
    float* pt = (i & 1) ? part1 : part0;
    stream::tile_dots<M, S, kWarps>(pt, xs, r, k, ph, ph.count());
    write(s, b, pt);
  });
  __syncthreads();
}

// linear_tiles with the weights from the ring: y (M, n) = xs (M, k, shared) . W (n, k)^T, or
// +=; its tiles and bits.
template <int M, typename CT>
__device__ __forceinline__ void linear_tiles_streamed(CT* y, const uint16_t* xs, int64_t k,
                                                      int64_t n, bool acc, float* part0,
                                                      float* part1, stream::Ring& r,
                                                      const StreamPhases& ph) {
  streamed_tiles<M>(skinny::tiles(n, skinny_tc::kLinearTileCols), xs, k, part0, part1, r, ph,
                    [&](auto s, int64_t b, const float* pt) {
                      skinny_tc::write_linear_tile<M, decltype(s)::value>(y, n, acc, b, pt);
                    });
}

// The same for swiglu_tiles.
template <int M>
__device__ __forceinline__ void swiglu_tiles_streamed(bf16_t* act, const uint16_t* xs, int64_t k,
                                                      int64_t inter, float* part0, float* part1,
                                                      stream::Ring& r, const StreamPhases& ph) {
  streamed_tiles<M>(skinny::tiles(inter, skinny_tc::kSwigluTileCols), xs, k, part0, part1, r, ph,
                    [&](auto s, int64_t b, const float* pt) {
                      skinny_tc::write_swiglu_tile<M, decltype(s)::value>(act, inter, b, pt);
                    });
}

// The weight rows of this CTA's tiles of a later phase, into L2.
__device__ __forceinline__ void prefetch_linear(const uint16_t* W, int64_t k, int64_t n) {
  const int64_t tiles = skinny::tiles(n, skinny_tc::kLinearTileCols);
  for (int64_t b = blockIdx.x; b < tiles; b += gridDim.x)
    skinny_tc::prefetch_linear_tile(W, k, n, b);
}
__device__ __forceinline__ void prefetch_swiglu(const uint16_t* W, int64_t k, int64_t inter) {
  const int64_t tiles = skinny::tiles(inter, skinny_tc::kSwigluTileCols);
  for (int64_t b = blockIdx.x; b < tiles; b += gridDim.x)
    skinny_tc::prefetch_swiglu_tile(W, k, inter, b);
}

// If work item `item` ends at the new token of its one query (the last item of that sequence's
// own pages), that token's K and V go into their slot first (decode_attend_new_tokens.cuh).
template <int D>
__device__ __forceinline__ void write_new_kv(const Params& p, const StepKernelLayer& L, int item,
                                             int h, float* y) {
  decode_new::write_new_kv<D>(p.items + DecodeWork::kItemFields * item, p.q_order, p.indices,
                              p.slots, p.block_tokens, p.qkv, p.heads, p.kv_heads, L.k_norm, p.cos,
                              p.sin, p.eps, static_cast<bf16_t*>(L.k_pages),
                              static_cast<bf16_t*>(L.v_pages), h, y);
}

// Per-head readiness of q|k|v (Params::head_flags): column tile b of q|k|v (kLinearTileCols
// columns) is read by the attention of one kv head (qwen3_step_heads.h). A CTA counts its tiles
// once it has written them all, not tile by tile: a count after each tile kept values live
// across the tile loop and made the plain kernel spill (ptxas: 24-40 bytes in 7 of its 8
// row counts), and every head has tiles in the last round of the grid-stride walk anyway (its
// values' tiles come last).
struct HeadReady {
  const Params* p;
  __device__ __forceinline__ int64_t tiles_per_head() const {
    return qkv_tiles_per_kv_head(skinny_tc::kLinearTileCols, p->heads, p->kv_heads, kHeadDim);
  }
  __device__ __forceinline__ int kv_head_of(int64_t tile) const {
    return qkv_tile_kv_head(tile, skinny_tc::kLinearTileCols, p->heads, p->kv_heads, kHeadDim);
  }
  // After the CTA wrote and synced its tiles of the `tiles`: one release add per kv head, of
  // its tiles of that head (cumulative: the CTA's writes before the sync go first).
  __device__ __forceinline__ void arrive(int64_t tiles) const {
    for (int h = threadIdx.x; h < p->kv_heads; h += kThreads) {
      uint32_t n = 0;
      for (int64_t b = blockIdx.x; b < tiles; b += gridDim.x) n += kv_head_of(b) == h ? 1u : 0u;
      if (n > 0) grid::add_release(p->head_ready + h, n);
    }
  }
  // Before kv head h's attention in layer l: every q|k|v tile of h up to layer l is written
  // and visible to the CTA.
  __device__ __forceinline__ void wait(int h, int l) const {
    if (threadIdx.x == 0)
      grid::wait_count(p->bar, p->head_ready + h,
                       static_cast<uint32_t>((l + 1) * tiles_per_head()));
    __syncthreads();
  }
};

// Query q's head `head` of the step's attention output: its partial states merged (the merge
// phase's unit, and a folded merge's), then the CTA syncs.
template <int D>
__device__ __forceinline__ void merge_query_head(const Params& p, int64_t q, int64_t head) {
  decode_merge::merge_one<bf16_t, (D + kThreads - 1) / kThreads>(q, head, p.merge_ptr, p.merge_rows,
                                                                 p.part_m, p.part_l, p.part_acc,
                                                                 p.attn, nullptr, p.heads, D);
  __syncthreads();
}

// The merges folded into the attention phase (Params::fold_merge). Unit (item, h) has written
// its partial states (the caller's __syncthreads after attend_item); each of the item's queries
// gets one arrival at its count for kv head h, and the CTA whose arrival is a query's last (the
// query has one partial row per item that holds it: merge_ptr's count) merges the query's G
// heads of h. merge_one on the same partial rows as the merge phase: the same bits.
template <int D>
__device__ __forceinline__ void merge_if_last(const Params& p, int item, int h) {
  NPR_STATIC_SHARED(int, last_s, [decode_mma::kRows]);  // (item's queries) whether last here
  const int32_t* it = p.items + DecodeWork::kItemFields * item;
  const int q_begin = it[0], nq = it[1], G = p.heads / p.kv_heads;
  if (static_cast<int>(threadIdx.x) < nq) {
    const int64_t q = p.q_order[q_begin + threadIdx.x];
    const auto rows = static_cast<uint32_t>(p.merge_ptr[q + 1] - p.merge_ptr[q]);
    last_s[threadIdx.x] = arrival::arrive_last(p.merge_counts + q * p.kv_heads + h, rows);
  }
  __syncthreads();
  for (int j = 0; j < nq; ++j) {
    if (!last_s[j]) continue;  // the same in every thread
    const int64_t q = p.q_order[q_begin + j];
    for (int g = 0; g < G; ++g) merge_query_head<D>(p, q, static_cast<int64_t>(h) * G + g);
  }
}

// M one-token rows, head dim D. Dynamic shared memory: dyn_smem_bytes(M, D, ...), and with
// STREAM (the weights through the ring of qwen3_step_stream.cuh; sm_90) the ring after it
// (stream_smem_bytes).
template <int M, int D, bool STREAM>
__global__ void __launch_bounds__(kThreads, 2) step_kernel(const __grid_constant__ Params p) {
  NPR_DYNAMIC_SHARED(dyn);
  NPR_STATIC_SHARED(float, part, [skinny_tc::kPartFloats<M, skinny_tc::kSlicesNarrow>]);
  NPR_STATIC_SHARED(uint64_t, waits_s, [kWaitStart + 1]);  // a timed launch's clocks
  auto* xs = reinterpret_cast<uint16_t*>(dyn);             // staged x rows of a linear phase
  // The streamed phases' second slice-sum buffer (linear_tiles_streamed), found where needed, not
  // kept live across the kernel (registers are at ptxas' limit).
  const auto part1 = [&]() {
    return reinterpret_cast<float*>(
        dyn + second_part_offset(M, p.hidden, static_cast<int64_t>(p.heads) * D, p.inter));
  };
  const int H = p.hidden, I = p.inter, heads = p.heads, kvh = p.kv_heads;
  const int64_t qd = static_cast<int64_t>(heads) * D, nqkv = qd + 2LL * kvh * D;
  uint32_t epoch = 0;
  int stamp_at = 0;  // the phase clock's last stamp (a folded merge phase stamps, never waits)
  // Whether this thread counts its CTA's waits (a timed launch's thread 0), and stamps the phase
  // clock (CTA 0's): asked where needed, not kept live (registers across the kernel spilled the
  // plain form).
  const auto clocking = [&]() { return p.stamps != nullptr && threadIdx.x == 0; };
  const auto stamping = [&]() { return clocking() && blockIdx.x == 0; };
  if (stamping()) p.stamps[0] = grid::now_ns();
  // Zeroes the waits (again after the calibration barriers).
  const auto zero_waits = [&]() {
    for (int i = 0; i < kWaitStart; ++i) waits_s[i] = 0;
  };
  if (clocking()) zero_waits();
  const StreamPhases phases{&p};
  stream::Ring ring{};
  // Which phase the ring waits that follow hold up (a timed launch).
  const auto ring_clock = [&](RingPhase phase) {
    if (clocking()) ring.waited = &waits_s[phase];
  };
  if constexpr (STREAM) {  // the first chunks stream while the embedding runs
    const auto base = static_cast<uint32_t>(__cvta_generic_to_shared(dyn));
    ring.mem = dyn + p.ring_offset;
    ring.slots0 = base + static_cast<uint32_t>(p.ring_offset);
    ring.bars = ring.slots0 + static_cast<uint32_t>(p.ring_slots * stream::kSlotBytes);
    ring.slots = p.ring_slots;
    stream::start(ring, phases, phases.count());
  }
  // The grid barrier that ends a phase, and (timing) when CTA 0 left it.
  const auto stamp = [&]() {
    ++stamp_at;
    if (stamping()) p.stamps[stamp_at] = grid::now_ns();
  };
  // f(), and (timed) thread 0's time in it counted as phase's wait for other CTAs (the clock
  // before it taken off in shared memory: no register held across f).
  const auto waiting = [&](GridPhase phase, auto&& f) {
    if (clocking()) waits_s[kWaitGrid0 + phase] -= grid::now_ns();
    f();
    if (clocking()) waits_s[kWaitGrid0 + phase] += grid::now_ns();
  };
  const auto end_phase = [&](GridPhase phase) {
    waiting(phase, [&]() { grid::sync(p.bar, epoch); });
    stamp();
  };
  if (p.stamps) {
    for (int i = 0; i < kCalibBarriers; ++i) end_phase(kGridEmbedding);
    if (clocking()) {
      zero_waits();
      waits_s[kWaitStart] = grid::now_ns();
    }
  }

  for (int64_t e = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; e < M * H;
       e += static_cast<int64_t>(gridDim.x) * kThreads)
    p.x[e] = skinny::bf16_bits(p.embed[static_cast<int64_t>(p.ids[e / H]) * H + e % H]);
  if (!STREAM && p.prefetch)
    prefetch_linear(static_cast<const uint16_t*>(p.layers[0].wqkv), H, nqkv);
  end_phase(kGridEmbedding);

  for (int l = 0; l < p.layers_n; ++l) {
    const StepKernelLayer L = p.layers[l];
    const auto* wqkv = static_cast<const uint16_t*>(L.wqkv);
    const auto* wo = static_cast<const uint16_t*>(L.wo);
    const auto* wgu = static_cast<const uint16_t*>(L.wgu);
    const auto* wdown = static_cast<const uint16_t*>(L.wdown);
    auto* kp = static_cast<bf16_t*>(L.k_pages);
    auto* vp = static_cast<bf16_t*>(L.v_pages);

    // Input norm + q|k|v (with head_flags, the CTA's tiles then counted ready by kv head).
    const HeadReady ready{&p};
    const int64_t qkv_tiles = skinny::tiles(nqkv, skinny_tc::kLinearTileCols);
    if (blockIdx.x < qkv_tiles) {
      skinny::stage_normed<M>(xs, p.x, L.in_norm, H, p.eps);
      ring_clock(kRingQkv);
      if constexpr (STREAM)
        linear_tiles_streamed<M>(p.qkv, xs, H, nqkv, false, part, part1(), ring, phases);
      else
        linear_tiles<M>(p.qkv, xs, wqkv, H, nqkv, false, part);
      if (p.head_flags) ready.arrive(qkv_tiles);  // the tiles ended with a __syncthreads
    }
    if (!STREAM && p.prefetch) {
      prefetch_linear(wo, qd, H);
      prefetch_swiglu(wgu, H, I);
    }
    if (p.head_flags)
      stamp();  // CTA 0's own tiles done: no barrier; each attention unit waits for its head
    else
      end_phase(kGridQkv);

    // q/k norm + RoPE and attention: (item, kv head) units of the plan. Each unit normalises
    // and rotates its own query rows into shared memory; the unit whose item ends at its
    // sequence's new token first writes that token's K (normalised, rotated) and V into the
    // pages. The layer path's values (qk_norm_rope_row.cuh), without a phase of their own.
    {
      const decode_new::QFromQkv<D> fill{p.q_order, p.qkv, L.q_norm, p.cos,
                                         p.sin,     heads, kvh,      p.eps};
      const int64_t units = static_cast<int64_t>(p.header[0]) * kvh;
      for (int64_t u = blockIdx.x; u < units; u += gridDim.x) {
        const int item = static_cast<int>(u / kvh), h = static_cast<int>(u % kvh);
        if (p.head_flags) waiting(kGridQkv, [&]() { ready.wait(h, l); });
        write_new_kv<D>(p, L, item, h, reinterpret_cast<float*>(dyn));
        __syncthreads();  // the new K and V are in L2 before the item's tiles are copied
        decode_mma::attend_item<D>(item, h, p.items, fill, p.indices, kp, vp, p.part_m, p.part_l,
                                   p.part_acc, heads, kvh, p.block_tokens, p.scale, dyn);
        __syncthreads();
        if (p.fold_merge) merge_if_last<D>(p, item, h);
      }
    }
    if (!STREAM && p.prefetch) prefetch_linear(wdown, I, H);
    end_phase(kGridAttend);

    // Merge: (query, head) units; folded, done above (its stamp a zero-length phase).
    if (p.fold_merge) {
      stamp();
    } else {
      for (int64_t u = blockIdx.x; u < static_cast<int64_t>(M) * heads; u += gridDim.x)
        merge_query_head<D>(p, u / heads, u % heads);
      end_phase(kGridMerge);
    }

    // o-proj into the residual.
    if (blockIdx.x < skinny::tiles(H, skinny_tc::kLinearTileCols)) {
      stage_rows(xs, p.attn, M * qd);
      ring_clock(kRingOProj);
      if constexpr (STREAM)
        linear_tiles_streamed<M>(p.x, xs, qd, H, true, part, part1(), ring, phases);
      else
        linear_tiles<M>(p.x, xs, wo, qd, H, true, part);
    }
    if (!STREAM && p.prefetch && l + 1 < p.layers_n)
      prefetch_linear(static_cast<const uint16_t*>(p.layers[l + 1].wqkv), H, nqkv);
    end_phase(kGridOProj);

    // Post-attention norm + gate|up + SwiGLU.
    if (blockIdx.x < skinny::tiles(I, skinny_tc::kSwigluTileCols)) {
      skinny::stage_normed<M>(xs, p.x, L.post_norm, H, p.eps);
      ring_clock(kRingGateUp);
      if constexpr (STREAM)
        swiglu_tiles_streamed<M>(p.act, xs, H, I, part, part1(), ring, phases);
      else
        swiglu_tiles<M>(p.act, xs, wgu, H, I, part);
    }
    end_phase(kGridGateUp);

    // down into the residual.
    if (blockIdx.x < skinny::tiles(H, skinny_tc::kLinearTileCols)) {
      stage_rows(xs, p.act, static_cast<int64_t>(M) * I);
      ring_clock(kRingDown);
      if constexpr (STREAM)
        linear_tiles_streamed<M>(p.x, xs, I, H, true, part, part1(), ring, phases);
      else
        linear_tiles<M>(p.x, xs, wdown, I, H, true, part);
    }
    end_phase(kGridDown);
  }

  // Final norm + head: every row is its sequence's last (one token each).
  if (blockIdx.x < skinny::tiles(p.vocab, skinny_tc::kLinearTileCols)) {
    skinny::stage_normed<M>(xs, p.x, p.final_norm, H, p.eps);
    ring_clock(kRingHead);
    if constexpr (STREAM)
      linear_tiles_streamed<M>(p.logits, xs, H, p.vocab, false, part, part1(), ring, phases);
    else
      linear_tiles<M>(p.logits, xs, p.lm_head, H, p.vocab, false, part);
  }
  if (p.stamps) end_phase(kGridHead);
  if (clocking()) {
    auto* acc = reinterpret_cast<unsigned long long*>(p.stamps + kStampsFixed +
                                                      kPhasesPerLayer * p.layers_n);
    unsigned long long ring_ns = 0, grid_ns = 0;
    for (int i = 0; i < kRingPhases; ++i) {
      atomicAdd(acc + kCtaRingByPhase + i, waits_s[i]);
      ring_ns += waits_s[i];
    }
    for (int i = 0; i < kGridPhases; ++i) {
      atomicAdd(acc + kCtaGridByPhase + i, waits_s[kWaitGrid0 + i]);
      grid_ns += waits_s[kWaitGrid0 + i];
    }
    atomicAdd(acc + kCtaSpan, grid::now_ns() - waits_s[kWaitStart]);
    atomicAdd(acc + kCtaRing, ring_ns);
    atomicMax(acc + kCtaRingMax, ring_ns);
    atomicAdd(acc + kCtaGrid, grid_ns);
    atomicMax(acc + kCtaGridMax, grid_ns);
  }
}

// Dynamic shared memory of a step: the attend kernel's, the largest staged rows and the second
// slice-sum buffer after them, the q/k rows.
inline int64_t dyn_smem_bytes(const Qwen3Config& c, int64_t rows) {
  const int64_t D = c.head_dim;
  const int64_t attend = decode_mma::Smem<kHeadDim>::kBytes;
  const int64_t staged =
      second_part_offset(rows, c.hidden, c.heads * D, c.intermediate) + part_bytes(rows);
  return std::max({attend, staged, int64_t{4} * kWarps * D});
}

// The streamed kernel's dynamic shared memory with `slots` ring slots: dyn_smem_bytes, the
// slots (16-byte aligned) and their mbarriers.
inline int64_t stream_ring_offset(const Qwen3Config& c, int64_t rows) {
  return (dyn_smem_bytes(c, rows) + 15) / 16 * 16;
}
inline int64_t stream_smem_bytes(const Qwen3Config& c, int64_t rows, int64_t slots) {
  return stream_ring_offset(c, rows) + slots * (stream::kSlotBytes + 8);
}
// The most ring slots (at most stream::kMaxSlots) that fit `limit` bytes of dynamic shared
// memory beside the kernel's static arrays; below stream::kMinSlots the streamed kernel does
// not fit.
inline int64_t stream_slots_for(const Qwen3Config& c, int64_t rows, int64_t limit) {
  const int64_t free = limit - kStaticSmemBytes - stream_ring_offset(c, rows);
  const int64_t n = free / (stream::kSlotBytes + 8);
  return std::min<int64_t>(n, stream::kMaxSlots);
}

}  // namespace npr::onestep
