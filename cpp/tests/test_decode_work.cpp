// The paged decode plan (decode_work.h) on random tables of odd shapes, some rows without pages
// (a step of chunks cuts each row's table at the step, so a fresh prompt's rows have none):
// flat and cascade, every row's keys are covered once by the items it is a member of, every
// partial row is merged by exactly its query; and with_chunk_rows puts one more row a query last
// in its merge list, after the rows it had, leaving the items alone.
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/decode_attention.h"
#include "kernels/decode_work.h"
#include "tests/harness.h"
#include "tests/test_util.h"

namespace npr::test {

TEST(decode_work_covers_every_key_once_and_chunk_rows_merge_last) {
  Rng rng(23);
  const int32_t B = 4;
  for (int round = 0; round < 40; ++round) {
    const int64_t S = 1 + static_cast<int64_t>(rng.below(23));
    // Rows in runs sharing leading pages (as a chunk's rows or a fork's branches do).
    std::vector<int32_t> indptr{0}, indices, last;
    std::vector<int64_t> tokens;
    std::vector<int32_t> shared;
    for (int64_t s = 0; s < S; ++s) {
      if (s == 0 || rng.below(3) == 0) {  // a new run: fresh shared pages
        shared.clear();
        for (int64_t p = rng.below(5); p > 0; --p)
          shared.push_back(static_cast<int32_t>(rng.below(50)));
      }
      const int64_t own = rng.below(3);
      const int64_t pages = static_cast<int64_t>(shared.size()) + own;
      for (int32_t b : shared) indices.push_back(b);
      for (int64_t p = 0; p < own; ++p) indices.push_back(static_cast<int32_t>(50 + rng.below(50)));
      indptr.push_back(static_cast<int32_t>(indices.size()));
      last.push_back(pages == 0 ? 1 : static_cast<int32_t>(1 + rng.below(B)));
      tokens.push_back(pages == 0 ? 0 : (pages - 1) * B + last.back());
    }
    const PageTable t{S, indptr.data(), indices.data(), last.data()};
    for (bool cascade : {false, true}) {
      const std::string what =
          "round " + std::to_string(round) + (cascade ? " (cascade)" : " (flat)");
      DecodeWorkOptions opt;
      opt.min_pages_per_item = 1 + static_cast<int32_t>(rng.below(3));
      opt.max_items_per_run = 1 + static_cast<int32_t>(rng.below(4));
      const CascadePlan plan = cascade_plan(t, 1, 8);
      const DecodeWork w = decode_work(t, cascade ? &plan : nullptr, B, 2, opt);
      // Keys each query's items cover, and the query of each partial row.
      std::vector<int64_t> covered(static_cast<size_t>(S), 0);
      std::vector<int64_t> query_of(static_cast<size_t>(w.partials), -1);
      for (int64_t i = 0; i < w.n_items(); ++i) {
        const int32_t* it = w.items.data() + DecodeWork::kItemFields * i;
        const int64_t keys = static_cast<int64_t>(it[3] - 1) * B + it[4];
        for (int32_t m = 0; m < it[1]; ++m) {
          const int32_t q = w.q_order[it[0] + m];
          covered[q] += keys;
          query_of[it[5] + m] = q;
        }
      }
      for (int64_t q = 0; q < S; ++q)
        CHECK_MSG(covered[q] == tokens[q], what + ": query " + std::to_string(q) + " covers " +
                                               std::to_string(covered[q]) + " keys of " +
                                               std::to_string(tokens[q]));
      DecodeWork c = w;
      with_chunk_rows(&c);
      CHECK_MSG(w.chunk_rows == -1 && c.chunk_rows == w.partials && c.partials == w.partials + S &&
                    c.items == w.items && c.q_order == w.q_order,
                what + ": with_chunk_rows changed the items or counted wrong");
      for (int64_t q = 0; q < S; ++q) {
        std::vector<int32_t> had(w.merge_rows.begin() + w.merge_ptr[q],
                                 w.merge_rows.begin() + w.merge_ptr[q + 1]);
        for (int32_t r : had)
          CHECK_MSG(query_of[r] == q, what + ": query " + std::to_string(q) + " merges row " +
                                          std::to_string(r) + " of query " +
                                          std::to_string(query_of[r]));
        CHECK_MSG(had.empty() == (tokens[q] == 0),
                  what + ": query " + std::to_string(q) + " merges " + std::to_string(had.size()) +
                      " rows for " + std::to_string(tokens[q]) + " keys");
        had.push_back(static_cast<int32_t>(c.chunk_rows + q));
        const std::vector<int32_t> now(c.merge_rows.begin() + c.merge_ptr[q],
                                       c.merge_rows.begin() + c.merge_ptr[q + 1]);
        CHECK_MSG(now == had, what + ": query " + std::to_string(q) +
                                  "'s merge list is not its rows, then its chunk row");
      }
    }
  }
}

}  // namespace npr::test
