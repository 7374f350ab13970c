// Paged KV cache bookkeeping: a pool of fixed-size blocks under a hard budget, a block table
// per sequence, fork/join for parallel branches, a token ledger per request, and an invariant
// checker. Host-side only: the pages themselves live in a KvPages store (CPU now, device
// later) that applies the SlotCopy lists these calls return.
//
// Sequences: a block table covers a sequence densely (token i is at table[i / B], slot i % B);
// only the last block may be partial (the CSR page table of FlashInfer: indptr, indices,
// last-block length).
// Fork (parent -> n children): each child shares the parent's full blocks (refcount + 1) and
// gets its own copy of the parent's partial last block, into which it appends. The parent is
// frozen until join.
// Join: the parent's table becomes [its full blocks] + the children's tokens in child order,
// compacted in place: the children's blocks form one chain, the duplicated copies of the
// parent's partial tail (kept once, in the first child) and the slack of every child's last
// block are squeezed out by left shifts along the chain, and the blocks left empty are
// released. Join never needs a free block, so a fork that was admitted can always be joined.
// Determinism: the free list is a stack (the most recently freed block is reused first, warm
// in cache); the same operations give the same block ids.
// Refusals (no free blocks, request budget exhausted) are answered before anything changes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace npr {

// Copy `count` token slots (all layers, K and V) from (src_block, src_slot) to (dst_block,
// dst_slot). Lists are applied in order; a later copy may read what an earlier one wrote.
struct SlotCopy {
  int32_t src_block, src_slot, dst_block, dst_slot, count;
};

enum class KvAnswer { kOk, kNoBlocks, kNoBudget };
const char* kv_answer_name(KvAnswer a);

class KvCache {
 public:
  KvCache(int32_t num_blocks, int32_t block_tokens);

  int32_t block_tokens() const { return block_tokens_; }
  int32_t num_blocks() const { return static_cast<int32_t>(refcount_.size()); }
  int32_t free_blocks() const { return static_cast<int32_t>(free_.size()); }

  // A request owns sequences and a ledger: generated tokens of all its branches together may
  // not exceed max_new_tokens.
  int32_t open_request(int64_t max_new_tokens);
  // Frees every sequence of the request (finished or aborted).
  Status close_request(int32_t request);
  int64_t generated(int32_t request) const;

  Status create_sequence(int32_t request, int32_t* seq);
  // Appends `tokens` slots (allocating blocks as needed); `generated` counts them against the
  // request's ledger (prompt tokens do not). Nothing changes unless the answer is kOk.
  // Returns InvalidArgument for a frozen (forked) or unknown sequence.
  Status append(int32_t seq, int64_t tokens, bool generated, KvAnswer* answer);
  // Can `tokens` more slots be appended (blocks and ledger)?
  KvAnswer can_append(int32_t seq, int64_t tokens, bool generated) const;
  // n children of `parent`; the parent is frozen. copies: the partial-tail copies to apply.
  Status fork(int32_t parent, int32_t n, std::vector<int32_t>* children, KvAnswer* answer,
              std::vector<SlotCopy>* copies);
  // Ends a fork: every child of `parent` must still be live; they are freed and the parent
  // holds the joined, compacted table. copies: the compaction moves to apply.
  Status join(int32_t parent, std::vector<SlotCopy>* copies);
  Status free_sequence(int32_t seq);

  int64_t length(int32_t seq) const;
  const std::vector<int32_t>& table(int32_t seq) const;
  bool is_live(int32_t seq) const;
  // Children of a forked (frozen) sequence, in fork order; empty otherwise.
  const std::vector<int32_t>& children(int32_t seq) const;
  int32_t refcount(int32_t block) const { return refcount_[block]; }

  // Refcounts equal references from live tables, free blocks have refcount 0 and appear once
  // in the free list, tables cover their lengths exactly, frozen parents and children agree.
  Status check_invariants() const;

 private:
  struct Seq {
    bool live = false, frozen = false;
    int32_t request = -1, parent = -1;
    int64_t length = 0;
    std::vector<int32_t> table;
    std::vector<int32_t> children;
  };
  struct Request {
    bool open = false;
    int64_t max_new = 0, generated = 0;
    std::vector<int32_t> seqs;
  };
  Status live_seq(int32_t seq, const char* op) const;
  int32_t take_block();
  int32_t new_seq_id();
  void release_block(int32_t b);
  int64_t blocks_for(int64_t tokens) const { return (tokens + block_tokens_ - 1) / block_tokens_; }

  int32_t block_tokens_;
  std::vector<int32_t> refcount_;  // (num_blocks)
  std::vector<int32_t> free_;      // stack of free block ids (back = next to take)
  std::vector<Seq> seqs_;
  std::vector<Request> requests_;
  std::vector<int32_t> free_seq_ids_, free_request_ids_;  // ids are reused (bounded tables)
};

}  // namespace npr
