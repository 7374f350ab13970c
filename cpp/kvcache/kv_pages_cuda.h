// The KV pages on a CUDA device: the twin of kv_pages.h. The bookkeeping (KvCache: block tables,
// refcounts, ledger, deterministic block ids) stays on the host and is shared by every backend;
// this store only holds the pages and applies what the bookkeeping decides: the SlotCopy lists
// of fork (partial-tail copies) and join (compaction by left shifts), in list order, on the
// device. Pages have the compute type of the model (fp32 or bf16).
// Shapes: k(l), v(l) (num_blocks + 1, block_tokens, kv_heads, head_dim) of type t per layer. The
// extra block (pad_block()) is never handed out by KvCache: padded rows of a replayed decode graph
// write and read there, so padding never touches a sequence's pages.
// The budget is a number of blocks, or bytes (blocks_for_budget), or a fraction of the device
// memory free now (budget_from_free_fraction). Not here: eviction, offload to host memory.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/cuda_context.h"
#include "core/status.h"
#include "kvcache/kv_cache.h"

namespace npr {

class KvPagesCuda {
 public:
  // kOutOfMemory (naming the bytes asked and free) when the pool does not fit.
  static Status create(CudaContext& ctx, DevDType t, int64_t layers, int32_t num_blocks,
                       int32_t block_tokens, int64_t kv_heads, int64_t head_dim,
                       std::unique_ptr<KvPagesCuda>* out);
  // Device bytes of one block (all layers, K and V).
  static int64_t block_bytes(DevDType t, int64_t layers, int32_t block_tokens, int64_t kv_heads,
                             int64_t head_dim);
  // Blocks that `budget_bytes` buys (the pad block included in the cost); 0 if none.
  static int32_t blocks_for_budget(int64_t budget_bytes, int64_t block_bytes);
  // fraction (0, 1] of the device memory free right now, in bytes.
  static int64_t budget_from_free_fraction(double fraction);

  void* k(int64_t layer) const { return at(layer, 0); }
  void* v(int64_t layer) const { return at(layer, 1); }
  DevDType dtype() const { return t_; }
  int64_t layers() const { return layers_; }
  int32_t block_tokens() const { return block_tokens_; }
  int32_t num_blocks() const { return num_blocks_; }  // usable blocks (KvCache's pool)
  int32_t pad_block() const { return num_blocks_; }
  int64_t kv_heads() const { return kv_heads_; }
  int64_t head_dim() const { return head_dim_; }
  int64_t bytes() const { return pages_.bytes(); }

  // Applies fork/join copies to every layer, K and V, in list order (one launch).
  Status apply(const std::vector<SlotCopy>& copies);
  // Writes the K and V rows of n new tokens of layer `layer`: k, v (n, kv_heads, head_dim) of the
  // pages' type, slots (n) device int32 = block * block_tokens + slot. Enqueued, no sync.
  Status write(int64_t layer, const void* k, const void* v, const int32_t* slots, int64_t n);
  // The reverse: k, v (n, kv_heads, head_dim) <- the rows of those slots. Enqueued, no sync.
  Status read(int64_t layer, void* k, void* v, const int32_t* slots, int64_t n) const;
  // Host fp32 copies of one layer's pages, pad block excluded (tests).
  Status download(int64_t layer, std::vector<float>* k, std::vector<float>* v);

 private:
  KvPagesCuda() = default;
  int64_t slot_elems() const { return kv_heads_ * head_dim_; }
  int64_t plane_elems() const {
    return static_cast<int64_t>(num_blocks_ + 1) * block_tokens_ * slot_elems();
  }
  void* at(int64_t layer, int kv) const {
    return static_cast<char*>(pages_.get()) + (layer * 2 + kv) * plane_elems() * dev_dtype_size(t_);
  }
  CudaContext* ctx_ = nullptr;
  DevDType t_ = DevDType::kF32;
  int64_t layers_ = 0, kv_heads_ = 0, head_dim_ = 0;
  int32_t num_blocks_ = 0, block_tokens_ = 16;
  DeviceBuffer pages_;   // (layers, 2, num_blocks + 1, block_tokens, kv_heads, head_dim) type t
  DeviceBuffer copies_;  // (copies, 5) int32, grown on demand
  std::vector<int32_t> staging_;
};

// Device-to-device copy bandwidth in GB/s (bytes read + bytes written per second), the best of
// `reps` copies of `bytes`: the bound the decode benchmark divides by.
Status device_copy_bandwidth(CudaContext& ctx, int64_t bytes, int reps, double* gbps);

}  // namespace npr
