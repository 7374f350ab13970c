// Page tables made by real KV-cache forks, for the decode-attention tests (CPU and CUDA).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/decode_attention.h"
#include "kvcache/kv_cache.h"
#include "tests/harness.h"
#include "tests/test_util.h"

namespace npr::test {

// A sequence of `tokens` tokens in a request of its own (the prefix the decode tests fork).
inline int32_t prefix_sequence(KvCache& kv, int64_t tokens) {
  const int32_t r = kv.open_request(1000);
  int32_t root;
  KvAnswer a;
  CHECK_OK(kv.create_sequence(r, &root));
  CHECK_OK(kv.append(root, tokens, false, &a));
  return root;
}

// Page table of the given sequences read off the KV cache.
struct Tables {
  std::vector<int32_t> indptr{0}, indices, last;
  PageTable view() const {
    return PageTable{static_cast<int64_t>(last.size()), indptr.data(), indices.data(), last.data()};
  }
};
inline Tables tables_of(const KvCache& kv, const std::vector<int32_t>& seqs) {
  Tables t;
  for (int32_t s : seqs) {
    for (int32_t b : kv.table(s)) t.indices.push_back(b);
    t.indptr.push_back(static_cast<int32_t>(t.indices.size()));
    const int32_t rem = static_cast<int32_t>(kv.length(s) % kv.block_tokens());
    t.last.push_back(rem == 0 ? kv.block_tokens() : rem);
  }
  return t;
}

struct ForkedTables {
  std::vector<int32_t> indptr{0}, indices, last_len;
  PageTable table() const {
    return PageTable{static_cast<int64_t>(last_len.size()), indptr.data(), indices.data(),
                     last_len.data()};
  }
};

// A prefix of `prefix` tokens forked into `branches` branches of random lengths, plus one
// unrelated sequence, all in one pool; page tables read off the KV cache.
inline ForkedTables forked_tables(Rng& rng, KvCache& kv, int64_t prefix, int branches) {
  ForkedTables f;
  const int32_t r = kv.open_request(1 << 20);
  int32_t root, other;
  KvAnswer a;
  CHECK_OK(kv.create_sequence(r, &root));
  CHECK_OK(kv.append(root, prefix, false, &a));
  CHECK_OK(kv.create_sequence(r, &other));
  CHECK_OK(kv.append(other, 1 + rng.below(60), false, &a));
  std::vector<int32_t> kids;
  std::vector<SlotCopy> copies;  // page data is random anyway: the copies need not be applied
  CHECK_OK(kv.fork(root, branches, &kids, &a, &copies));
  for (int32_t c : kids) CHECK_OK(kv.append(c, 1 + rng.below(40), true, &a));
  std::vector<int32_t> seqs = kids;
  seqs.push_back(other);
  for (int32_t s : seqs) {
    for (int32_t b : kv.table(s)) f.indices.push_back(b);
    f.indptr.push_back(static_cast<int32_t>(f.indices.size()));
    const int32_t rem = static_cast<int32_t>(kv.length(s) % kv.block_tokens());
    f.last_len.push_back(rem == 0 ? kv.block_tokens() : rem);
  }
  return f;
}

// Step j of branches `kids` decoding lens[b] tokens each after a prefix of P: each live branch
// takes one slot (appended to the cache) and the token (31 b + 7 j + 3) mod vocab at position
// P + j, the same whatever the other branches do. Empty when every branch is done.
struct BranchStep {
  std::vector<int32_t> live, ids, pos, cu_new{0};
};
inline BranchStep branch_step(KvCache& kv, const std::vector<int32_t>& kids,
                              const std::vector<int64_t>& lens, int64_t j, int64_t vocab,
                              int64_t P) {
  BranchStep s;
  KvAnswer a;
  for (size_t b = 0; b < lens.size(); ++b) {
    if (j >= lens[b]) continue;
    CHECK_OK(kv.append(kids[b], 1, true, &a));
    s.live.push_back(kids[b]);
    s.ids.push_back(static_cast<int32_t>((31 * static_cast<int64_t>(b) + 7 * j + 3) % vocab));
    s.pos.push_back(static_cast<int32_t>(P + j));
    s.cu_new.push_back(static_cast<int32_t>(s.cu_new.size()));
  }
  return s;
}

}  // namespace npr::test
