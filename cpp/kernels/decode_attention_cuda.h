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
#include "kernels/decode_work.h"

namespace npr {

// Pages of one layer on the device: k, v (num_blocks, block_tokens, kv_heads, head_dim) type t.
struct DevicePagedKv {
  const void* k = nullptr;
  const void* v = nullptr;
  int32_t block_tokens = 16;
  int64_t kv_heads = 0, head_dim = 0;
};

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
  int64_t chunk_rows() const { return chunk_rows_; }  // DecodeWork::chunk_rows of the upload
  int64_t heads() const { return heads_; }
  int64_t head_dim() const { return head_dim_; }

  int32_t* header = nullptr;  // [0] = items in use
  int32_t *items = nullptr, *q_order = nullptr, *merge_ptr = nullptr, *merge_rows = nullptr;
  int32_t* indices = nullptr;
  float *part_m = nullptr, *part_l = nullptr, *part_acc = nullptr;  // (P, heads), (P, heads, D)

 private:
  DeviceBuffer buf_;
  std::vector<int32_t> staging_;
  int64_t cap_items_ = 0, cap_partials_ = 0, cap_queries_ = 0, cap_indices_ = 0;
  int64_t heads_ = 0, head_dim_ = 0, queries_ = 0, max_rows_ = 0, items_ = 0, generation_ = 0;
  int64_t chunk_rows_ = -1;
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

// The step's new tokens straight from the stacked q|k|v projection (decode_attention_cuda's
// `fresh`): the tensor-core attend kernel then normalises and rotates each item's query rows
// itself, and writes each new token's K (normalised, rotated) and V into its slot before
// reading it (decode_attend_new_tokens.cuh): the values of qk_norm_rope_write_cuda, without its
// launch. Only for plans of one-token queries (each query's one new token is its last key).
struct DecodeNewTokens {
  const void* qkv = nullptr;       // (queries, heads + 2 kv_heads, head_dim) bf16
  const float* q_norm = nullptr;   // (head_dim) fp32
  const float* k_norm = nullptr;   // (head_dim) fp32
  const float* cos = nullptr;      // (queries, head_dim / 2) fp32
  const float* sin = nullptr;      // (queries, head_dim / 2) fp32
  const int32_t* slots = nullptr;  // (queries) each new token's slot: block x block_tokens + offset
  void* k_pages = nullptr;         // the pages of `kv`, written
  void* v_pages = nullptr;
  float eps = 1e-6f;
  // With pdl: each item's keys and values prefetched into L2 before the kernel waits for the
  // kernels before it (decode_attend_new_tokens.cuh's prefetch_item_kv); the same bits.
  bool kv_ahead = false;
};

// out (queries, heads, head_dim) type t; lse (queries, heads) fp32 or null; q (queries, heads,
// head_dim) type t, rotated. `launch_items`: the grid's item count (0: the plan's own count,
// known on the host; a graph capture passes the capacity). fresh: null, or the new tokens'
// source in place of q (null then), where the tensor-core kernel runs (an invalid-argument
// error where it does not).
Status decode_attention_cuda(CudaContext& ctx, DevDType t, const DeviceDecodePlan& plan, void* out,
                             float* lse, const void* q, int64_t heads, const DevicePagedKv& kv,
                             float scale, int64_t launch_items,
                             DecodeAttnKernel kernel = DecodeAttnKernel::kSimt,
                             DecodeMerge merge = DecodeMerge::kSerial, bool pdl = false,
                             const DecodeNewTokens* fresh = nullptr);

}  // namespace npr
