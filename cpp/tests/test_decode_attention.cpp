// Paged decode attention: flat == contiguous reference, cascade == flat, on odd sizes (block
// sizes 1, 8, 16; lengths 17, 97, 513; head dims 19, 40, 128) with GQA, over page tables made by
// real KV-cache forks, on every SIMD level this CPU runs (the cascade's shared prefix goes through
// each ISA's decode tiles, with up to 9 branches x 8 query heads = 72 rows: past one row block).
#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/decode_attention.h"
#include "kvcache/kv_cache.h"
#include "tests/harness.h"
#include "tests/test_page_tables.h"
#include "tests/test_util.h"

namespace npr::test {

TEST(decode_attention_flat_and_cascade_match_the_contiguous_reference) {
  Rng rng(71);
  ThreadPool pool(3);
  const int64_t dims[] = {32, 19, 128, 40};
  int round = 0;
  for (SimdLevel simd : runnable_simd_levels())
    for (int32_t B : {1, 8, 16}) {
      for (int64_t prefix : {17, 97, 513}) {
        for (auto [heads, kvh] : {std::pair<int64_t, int64_t>{4, 2}, {8, 1}, {2, 2}}) {
          const int64_t D = dims[round++ % 4], blocks = (prefix + 600) / B * 2 + 64;
          KvCache kv(static_cast<int32_t>(blocks), B);
          const int branches = 1 + static_cast<int>(rng.below(9));
          ForkedTables f = forked_tables(rng, kv, prefix, branches);
          const PageTable t = f.table();
          CHECK_OK(check_page_table(t, static_cast<int32_t>(blocks), B));
          auto k = random_vector(rng, blocks * B * kvh * D),
               v = random_vector(rng, blocks * B * kvh * D);
          PagedKv pk{k.data(), v.data(), B, kvh, D};
          const int64_t n = t.sequences;
          auto q = random_vector(rng, n * heads * D);
          const float scale = 1.0f / std::sqrt(static_cast<float>(D));
          auto ref = poisoned(n * heads * D), flat = poisoned(n * heads * D),
               cas = poisoned(n * heads * D);
          auto rl = poisoned(n * heads), fl = poisoned(n * heads), cl = poisoned(n * heads);
          decode_attention_reference(ref.data(), rl.data(), q.data(), heads, pk, t, scale);
          CHECK_OK(decode_attention(CpuContext{&pool, simd}, flat.data(), fl.data(), q.data(),
                                    heads, pk, t, scale));
          const CascadePlan plan = cascade_plan(t, 1);
          CHECK_OK(decode_attention_cascade(CpuContext{&pool, simd}, cas.data(), cl.data(),
                                            q.data(), heads, pk, t, plan, scale));
          const std::string what = std::string(simd_name(simd)) + " D " + std::to_string(D) +
                                   " B " + std::to_string(B) + " prefix " + std::to_string(prefix) +
                                   " heads " + std::to_string(heads) + "/" + std::to_string(kvh);
          CHECK_MSG(max_abs_diff(flat, ref) < 1e-5,
                    what + ": flat vs reference " + std::to_string(max_abs_diff(flat, ref)));
          CHECK_MSG(max_abs_diff(cas, ref) < 1e-5,
                    what + ": cascade vs reference " + std::to_string(max_abs_diff(cas, ref)));
          CHECK_MSG(max_abs_diff(fl, rl) < 1e-4 && max_abs_diff(cl, rl) < 1e-4, what + ": lse");
          // The fork's branches form one group sharing the prefix's full pages.
          if (prefix >= 2 * B) {
            bool grouped = false;
            for (size_t g = 0; g + 1 < plan.group_start.size(); ++g)
              grouped |= plan.group_start[g + 1] - plan.group_start[g] == branches &&
                         plan.shared_pages[g] > 0;
            CHECK_MSG(grouped || branches == 1, what + ": the branches were not grouped");
          }
        }
      }
    }
}

// A lone sequence (a batch of one) has its pages split into parts across the threads, the
// parts' states merged by log-sum-exp; with 8 query heads per kv head its rows take the tiles.
// A sequence of one partial page has no prefix to split (once a division by zero).
TEST(decode_attention_splits_a_lone_sequence_across_threads) {
  Rng rng(72);
  ThreadPool pool(4);
  for (SimdLevel simd : runnable_simd_levels()) {
    for (auto [heads, kvh, B, len] : {std::tuple<int64_t, int64_t, int32_t, int64_t>{4, 2, 16, 700},
                                      {16, 2, 8, 333},
                                      {8, 1, 16, 1029},
                                      {4, 2, 16, 3}}) {  // one partial page: no prefix at all
      const int64_t D = 40, blocks = len / B + 4;
      std::vector<int32_t> indptr = {0}, indices, last = {static_cast<int32_t>((len - 1) % B + 1)};
      for (int32_t b = 0; b < (len + B - 1) / B; ++b) indices.push_back((b * 7 + 3) % (blocks - 1));
      indptr.push_back(static_cast<int32_t>(indices.size()));
      const PageTable t{1, indptr.data(), indices.data(), last.data()};
      auto k = random_vector(rng, blocks * B * kvh * D),
           v = random_vector(rng, blocks * B * kvh * D);
      const PagedKv pk{k.data(), v.data(), B, kvh, D};
      auto q = random_vector(rng, heads * D);
      auto ref = poisoned(heads * D), flat = poisoned(heads * D), cas = poisoned(heads * D);
      decode_attention_reference(ref.data(), nullptr, q.data(), heads, pk, t, 0.15f);
      CHECK_OK(decode_attention(CpuContext{&pool, simd}, flat.data(), nullptr, q.data(), heads, pk,
                                t, 0.15f));
      CHECK_OK(decode_attention_cascade(CpuContext{&pool, simd}, cas.data(), nullptr, q.data(),
                                        heads, pk, t, cascade_plan(t, 1), 0.15f));
      const std::string what = std::string(simd_name(simd)) + " heads " + std::to_string(heads) +
                               "/" + std::to_string(kvh) + " len " + std::to_string(len);
      CHECK_MSG(max_abs_diff(flat, ref) < 1e-5,
                what + ": flat " + std::to_string(max_abs_diff(flat, ref)));
      CHECK_MSG(max_abs_diff(cas, ref) < 1e-5,
                what + ": cascade " + std::to_string(max_abs_diff(cas, ref)));
    }
  }
}

TEST(decode_attention_rejects_bad_page_tables) {
  std::vector<int32_t> indptr = {0, 2}, indices = {0, 5}, last = {3};
  PageTable t{1, indptr.data(), indices.data(), last.data()};
  CHECK(check_page_table(t, 4, 16).code() == StatusCode::kOutOfRange);  // block 5 outside
  indices[1] = 1;
  last[0] = 17;
  CHECK(check_page_table(t, 4, 16).code() == StatusCode::kOutOfRange);  // last_len too long
  last[0] = 16;
  CHECK_OK(check_page_table(t, 4, 16));
}

}  // namespace npr::test
