// decode_work.h: the work items of a paged decode step, flat or cascade.
#include "kernels/decode_work.h"

#include <algorithm>

namespace npr {

DecodeWork decode_work(const PageTable& t, const CascadePlan* plan, int32_t B, int64_t G,
                       const DecodeWorkOptions& opt) {
  DecodeWork w;
  w.queries = t.sequences;
  w.max_rows = std::max<int64_t>(opt.max_rows, G);
  const int64_t max_members = std::max<int64_t>(1, w.max_rows / G);
  std::vector<std::vector<int32_t>> rows_of(static_cast<size_t>(t.sequences));
  auto add_run = [&](const int32_t* members, int64_t n, int32_t page_begin, int32_t page_count,
                     int32_t last_len) {
    const int32_t per = std::max(opt.min_pages_per_item,
                                 (page_count + opt.max_items_per_run - 1) / opt.max_items_per_run);
    for (int32_t p0 = 0; p0 < page_count; p0 += per) {
      const int32_t pc = std::min(per, page_count - p0);
      const int32_t ll = p0 + pc == page_count ? last_len : B;
      for (int64_t m0 = 0; m0 < n; m0 += max_members) {
        const int64_t mc = std::min(max_members, n - m0);
        const int32_t part = static_cast<int32_t>(w.partials);
        w.items.insert(w.items.end(),
                       {part, static_cast<int32_t>(mc), page_begin + p0, pc, ll, part});
        for (int64_t i = 0; i < mc; ++i) {
          w.q_order.push_back(members[m0 + i]);
          rows_of[members[m0 + i]].push_back(static_cast<int32_t>(w.partials++));
        }
      }
    }
  };
  if (!plan) {
    for (int32_t s = 0; s < t.sequences; ++s)
      add_run(&s, 1, t.indptr[s], t.indptr[s + 1] - t.indptr[s], t.last_len[s]);
  } else {
    for (size_t g = 0; g + 1 < plan->group_start.size(); ++g) {
      const int32_t* members = plan->order.data() + plan->group_start[g];
      const int64_t n = plan->group_start[g + 1] - plan->group_start[g];
      const int32_t shared = plan->shared_pages[g];
      if (shared > 0) add_run(members, n, t.indptr[members[0]], shared, B);
      for (int64_t i = 0; i < n; ++i) {
        const int32_t s = members[i];
        add_run(&s, 1, t.indptr[s] + shared, t.indptr[s + 1] - t.indptr[s] - shared, t.last_len[s]);
      }
    }
  }
  w.merge_ptr.push_back(0);
  for (const auto& rows : rows_of) {
    w.merge_rows.insert(w.merge_rows.end(), rows.begin(), rows.end());
    w.merge_ptr.push_back(static_cast<int32_t>(w.merge_rows.size()));
  }
  return w;
}

void with_chunk_rows(DecodeWork* w) {
  w->chunk_rows = w->partials;
  std::vector<int32_t> rows;
  rows.reserve(w->merge_rows.size() + static_cast<size_t>(w->queries));
  std::vector<int32_t> ptr{0};
  for (int64_t q = 0; q < w->queries; ++q) {
    rows.insert(rows.end(), w->merge_rows.begin() + w->merge_ptr[q],
                w->merge_rows.begin() + w->merge_ptr[q + 1]);
    rows.push_back(static_cast<int32_t>(w->chunk_rows + q));
    ptr.push_back(static_cast<int32_t>(rows.size()));
  }
  w->merge_rows = std::move(rows);
  w->merge_ptr = std::move(ptr);
  w->partials += w->queries;
}

int64_t decode_item_bound(int64_t sequences, const DecodeWorkOptions& opt) {
  return 2 * static_cast<int64_t>(std::max<int32_t>(1, opt.max_items_per_run)) * sequences;
}

}  // namespace npr
