// The KV cache bookkeeping: unit cases for fork/join/budgets, and a seeded soak of random
// operations (allocate, append, fork, join, free, close, reclaim under pressure) with the
// invariant checker after every operation and a simulated page store: every SlotCopy is
// applied to per-slot token values and every live sequence must read back its exact token
// stream through its block table. Run under ASan/LSan in CI (npm run test:cpp -- --sanitize).
#include <cstdint>
#include <string>
#include <vector>

#include "kvcache/kv_cache.h"
#include "tests/harness.h"
#include "tests/test_util.h"

namespace npr::test {

namespace {

// Token values per slot, standing in for K/V pages.
struct Pages {
  int32_t B;
  std::vector<int64_t> slot;
  Pages(int32_t blocks, int32_t b) : B(b), slot(static_cast<size_t>(blocks) * b, -1) {}
  void apply(const std::vector<SlotCopy>& copies) {
    for (const SlotCopy& c : copies)
      for (int32_t i = 0; i < c.count; ++i)  // ascending: overlapping left shifts are safe
        slot[c.dst_block * B + c.dst_slot + i] = slot[c.src_block * B + c.src_slot + i];
  }
  void write(const KvCache& kv, int32_t seq, int64_t pos, int64_t value) {
    slot[kv.table(seq)[pos / B] * B + pos % B] = value;
  }
  bool matches(const KvCache& kv, int32_t seq, const std::vector<int64_t>& want) const {
    if (kv.length(seq) != static_cast<int64_t>(want.size())) return false;
    for (size_t i = 0; i < want.size(); ++i)
      if (slot[kv.table(seq)[i / B] * B + i % B] != want[i]) return false;
    return true;
  }
};

// One soak run; returns a hash of every table after every operation (for determinism).
uint64_t soak(uint64_t seed, int64_t ops, int32_t blocks, int32_t B, int* failures) {
  Rng rng(seed);
  KvCache kv(blocks, B);
  Pages pages(blocks, B);
  std::vector<std::vector<int64_t>> want;  // per sequence id
  std::vector<int32_t> open_requests;
  int64_t next_value = 0;
  int64_t n_append = 0, n_fork = 0, n_join = 0, n_free = 0, n_close = 0, n_refused = 0,
          n_reclaim = 0;
  uint64_t hash = 1469598103934665603ull;
  auto mix = [&](uint64_t x) { hash = (hash ^ x) * 1099511628211ull; };
  auto live_seqs = [&]() {
    std::vector<int32_t> out;
    for (int32_t s = 0; s < static_cast<int32_t>(want.size()); ++s)
      if (kv.is_live(s)) out.push_back(s);
    return out;
  };
  auto fail = [&](const std::string& m) {
    if ((*failures)++ < 5)
      std::printf("    soak seed %llu: %s\n", static_cast<unsigned long long>(seed), m.c_str());
  };
  for (int64_t op = 0; op < ops && *failures == 0; ++op) {
    const int kind = static_cast<int>(rng.below(100));
    std::vector<int32_t> live = live_seqs();
    if (kind < 8 || open_requests.empty()) {  // a new request with one sequence
      const int32_t r = kv.open_request(static_cast<int64_t>(rng.below(400)));
      open_requests.push_back(r);
      int32_t s;
      if (!kv.create_sequence(r, &s).is_ok()) fail("create_sequence");
      if (static_cast<int32_t>(want.size()) <= s) want.resize(s + 1);
      want[s].clear();
    } else if (kind < 60 && !live.empty()) {  // append
      const int32_t s = live[rng.below(static_cast<int64_t>(live.size()))];
      const int64_t n = 1 + rng.below(24);
      KvAnswer a;
      Status st = kv.append(s, n, rng.below(4) != 0, &a);
      if (!st.is_ok()) continue;  // frozen: refused with a reason, nothing changed
      if (a != KvAnswer::kOk) ++n_refused;
      if (a == KvAnswer::kOk) {
        ++n_append;
        for (int64_t i = 0; i < n; ++i) {
          pages.write(kv, s, static_cast<int64_t>(want[s].size()), next_value);
          want[s].push_back(next_value++);
        }
      } else if (a == KvAnswer::kNoBlocks && !open_requests.empty()) {  // reclaim under pressure
        const size_t victim =
            static_cast<size_t>(rng.below(static_cast<int64_t>(open_requests.size())));
        if (!kv.close_request(open_requests[victim]).is_ok()) fail("close under pressure");
        ++n_reclaim;
        open_requests.erase(open_requests.begin() + static_cast<int64_t>(victim));
      }
    } else if (kind < 75 && !live.empty()) {  // fork
      const int32_t s = live[rng.below(static_cast<int64_t>(live.size()))];
      std::vector<int32_t> kids;
      std::vector<SlotCopy> copies;
      KvAnswer a;
      Status st = kv.fork(s, 1 + static_cast<int32_t>(rng.below(6)), &kids, &a, &copies);
      if (st.is_ok() && a == KvAnswer::kOk) {
        ++n_fork;
        pages.apply(copies);
        for (int32_t k : kids) {
          if (static_cast<int32_t>(want.size()) <= k) want.resize(k + 1);
          want[k] = want[s];
        }
      }
    } else if (kind < 88 && !live.empty()) {  // join a fork (refused while a child has forked)
      std::vector<int32_t> forked;
      for (int32_t c : live)
        if (!kv.children(c).empty()) forked.push_back(c);
      if (forked.empty()) continue;
      const int32_t s = forked[rng.below(static_cast<int64_t>(forked.size()))];
      std::vector<SlotCopy> copies;
      // Expected result: the parent's tokens, then each child's own tokens in child order.
      std::vector<int64_t> joined = want[s];
      const size_t P = want[s].size();
      const std::vector<int32_t> children = kv.children(s);
      Status st = kv.join(s, &copies);
      if (st.is_ok()) {
        ++n_join;
        pages.apply(copies);
        for (int32_t c : children)
          joined.insert(joined.end(), want[c].begin() + static_cast<int64_t>(P), want[c].end());
        want[s] = joined;
        if (!pages.matches(kv, s, want[s]))
          fail("joined sequence " + std::to_string(s) + " reads back wrong tokens");
      }
    } else if (kind < 95 && !live.empty()) {  // free one sequence (a branch or a whole tree)
      n_free +=
          kv.free_sequence(live[rng.below(static_cast<int64_t>(live.size()))]).is_ok() ? 1 : 0;
    } else if (!open_requests.empty()) {  // a request finishes or is aborted
      const size_t r = static_cast<size_t>(rng.below(static_cast<int64_t>(open_requests.size())));
      if (!kv.close_request(open_requests[r]).is_ok()) fail("close_request");
      ++n_close;
      open_requests.erase(open_requests.begin() + static_cast<int64_t>(r));
    }
    Status inv = kv.check_invariants();
    if (!inv.is_ok()) fail("after op " + std::to_string(op) + ": " + inv.message());
    for (int32_t s = 0; s < static_cast<int32_t>(want.size()); ++s) {
      if (!kv.is_live(s)) continue;
      mix(static_cast<uint64_t>(s));
      for (int32_t b : kv.table(s)) mix(static_cast<uint64_t>(b));
    }
    if (op % 997 == 0)
      for (int32_t s = 0; s < static_cast<int32_t>(want.size()); ++s)
        if (kv.is_live(s) && !pages.matches(kv, s, want[s]))
          fail("sequence " + std::to_string(s) + " reads back wrong tokens");
  }
  std::printf(
      "    soak seed %llu: %lld ops: %lld appends, %lld refused, %lld forks, %lld joins, %lld "
      "frees, %lld closes, %lld reclaims\n",
      static_cast<unsigned long long>(seed), static_cast<long long>(ops),
      static_cast<long long>(n_append), static_cast<long long>(n_refused),
      static_cast<long long>(n_fork), static_cast<long long>(n_join),
      static_cast<long long>(n_free), static_cast<long long>(n_close),
      static_cast<long long>(n_reclaim));
  if (n_join < ops / 100 || n_fork < ops / 100 || n_reclaim == 0 || n_refused == 0)
    fail("the soak did not exercise every operation enough");
  // Everything closed: every block must be back in the pool.
  for (int32_t r : open_requests) (void)kv.close_request(r);
  if (kv.free_blocks() != blocks)
    fail("blocks leaked: " + std::to_string(blocks - kv.free_blocks()));
  return hash;
}

}  // namespace

TEST(kv_cache_fork_shares_full_blocks_and_copies_the_tail) {
  KvCache kv(16, 4);
  const int32_t r = kv.open_request(100);
  int32_t s;
  CHECK_OK(kv.create_sequence(r, &s));
  KvAnswer a;
  CHECK_OK(kv.append(s, 10, false, &a));  // blocks 0, 1 full, 2 holds 2 tokens
  CHECK(a == KvAnswer::kOk && kv.table(s) == std::vector<int32_t>({0, 1, 2}));
  std::vector<int32_t> kids;
  std::vector<SlotCopy> copies;
  CHECK_OK(kv.fork(s, 3, &kids, &a, &copies));
  CHECK(kids.size() == 3 && copies.size() == 3);
  CHECK(kv.refcount(0) == 4 && kv.refcount(1) == 4 && kv.refcount(2) == 1);
  CHECK(copies[0].src_block == 2 && copies[0].count == 2 && copies[0].dst_block == 3);
  CHECK(kv.append(s, 1, true, &a).code() == StatusCode::kInvalidArgument);  // frozen parent
  CHECK_OK(kv.check_invariants());
}

TEST(kv_cache_join_compacts_children_in_order) {
  KvCache kv(32, 4);
  const int32_t r = kv.open_request(1000);
  int32_t s;
  CHECK_OK(kv.create_sequence(r, &s));
  KvAnswer a;
  CHECK_OK(kv.append(s, 6, false, &a));
  std::vector<int32_t> kids;
  std::vector<SlotCopy> copies;
  CHECK_OK(kv.fork(s, 3, &kids, &a, &copies));
  CHECK_OK(kv.append(kids[0], 3, true, &a));
  CHECK_OK(kv.append(kids[1], 5, true, &a));
  CHECK_OK(kv.append(kids[2], 1, true, &a));
  CHECK(kv.generated(r) == 9);
  const int32_t before = kv.free_blocks();
  copies.clear();
  CHECK_OK(kv.join(s, &copies));
  CHECK(kv.length(s) == 6 + 3 + 5 + 1);
  CHECK(kv.table(s).size() == 4);  // 15 tokens in 4-token blocks
  CHECK(kv.free_blocks() > before);
  CHECK(!kv.is_live(kids[0]) && !kv.is_live(kids[1]) && !kv.is_live(kids[2]));
  CHECK_OK(kv.check_invariants());
  CHECK_OK(kv.append(s, 1, true, &a));  // the joined sequence continues
}

TEST(kv_cache_refuses_before_changing_anything) {
  KvCache kv(3, 4);
  const int32_t r = kv.open_request(5);
  int32_t s;
  CHECK_OK(kv.create_sequence(r, &s));
  KvAnswer a;
  CHECK_OK(kv.append(s, 6, true, &a));
  CHECK(a == KvAnswer::kNoBudget && kv.length(s) == 0 && kv.free_blocks() == 3);
  CHECK_OK(kv.append(s, 13, false, &a));  // prompt tokens do not count, but 4 blocks > 3
  CHECK(a == KvAnswer::kNoBlocks && kv.length(s) == 0 && kv.free_blocks() == 3);
  CHECK_OK(kv.append(s, 10, false, &a));
  std::vector<int32_t> kids;
  std::vector<SlotCopy> copies;
  CHECK_OK(kv.fork(s, 2, &kids, &a, &copies));  // two tail copies, one free block
  CHECK(a == KvAnswer::kNoBlocks && kids.empty() && copies.empty() && kv.free_blocks() == 0);
  CHECK_OK(kv.check_invariants());
  CHECK_OK(kv.close_request(r));
  CHECK(kv.free_blocks() == 3);
}

TEST(kv_cache_soak_one_million_operations) {
  int failures = 0;
  const uint64_t h1 = soak(7, 500000, 97, 16, &failures);
  const uint64_t h2 = soak(7, 500000, 97, 16, &failures);
  CHECK(failures == 0);
  CHECK_MSG(h1 == h2, "the same seed gave different block ids");
  soak(11, 200000, 61, 8, &failures);  // smaller blocks, more forks crossing block edges
  soak(13, 100000, 40, 1, &failures);  // one token per block
  CHECK(failures == 0);
}

}  // namespace npr::test
