// Private to the two-warpgroup backward kernels (parallel_attention_bwd_wide_sm90a.cu, dK / dV
// over 128 keys; parallel_attention_bwd_dq_wide_sm90a.cu, dQ over 128 queries): a CTA owns two
// adjacent tiles of the plan's numbering (2 j and 2 j + 1, perhaps of two sequences), warpgroup
// w the tile 2 j + w, and walks the union of the two tiles' pair lists (column lists for dK / dV,
// row lists for dQ; each ascending) by the global number of the other side's tile, so that a
// stage's loads of the other side serve both warpgroups. A warpgroup whose tile has no pair with
// a stage's other tile sits that stage out.
#pragma once

#include <cstdint>

#include "kernels/parallel_attention_bwd.cuh"

namespace npr::attn_bwd {

// One of the CTA's own tiles: its sequence, first token, live rows, and pair list [c0, c1) (in
// the list's pointer array); a tile past the plan's last has an empty list.
struct WideTile {
  SeqSpan sq;
  int64_t start, c0, c1;
  int n;
};
__device__ __forceinline__ WideTile wide_tile(const PlanView& p, const int64_t* list_ptr,
                                              int64_t g) {
  WideTile t{};
  if (g >= p.tiles) return t;  // c0 == c1: never active
  t.sq = seq_of(p, g);
  t.start = tile_start(t.sq, g - t.sq.tile0);
  t.n = tile_len(t.sq, t.start);
  t.c0 = list_ptr[g];
  t.c1 = list_ptr[g + 1];
  return t;
}

// The CTA's two tiles g0, g0 + 1 (list_ptr: the row or the column lists) into `slot` (128 bytes
// of shared memory), for every thread once the CTA barrier has passed. Read from there where
// needed: in registers the bookkeeping would push the accumulators into local memory.
static_assert(2 * sizeof(WideTile) <= 128, "the tiles' slot");
__device__ __forceinline__ const WideTile* share_wide_tiles(unsigned char* slot, const PlanView& p,
                                                            const int64_t* list_ptr, int64_t g0) {
  WideTile* const ts = reinterpret_cast<WideTile*>(slot);
  if (threadIdx.x < 2) ts[threadIdx.x] = wide_tile(p, list_ptr, g0 + threadIdx.x);
  __syncthreads();
  return ts;
}

// Where the walk stands: the next entries i0, i1 of the two lists, and the head index within the
// heads each pair is repeated for (the dK / dV kernel's query heads of the group; 0 for dQ).
// Scalars, not arrays: an array indexed by the warpgroup would live in local memory.
struct WideCursor {
  int64_t i0, i1;
  int hh;
};

// The stage a cursor points at: the other side's tile (number, first token, live rows), which
// warpgroups have a pair with it and which pairs (masks), and the head.
struct WideStage {
  bool live, act0, act1;
  AttnTilePair pair0, pair1;
  int64_t g, start;  // the other side's tile: its global number, its first token
  int n, h;
  __device__ __forceinline__ bool act(int w) const { return w ? act1 : act0; }
  __device__ __forceinline__ AttnTilePair pair(int w) const { return w ? pair1 : pair0; }
};

constexpr int64_t kNoTile = INT64_MAX;

// pairs: the lists' pair array; h0: the first head, h0 + hh the stage's.
__device__ __forceinline__ WideStage wide_stage(const AttnTilePair* pairs, const WideTile& t0,
                                                const WideTile& t1, const WideCursor& c, int h0) {
  WideStage s{};
  const bool in0 = c.i0 < t0.c1, in1 = c.i1 < t1.c1;
  s.pair0 = in0 ? pairs[c.i0] : AttnTilePair{0, -1};
  s.pair1 = in1 ? pairs[c.i1] : AttnTilePair{0, -1};
  const int64_t g0 = in0 ? t0.sq.tile0 + s.pair0.other : kNoTile;
  const int64_t g1 = in1 ? t1.sq.tile0 + s.pair1.other : kNoTile;
  const int64_t g = g0 < g1 ? g0 : g1;
  s.live = g != kNoTile;
  if (!s.live) return s;
  s.g = g;
  s.act0 = g0 == g;
  s.act1 = g1 == g;
  s.start = s.act0 ? tile_start(t0.sq, s.pair0.other) : tile_start(t1.sq, s.pair1.other);
  s.n = tile_len(s.act0 ? t0.sq : t1.sq, s.start);
  s.h = h0 + c.hh;
  return s;
}

// The next stage: the next head, or after `heads` of them the next pair of each seeing list.
__device__ __forceinline__ void advance(WideCursor& c, const WideStage& s, int heads) {
  if (++c.hh < heads) return;
  c.hh = 0;
  c.i0 += s.act0 ? 1 : 0;
  c.i1 += s.act1 ? 1 : 0;
}

}  // namespace npr::attn_bwd
