// The work items of one paged decode step (host side): every query's keys cut into runs of pages,
// each read once for a set of query rows, and how each query's partial states merge. The CUDA
// decode attention (decode_attention_cuda.h) and the one-kernel decode step run these plans;
// plain C++, so that CPU-only builds (and the kernels' emulator in the tests) make them too.
#pragma once

#include <cstdint>
#include <vector>

#include "core/host_device.h"
#include "kernels/decode_attention.h"

namespace npr {

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
  // -1, or the first of `queries` partial rows no item writes (with_chunk_rows): query q's last
  // merge row is chunk_rows + q, filled by the attention over the step's own new tokens.
  int64_t chunk_rows = -1;
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
// One more partial row a query, after the plan's own rows and last in its merge list (key
// order: the step's new tokens come after the pages before them): a multi-token step whose
// plan covers each row's keys from before the step only (its old pages) gets the rest, the
// causal attention among the step's new tokens, as that row (DecodeWork::chunk_rows). A table
// row with no pages then has no item, and this row is its only one.
void with_chunk_rows(DecodeWork* w);

// The most items (and partial rows) decode_work makes for `sequences` one-token queries, flat
// or cascade: a run is cut into at most max_items_per_run page chunks, each sequence has one
// run of its own, and a group's shared run adds at most one chunk set per member. A graph
// replayed for every step of that many sequences launches this many items: its grid is fixed
// at capture, and blocks past the step's items return at once, so it must not be much larger.
int64_t decode_item_bound(int64_t sequences, const DecodeWorkOptions& opt);

}  // namespace npr
