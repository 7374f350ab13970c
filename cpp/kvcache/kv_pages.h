// The KV pages on the CPU: for every layer, K and V of every block slot.
// Shapes: k, v (layers, num_blocks, block_tokens, kv_heads, head_dim), f32.
// Applies the SlotCopy lists of KvCache (fork tail copies, join compaction) to all layers.
#pragma once

#include <cstdint>
#include <vector>

#include "core/huge_pages.h"
#include "core/status.h"
#include "kvcache/kv_cache.h"

namespace npr {

class KvPages {
 public:
  static Status create(int64_t layers, int32_t num_blocks, int32_t block_tokens, int64_t kv_heads,
                       int64_t head_dim, KvPages* out);
  float* k(int64_t layer) { return k_.data() + layer * layer_stride(); }
  float* v(int64_t layer) { return v_.data() + layer * layer_stride(); }
  int32_t block_tokens() const { return block_tokens_; }
  int32_t num_blocks() const { return num_blocks_; }
  int64_t kv_heads() const { return kv_heads_; }
  int64_t head_dim() const { return head_dim_; }
  int64_t bytes() const { return static_cast<int64_t>((k_.size() + v_.size()) * sizeof(float)); }
  void apply(const std::vector<SlotCopy>& copies);

 private:
  int64_t slot_floats() const { return kv_heads_ * head_dim_; }
  int64_t layer_stride() const {
    return static_cast<int64_t>(num_blocks_) * block_tokens_ * slot_floats();
  }
  int64_t layers_ = 0, kv_heads_ = 0, head_dim_ = 0;
  int32_t num_blocks_ = 0, block_tokens_ = 16;
  HugeFloats k_, v_;
};

}  // namespace npr
