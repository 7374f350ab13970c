// Paged decode attention on a CUDA device: the twin of decode_attention.h (same CSR page
// tables, GQA, K already rotated at explicit positions; flat and shared-prefix cascade).
//
// Plan once per step, run per layer. The host plan (DecodeWork) cuts every query's keys into
// work items: an item is a run of pages read once for a set of query rows (one sequence, or the
// members of a cascade group over their shared prefix) and leaves one partial softmax state
// (max, sum, unnormalised output) per query row and head. A second kernel merges each query's
// partial states by log-sum-exp. Flat = each sequence's own pages only; cascade = the group's
// shared pages once for all members, then each member's own pages (FlashInfer's cascade).
// Splitting one sequence's keys over several items (split-KV) keeps the device busy at batch 1.
// The split of a sequence's keys depends on its own length only (not on the batch), so a
// query's result does not change with the batch around it.
// The device plan has fixed-capacity buffers and the item count on the device, so a captured
// CUDA graph can replay the same launches with new plans (grid = capacity, idle items exit).
#pragma once

#include <cstdint>
#include <vector>

#include "core/cuda_context.h"
#include "core/host_device.h"
#include "core/status.h"
#include "kernels/decode_attention.h"

namespace npr {

// Pages of one layer on the device: k, v (num_blocks, block_tokens, kv_heads, head_dim) type t.
struct DevicePagedKv {
  const void* k = nullptr;
  const void* v = nullptr;
  int32_t block_tokens = 16;
  int64_t kv_heads = 0, head_dim = 0;
};

// Host side of one step's plan.
struct DecodeWork {
  static constexpr int kItemFields = 6;
  // (items, 6): q_begin (into q_order), q_count, page_begin (into the table's indices),
  // page_count, last_len (tokens in the item's last page), part_begin (first partial row).
  std::vector<int32_t> items;
  std::vector<int32_t> q_order;     // (partials) query row of each partial row
  std::vector<int32_t> merge_ptr;   // (queries + 1) CSR into merge_rows
  std::vector<int32_t> merge_rows;  // partial rows of each query, in key order
  int64_t queries = 0, partials = 0, max_rows = 0;
  int64_t n_items() const { return static_cast<int64_t>(items.size()) / kItemFields; }
};

// Whether work item `item` (its kItemFields ints) of a plan of one-token queries ends at its
// query's new token: the item holds one query and its last key is that query's slot (block x
// block_tokens + offset; slots: the queries' new-token slots). Exactly one item of each query
// does, the last of its own pages: the one-kernel decode step writes the token's K and V in that
// item, just before attending.
NPR_HOST_DEVICE inline bool item_ends_at_new_token(const int32_t* item, const int32_t* q_order,
                                                   const int32_t* indices, const int32_t* slots,
                                                   int32_t block_tokens) {
  if (item[1] != 1) return false;
  const int64_t end =
      static_cast<int64_t>(indices[item[2] + item[3] - 1]) * block_tokens + item[4] - 1;
  return slots[q_order[item[0]]] == end;
}

struct DecodeWorkOptions {
  int32_t min_pages_per_item = 4;  // split-KV: an item reads at least this many pages
  int32_t max_items_per_run = 16;  // ... and a run of pages is cut into at most this many items
  int64_t max_rows = 16;           // query rows (members x heads per kv head) of one item
};
// plan: null for flat. heads_per_kv = heads / kv_heads.
DecodeWork decode_work(const PageTable& t, const CascadePlan* plan, int32_t block_tokens,
                       int64_t heads_per_kv, const DecodeWorkOptions& opt);
// The most items (and partial rows) decode_work makes for `sequences` one-token queries, flat
// or cascade: a run is cut into at most max_items_per_run page chunks, each sequence has one
// run of its own, and a group's shared run adds at most one chunk set per member. A graph
// replayed for every step of that many sequences launches this many items: its grid is fixed
// at capture, and blocks past the step's items return at once, so it must not be much larger.
int64_t decode_item_bound(int64_t sequences, const DecodeWorkOptions& opt);

// The plan on the device (and the partial states' workspace), in one buffer of fixed capacity.
class DeviceDecodePlan {
 public:
  // Capacities; a larger later plan regrows the buffer (and bumps generation()).
  Status reserve(CudaContext& ctx, int64_t items, int64_t partials, int64_t queries,
                 int64_t indices, int64_t heads, int64_t head_dim);
  // Uploads work and the table's indices (enqueued, no sync). Grows when needed.
  Status upload(CudaContext& ctx, const DecodeWork& w, const PageTable& t, int64_t heads,
                int64_t head_dim);
  int64_t generation() const { return generation_; }
  int64_t item_capacity() const { return cap_items_; }
  int64_t queries() const { return queries_; }
  int64_t max_rows() const { return max_rows_; }
  int64_t items_in_use() const { return items_; }

  int32_t* header = nullptr;  // [0] = items in use
  int32_t *items = nullptr, *q_order = nullptr, *merge_ptr = nullptr, *merge_rows = nullptr;
  int32_t* indices = nullptr;
  float *part_m = nullptr, *part_l = nullptr, *part_acc = nullptr;  // (P, heads), (P, heads, D)

 private:
  DeviceBuffer buf_;
  std::vector<int32_t> staging_;
  int64_t cap_items_ = 0, cap_partials_ = 0, cap_queries_ = 0, cap_indices_ = 0;
  int64_t heads_ = 0, head_dim_ = 0, queries_ = 0, max_rows_ = 0, items_ = 0, generation_ = 0;
  int64_t int_bytes_ = 0;  // bytes of the int32 part (its part in use is uploaded each step)
};

// Which kernel folds the items: the SIMT kernel (any type, head dim and rows per item), or the
// tensor-core one (bf16, head dim 64 or 128, at most 16 query rows per item, i.e. a plan made
// with max_rows <= 16). kMma where it does not apply is an invalid-argument error; kAuto takes
// the tensor-core kernel where it applies and the SIMT one elsewhere.
enum class DecodeAttnKernel { kAuto, kSimt, kMma };
bool decode_attention_mma_applies(DevDType t, int64_t head_dim, int64_t max_rows);
// How each query's partial states are merged: one partial at a time (kSerial, the reference), or
// with the partials' loads issued together through shared memory (kStaged,
// decode_merge_staged.cuh): the same bits either way. The decoder takes kStaged: on an H200 the
// 0.6B decode step's device time went from 1.047 to 1.004 ms at batch 1 and from 1.625 to
// 1.559 ms at 8 branches. (A merge in the attend kernel's tail by the last of a query's items
// kept the bits but lost: 1.061 ms at batch 1, and 2.483 ms at 8 branches, where a cascade
// item's CTA ends up merging all its queries one after another.)
enum class DecodeMerge { kSerial, kStaged };
// pdl: the tensor-core attend kernel and then the staged merge as programmatic dependent
// launches (pdl.cuh) where the device supports them; other kernels launch as usual.

// out (queries, heads, head_dim) type t; lse (queries, heads) fp32 or null; q (queries, heads,
// head_dim) type t, rotated. `launch_items`: the grid's item count (0: the plan's own count,
// known on the host; a graph capture passes the capacity).
Status decode_attention_cuda(CudaContext& ctx, DevDType t, const DeviceDecodePlan& plan, void* out,
                             float* lse, const void* q, int64_t heads, const DevicePagedKv& kv,
                             float scale, int64_t launch_items,
                             DecodeAttnKernel kernel = DecodeAttnKernel::kSimt,
                             DecodeMerge merge = DecodeMerge::kSerial, bool pdl = false);

}  // namespace npr
