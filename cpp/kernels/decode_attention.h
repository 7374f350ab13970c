// Decode attention over paged KV: one new query per sequence attends to every token of its
// sequence, read through a CSR page table (FlashInfer's layout: the pages of sequence s are
// indices[indptr[s] .. indptr[s + 1]), the last holding last_len[s] tokens).
//
// Flat: each sequence reads all its pages. Cascade (shared-prefix attention): sequences that
// share their first pages (the branches of one fork share the parent's full blocks) form a
// group; the shared pages are read once for all the group's queries, each branch's own pages
// separately, and the two softmax states are merged by log-sum-exp. With N branches over a
// long prefix this reads the prefix once per step instead of N times. The plan (grouping) is
// made once per step and reused by every layer.
//
// Both run page-major: a run of full pages (a group's shared prefix, or a lone sequence's pages
// but its last) is folded a page at a time for every kv head, so that each page's K and V blocks
// are read once and in address order, split into parts across the threads when there are fewer
// runs than threads (the parts' states merged by log-sum-exp); head-major reads of 512-byte rows
// 4 KiB apart reached half the memory bandwidth. Many query rows over one run (>= half a vector
// of them) go through the ISA's decode tiles (decode_attention_simd.inc); a few, through a
// per-page dot-product fold. Each sequence's own pages (its last at least) run afterwards.
// Pages of one layer: k, v (num_blocks, block_tokens, kv_heads, head_dim), K already rotated.
// q (n, heads, head_dim) rotated; out (n, heads, head_dim); lse (n, heads) may be null.
#pragma once

#include <cstdint>
#include <vector>

#include "core/cpu_info.h"
#include "core/status.h"

namespace npr {

struct PagedKv {
  const float* k = nullptr;
  const float* v = nullptr;
  int32_t block_tokens = 16;
  int64_t kv_heads = 0, head_dim = 0;
};

struct PageTable {
  int64_t sequences = 0;
  const int32_t* indptr = nullptr;    // (sequences + 1)
  const int32_t* indices = nullptr;   // (indptr[sequences]) block ids
  const int32_t* last_len = nullptr;  // (sequences) tokens in the last page, 1..block_tokens
};

// Groups of sequences with a common run of leading pages (identical block ids, all full).
struct CascadePlan {
  std::vector<int32_t> group_start;   // (groups + 1) into `order`
  std::vector<int32_t> order;         // (sequences) sequence ids, grouped
  std::vector<int32_t> shared_pages;  // (groups) pages read once per group (0: no sharing)
};

Status check_page_table(const PageTable& t, int32_t num_blocks, int32_t block_tokens);
// Groups sequences sharing at least `min_shared_pages` leading pages (adjacent in table order),
// at most `max_members` to a group. The query rows of a prefill (one table row per new token,
// each holding its sequence's pages up to itself) form groups of consecutive tokens whose shared
// pages are those wholly before the group's first token: the causal prefix every member sees.
CascadePlan cascade_plan(const PageTable& t, int32_t min_shared_pages,
                         int64_t max_members = INT64_MAX);

Status decode_attention(const CpuContext& ctx, float* out, float* lse, const float* q,
                        int64_t heads, const PagedKv& kv, const PageTable& t, float scale);
Status decode_attention_cascade(const CpuContext& ctx, float* out, float* lse, const float* q,
                                int64_t heads, const PagedKv& kv, const PageTable& t,
                                const CascadePlan& plan, float scale);
// The oracle: each sequence's keys gathered contiguously, softmax in double.
void decode_attention_reference(float* out, float* lse, const float* q, int64_t heads,
                                const PagedKv& kv, const PageTable& t, float scale);

}  // namespace npr
