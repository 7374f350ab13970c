#include "kvcache/kv_cache.h"

#include <algorithm>

namespace npr {

const char* kv_answer_name(KvAnswer a) {
  switch (a) {
    case KvAnswer::kOk: return "ok";
    case KvAnswer::kNoBlocks: return "no free blocks";
    case KvAnswer::kNoBudget: return "token budget exhausted";
  }
  return "unknown";
}

KvCache::KvCache(int32_t num_blocks, int32_t block_tokens)
    : block_tokens_(std::max(1, block_tokens)), refcount_(std::max(0, num_blocks), 0) {
  for (int32_t b = num_blocks - 1; b >= 0; --b) free_.push_back(b);  // block 0 is taken first
}

int32_t KvCache::new_seq_id() {
  if (!free_seq_ids_.empty()) {
    const int32_t id = free_seq_ids_.back();
    free_seq_ids_.pop_back();
    return id;
  }
  seqs_.emplace_back();
  return static_cast<int32_t>(seqs_.size()) - 1;
}

int32_t KvCache::take_block() {
  const int32_t b = free_.back();
  free_.pop_back();
  refcount_[b] = 1;
  return b;
}

void KvCache::release_block(int32_t b) {
  if (--refcount_[b] == 0) free_.push_back(b);
}

int32_t KvCache::open_request(int64_t max_new_tokens) {
  Request r;
  r.open = true;
  r.max_new = std::max<int64_t>(0, max_new_tokens);
  if (!free_request_ids_.empty()) {
    const int32_t id = free_request_ids_.back();
    free_request_ids_.pop_back();
    requests_[id] = r;
    return id;
  }
  requests_.push_back(r);
  return static_cast<int32_t>(requests_.size()) - 1;
}

int64_t KvCache::generated(int32_t request) const {
  return request >= 0 && request < static_cast<int32_t>(requests_.size())
             ? requests_[request].generated
             : 0;
}

Status KvCache::live_seq(int32_t seq, const char* op) const {
  if (seq < 0 || seq >= static_cast<int32_t>(seqs_.size()) || !seqs_[seq].live)
    return Status::invalid(std::string("kv cache ") + op + ": sequence " + std::to_string(seq) +
                           " is not live");
  return Status::ok();
}

bool KvCache::is_live(int32_t seq) const {
  return seq >= 0 && seq < static_cast<int32_t>(seqs_.size()) && seqs_[seq].live;
}
int64_t KvCache::length(int32_t seq) const {
  return is_live(seq) ? seqs_[seq].length : 0;
}
const std::vector<int32_t>& KvCache::children(int32_t seq) const {
  static const std::vector<int32_t> empty;
  return is_live(seq) ? seqs_[seq].children : empty;
}
const std::vector<int32_t>& KvCache::table(int32_t seq) const {
  static const std::vector<int32_t> empty;
  return is_live(seq) ? seqs_[seq].table : empty;
}

Status KvCache::create_sequence(int32_t request, int32_t* seq) {
  if (request < 0 || request >= static_cast<int32_t>(requests_.size()) || !requests_[request].open)
    return Status::invalid("kv cache: request " + std::to_string(request) + " is not open");
  Seq s;
  s.live = true;
  s.request = request;
  *seq = new_seq_id();
  seqs_[*seq] = std::move(s);
  requests_[request].seqs.push_back(*seq);
  return Status::ok();
}

KvAnswer KvCache::can_append(int32_t seq, int64_t tokens, bool generated) const {
  const Seq& s = seqs_[seq];
  const Request& r = requests_[s.request];
  if (generated && r.generated + tokens > r.max_new) return KvAnswer::kNoBudget;
  const int64_t need = blocks_for(s.length + tokens) - static_cast<int64_t>(s.table.size());
  return need > static_cast<int64_t>(free_.size()) ? KvAnswer::kNoBlocks : KvAnswer::kOk;
}

Status KvCache::append(int32_t seq, int64_t tokens, bool generated, KvAnswer* answer) {
  NPR_TRY(live_seq(seq, "append"));
  if (seqs_[seq].frozen)
    return Status::invalid("kv cache append: sequence " + std::to_string(seq) +
                           " is forked (frozen until join)");
  if (tokens < 0) return Status::out_of_range("kv cache append: token count must be >= 0");
  *answer = can_append(seq, tokens, generated);
  if (*answer != KvAnswer::kOk) return Status::ok();
  Seq& s = seqs_[seq];
  const int64_t need = blocks_for(s.length + tokens) - static_cast<int64_t>(s.table.size());
  for (int64_t i = 0; i < need; ++i) s.table.push_back(take_block());
  s.length += tokens;
  if (generated) requests_[s.request].generated += tokens;
  return Status::ok();
}

Status KvCache::fork(int32_t parent, int32_t n, std::vector<int32_t>* children, KvAnswer* answer,
                     std::vector<SlotCopy>* copies) {
  NPR_TRY(live_seq(parent, "fork"));
  if (seqs_[parent].frozen)
    return Status::invalid("kv cache fork: sequence " + std::to_string(parent) +
                           " is already forked");
  if (n < 1 || n > 1024) return Status::out_of_range("kv cache fork: need 1..1024 children");
  const int64_t full = seqs_[parent].length / block_tokens_;
  const int32_t tail = static_cast<int32_t>(seqs_[parent].length % block_tokens_);
  if (tail > 0 && n > static_cast<int32_t>(free_.size())) {
    *answer = KvAnswer::kNoBlocks;
    return Status::ok();
  }
  *answer = KvAnswer::kOk;
  children->clear();
  for (int32_t c = 0; c < n; ++c) {
    Seq child;
    child.live = true;
    child.request = seqs_[parent].request;
    child.parent = parent;
    child.length = seqs_[parent].length;
    for (int64_t i = 0; i < full; ++i) {
      const int32_t b = seqs_[parent].table[i];
      ++refcount_[b];
      child.table.push_back(b);
    }
    if (tail > 0) {
      const int32_t b = take_block();
      copies->push_back({seqs_[parent].table[full], 0, b, 0, tail});
      child.table.push_back(b);
    }
    const int32_t id = new_seq_id();
    seqs_[id] = std::move(child);
    children->push_back(id);
    requests_[seqs_[id].request].seqs.push_back(id);
  }
  seqs_[parent].frozen = true;
  seqs_[parent].children = *children;
  return Status::ok();
}

Status KvCache::join(int32_t parent, std::vector<SlotCopy>* copies) {
  NPR_TRY(live_seq(parent, "join"));
  Seq& p = seqs_[parent];
  if (!p.frozen)
    return Status::invalid("kv cache join: sequence " + std::to_string(parent) + " has not forked");
  for (int32_t c : p.children)
    if (!is_live(c) || seqs_[c].frozen)
      return Status::invalid("kv cache join: child " + std::to_string(c) +
                             " is not live or has forked itself");
  if (p.children.empty()) {  // every branch was aborted: the parent resumes as it was
    p.frozen = false;
    return Status::ok();
  }
  const int32_t B = block_tokens_;
  const int64_t P = p.length, full = P / B, tail = P % B;
  // The chain: every child's own blocks, in child order; chain slot q is chain[q / B], q % B.
  std::vector<int32_t> chain;
  std::vector<int64_t> chain_start;  // chain slot where each child's own blocks begin
  for (int32_t c : p.children) {
    chain_start.push_back(static_cast<int64_t>(chain.size()) * B);
    const std::vector<int32_t>& t = seqs_[c].table;
    chain.insert(chain.end(), t.begin() + full, t.end());
  }
  // Destination stream: the parent's tail (kept from the first child's copy), then each child's
  // own tokens. Every token moves to the same or an earlier chain slot: copying in increasing
  // order never overwrites a slot that is still to be read.
  int64_t dst = tail;
  for (size_t ci = 0; ci < p.children.size(); ++ci) {
    const int64_t own = seqs_[p.children[ci]].length - P;
    int64_t src = chain_start[ci] + tail;  // skip the duplicated tail in the child's first block
    int64_t left = own;
    while (left > 0) {
      const int64_t run = std::min({left, B - src % B, B - dst % B});
      if (src != dst)
        copies->push_back({chain[src / B], static_cast<int32_t>(src % B), chain[dst / B],
                           static_cast<int32_t>(dst % B), static_cast<int32_t>(run)});
      src += run;
      dst += run;
      left -= run;
    }
  }
  const int64_t keep = blocks_for(dst);
  // Children give up their references; the chain blocks past `keep` become free.
  for (int32_t c : p.children) {
    Seq& s = seqs_[c];
    for (int64_t i = 0; i < full; ++i) release_block(s.table[i]);
    s.live = false;
    s.table.clear();
    free_seq_ids_.push_back(c);
  }
  for (size_t i = static_cast<size_t>(keep); i < chain.size(); ++i) release_block(chain[i]);
  if (tail > 0) release_block(p.table[full]);  // the parent's own tail: the chain holds its copy
  p.table.resize(static_cast<size_t>(full));
  p.table.insert(p.table.end(), chain.begin(), chain.begin() + keep);
  p.length = full * B + dst;
  p.frozen = false;
  p.children.clear();
  return Status::ok();
}

Status KvCache::free_sequence(int32_t seq) {
  NPR_TRY(live_seq(seq, "free"));
  std::vector<int32_t> kids = seqs_[seq].children;
  for (int32_t c : kids)
    if (is_live(c)) NPR_TRY(free_sequence(c));
  Seq& s = seqs_[seq];
  for (int32_t b : s.table) release_block(b);
  s.table.clear();
  s.live = false;
  s.frozen = false;
  s.children.clear();
  free_seq_ids_.push_back(seq);
  if (s.parent >= 0 && is_live(s.parent)) {  // an aborted branch leaves its parent's fork
    std::vector<int32_t>& siblings = seqs_[s.parent].children;
    siblings.erase(std::remove(siblings.begin(), siblings.end(), seq), siblings.end());
  }
  return Status::ok();
}

Status KvCache::close_request(int32_t request) {
  if (request < 0 || request >= static_cast<int32_t>(requests_.size()) || !requests_[request].open)
    return Status::invalid("kv cache: request " + std::to_string(request) + " is not open");
  // Ids are reused: only sequences still owned by this request; children go with their parent.
  for (int32_t s : requests_[request].seqs)
    if (is_live(s) && seqs_[s].request == request &&
        (seqs_[s].parent < 0 || !is_live(seqs_[s].parent)))
      NPR_TRY(free_sequence(s));
  requests_[request].open = false;
  requests_[request].seqs.clear();
  free_request_ids_.push_back(request);
  return Status::ok();
}

}  // namespace npr
