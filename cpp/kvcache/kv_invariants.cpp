// KvCache::check_invariants: recounts everything from the live tables and compares.
#include <vector>

#include "kvcache/kv_cache.h"

namespace npr {

Status KvCache::check_invariants() const {
  const int32_t nb = num_blocks();
  std::vector<int32_t> refs(static_cast<size_t>(nb), 0);
  auto fail = [](const std::string& m) { return Status::internal("kv cache invariant: " + m); };
  for (size_t i = 0; i < seqs_.size(); ++i) {
    const Seq& s = seqs_[i];
    const std::string name = "sequence " + std::to_string(i);
    if (!s.live) {
      if (!s.table.empty()) return fail(name + " is dead but holds blocks");
      continue;
    }
    if (static_cast<int64_t>(s.table.size()) != blocks_for(s.length))
      return fail(name + " has " + std::to_string(s.table.size()) + " blocks for " +
                  std::to_string(s.length) + " tokens");
    for (int32_t b : s.table) {
      if (b < 0 || b >= nb)
        return fail(name + " refers to block " + std::to_string(b) + " outside the pool");
      ++refs[b];
    }
    if (!s.frozen && s.length % block_tokens_ != 0 && refcount_[s.table.back()] != 1)
      return fail(name + " appends into a shared partial block " + std::to_string(s.table.back()));
    if (s.frozen) {
      const int64_t full = s.length / block_tokens_;
      for (int32_t c : s.children) {
        if (c < 0 || c >= static_cast<int32_t>(seqs_.size()) || !seqs_[c].live ||
            seqs_[c].parent != static_cast<int32_t>(i))
          return fail(name + " lists child " + std::to_string(c) + " that is not its live child");
        const Seq& k = seqs_[c];
        if (k.length < s.length)
          return fail("child " + std::to_string(c) + " is shorter than its parent");
        for (int64_t j = 0; j < full; ++j)
          if (k.table[j] != s.table[j])
            return fail("child " + std::to_string(c) + " does not share its parent's full blocks");
      }
    } else if (!s.children.empty()) {
      return fail(name + " has children but is not frozen");
    }
    if (s.request < 0 || s.request >= static_cast<int32_t>(requests_.size()) ||
        !requests_[s.request].open)
      return fail(name + " belongs to a closed request");
  }
  std::vector<int32_t> in_free(static_cast<size_t>(nb), 0);
  for (int32_t b : free_) {
    if (b < 0 || b >= nb)
      return fail("free list holds block " + std::to_string(b) + " outside the pool");
    if (++in_free[b] > 1) return fail("block " + std::to_string(b) + " is in the free list twice");
  }
  for (int32_t b = 0; b < nb; ++b) {
    if (refs[b] != refcount_[b])
      return fail("block " + std::to_string(b) + " has refcount " + std::to_string(refcount_[b]) +
                  " but " + std::to_string(refs[b]) + " references");
    if ((refcount_[b] == 0) != (in_free[b] == 1))
      return fail(
          "block " + std::to_string(b) +
          (refcount_[b] == 0 ? " is unreferenced but not free" : " is referenced and free"));
  }
  for (size_t r = 0; r < requests_.size(); ++r)
    if (requests_[r].generated > requests_[r].max_new)
      return fail("request " + std::to_string(r) + " generated past its budget");
  return Status::ok();
}

}  // namespace npr
