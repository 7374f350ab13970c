#include "kvcache/kv_pages.h"

#include <cstring>
#include <string>

namespace npr {

Status KvPages::create(int64_t layers, int32_t num_blocks, int32_t block_tokens, int64_t kv_heads,
                       int64_t head_dim, KvPages* out) {
  if (layers <= 0 || num_blocks <= 0 || block_tokens <= 0 || kv_heads <= 0 || head_dim <= 0)
    return Status::invalid("kv pages: every dimension must be positive");
  out->layers_ = layers;
  out->num_blocks_ = num_blocks;
  out->block_tokens_ = block_tokens;
  out->kv_heads_ = kv_heads;
  out->head_dim_ = head_dim;
  const int64_t n = layers * out->layer_stride();
  try {
    out->k_.assign(static_cast<size_t>(n), 0.0f);
    out->v_.assign(static_cast<size_t>(n), 0.0f);
  } catch (const std::bad_alloc&) {
    return Status::oom("kv pages: could not allocate " + std::to_string(2 * n * 4) + " bytes");
  }
  return Status::ok();
}

void KvPages::apply(const std::vector<SlotCopy>& copies) {
  const int64_t sf = slot_floats();
  for (int64_t l = 0; l < layers_; ++l) {
    for (float* base : {k(l), v(l)}) {
      for (const SlotCopy& c : copies) {
        float* dst = base + (static_cast<int64_t>(c.dst_block) * block_tokens_ + c.dst_slot) * sf;
        const float* src =
            base + (static_cast<int64_t>(c.src_block) * block_tokens_ + c.src_slot) * sf;
        std::memmove(dst, src, sizeof(float) * sf * c.count);  // left shifts may overlap
      }
    }
  }
}

}  // namespace npr
