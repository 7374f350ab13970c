// Fused block-sparse attention over a packed batch with a Structure: plan once, run per layer.
//
// attention_plan classifies every (query tile, key tile) pair of each sequence (tiles of
// kAttnTile tokens, never crossing a sequence boundary) from the Structure into FULL (every
// pair visible: no mask arithmetic), PARTIAL (a 64-bit visibility mask per query row) or SKIP
// (no pair visible, never touched; every tile above the diagonal is SKIP and not even stored).
// The plan owns everything the runs need, so it outlives the StructureView it came from; the
// model builds it once per forward and hands it to every layer and to backward.
//
// attention_forward_fused is flash-style: per work item (sequence, query tile, kv head) the
// query heads sharing that kv head are processed together (one K/V tile load per group), with
// an online softmax in the log2 domain; memory O(T) plus O(tiles), no score matrix. Backward
// recomputes P from the saved lse in one pass over (kv head, key tile) items: each item sums its
// dK and dV rows over its column list in plan order, and adds dS K into a dQ partial owned by
// its chunk (items split into one contiguous, cost-balanced chunk per thread before the run);
// the partials are summed in chunk order. No atomics: a run is a pure function of its inputs
// and the thread count (out, lse, dK, dV do not even depend on the thread count).
//
// Shapes as in attention.h: q (tokens, heads, D); k, v (tokens, kv_heads, D); out like q;
// lse (tokens, heads) natural-log log-sum-exp of the scaled scores.
// Not here: bf16/AMX tiles, cascade (prefix-once) merging, a KV cache for decode.
#pragma once

#include <cstdint>
#include <vector>

#include "core/cpu_info.h"
#include "core/status.h"
#include "core/structure.h"
#include "kernels/attention.h"

namespace npr {

constexpr int kAttnTile = 64;  // query and key tile size (one 64-bit mask word per row)

enum class TileKind : uint8_t { kSkip = 0, kFull = 1, kPartial = 2 };

struct AttnTilePair {
  int32_t other;    // key tile (in a row list) or query tile (in a column list), within the seq
  int32_t partial;  // -1: FULL; else index of its first mask row in AttentionPlan::masks
};

struct AttentionPlan {
  int64_t tokens = 0;
  // Per sequence: first token, length, first tile index (global tile = tile0 + local tile).
  std::vector<int64_t> seq_start, seq_len, seq_tile0;
  int64_t tiles = 0;              // all tiles of all sequences
  std::vector<int32_t> tile_seq;  // (tiles) sequence of each global tile
  // Row lists (by global query tile): non-SKIP key tiles in ascending order (CSR).
  std::vector<int64_t> row_ptr;  // (tiles + 1)
  std::vector<AttnTilePair> row_pairs;
  // Column lists (by global key tile): non-SKIP query tiles in ascending order (CSC).
  std::vector<int64_t> col_ptr;  // (tiles + 1)
  std::vector<AttnTilePair> col_pairs;
  // (partial tiles, kAttnTile): bit c of word r: key c of the tile visible to query r.
  std::vector<uint64_t> masks;
  // Forward work items (global query tile) ordered by decreasing cost: the pool hands them out
  // in that order (longest first), which balances unequal rows without a static split.
  std::vector<int32_t> row_order;
  // Statistics: tiles on or below the diagonal, by kind; exactly visible (q, k) pairs and the
  // pairs of plain causal attention over the same sequences.
  int64_t tiles_causal = 0, tiles_full = 0, tiles_partial = 0, tiles_skip = 0;
  int64_t visible_pairs = 0, causal_pairs = 0;

  // Bytes held by the plan's arrays.
  int64_t bytes() const;
  // Kind of (query tile qt, key tile kt) of sequence seq (local tile indices); SKIP above the
  // diagonal. For tests and reports (a linear search of the row list).
  TileKind kind(int64_t seq, int64_t qt, int64_t kt) const;
};

// Builds the plan of `st` (checked with check_structure first). dense_causal ignores the
// branch paths: every causal tile is visible (the "skipping disabled" baseline).
Status attention_plan(const StructureView& st, AttentionPlan* plan, bool dense_causal = false);

// Bytes one run of forward (backward) allocates: per-thread tile scratch plus K^T tiles packed
// once per run (backward: K^T, V^T, grouped q and dO rows, per-row statistics), all O(tokens).
int64_t attention_fused_workspace_bytes(const AttentionPlan& plan, const AttentionShape& shape,
                                        int threads, bool backward);

Status attention_forward_fused(const CpuContext& ctx, const AttentionPlan& plan, float* out,
                               float* lse, const float* q, const float* k, const float* v,
                               const AttentionShape& shape);
// dq (tokens, heads, D), dk, dv (tokens, kv_heads, D) are overwritten.
Status attention_backward_fused(const CpuContext& ctx, const AttentionPlan& plan, float* dq,
                                float* dk, float* dv, const float* dout, const float* q,
                                const float* k, const float* v, const float* out, const float* lse,
                                const AttentionShape& shape);

}  // namespace npr
