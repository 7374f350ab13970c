// decode_attention.h's page-table helpers: the check of a CSR page table and the cascade's
// grouping of sequences by shared leading pages. Plain host code, apart from the attention, so
// that the CUDA decoder's emulator build (cpp/tests/emu) has them too.
#include <algorithm>
#include <string>

#include "kernels/decode_attention.h"

namespace npr {

Status check_page_table(const PageTable& t, int32_t num_blocks, int32_t block_tokens) {
  if (t.sequences < 0 || t.indptr[0] != 0)
    return Status::invalid("page table: indptr must start at 0");
  for (int64_t s = 0; s < t.sequences; ++s) {
    if (t.indptr[s + 1] <= t.indptr[s])
      return Status::invalid("page table: sequence " + std::to_string(s) + " has no pages");
    if (t.last_len[s] < 1 || t.last_len[s] > block_tokens)
      return Status::out_of_range("page table: last_len of sequence " + std::to_string(s) +
                                  " must be in [1, " + std::to_string(block_tokens) + "]");
  }
  for (int64_t i = 0; i < t.indptr[t.sequences]; ++i)
    if (t.indices[i] < 0 || t.indices[i] >= num_blocks)
      return Status::out_of_range("page table: block " + std::to_string(t.indices[i]) +
                                  " is outside the pool");
  return Status::ok();
}

CascadePlan cascade_plan(const PageTable& t, int32_t min_shared_pages, int64_t max_members) {
  CascadePlan plan;
  // Pages of sequence s that may be shared: all but the last (a sequence appends into its last
  // page, so that one is always read as the sequence's own).
  auto full_pages = [&](int64_t s) { return t.indptr[s + 1] - t.indptr[s] - 1; };
  int64_t s = 0;
  while (s < t.sequences) {
    plan.group_start.push_back(static_cast<int32_t>(plan.order.size()));
    plan.order.push_back(static_cast<int32_t>(s));
    int32_t shared = full_pages(s);
    int64_t e = s + 1;
    for (; e < t.sequences && e - s < max_members; ++e) {
      int32_t common = 0;
      const int32_t limit = std::min(shared, full_pages(e));
      while (common < limit && t.indices[t.indptr[s] + common] == t.indices[t.indptr[e] + common])
        ++common;
      if (common < min_shared_pages) break;
      shared = common;
      plan.order.push_back(static_cast<int32_t>(e));
    }
    plan.shared_pages.push_back(e - s > 1 ? shared : 0);
    s = e;
  }
  plan.group_start.push_back(static_cast<int32_t>(plan.order.size()));
  return plan;
}

}  // namespace npr
