// One incremental step of the Qwen3 model over paged KV: each sequence brings one or more new
// tokens (a prefill chunk or a single decode token) at explicit positions; their K and V are
// written into the pages and attention reads every earlier token of the sequence through its
// page table. Returns the next-token logits after each sequence's last new token, for the
// sampler. With `cascade`, decode steps (one new token per sequence) read the pages shared by
// a fork's branches once for all of them, and a sequence's several new tokens read the pages
// wholly before each chunk of 64 of them once for the chunk (see decode_attention.h).
// The KV cache must already cover the new tokens (KvCache::append before the call), and the
// page table must be read off it after that append.
// Not here: the fused block-sparse prefill attention over contiguous K/V (a chunk's causal part
// runs per token here), sampling (sampler.h), scheduling (the engine).
#pragma once

#include <cstdint>

#include "core/cpu_info.h"
#include "core/status.h"
#include "kernels/decode_attention.h"
#include "kvcache/kv_pages.h"
#include "model/qwen3_model.h"

namespace npr {

struct Qwen3DecodeBatch {
  int64_t sequences = 0;
  const int32_t* cu_new = nullptr;     // (sequences + 1) offsets of each sequence's new tokens
  const int32_t* ids = nullptr;        // (cu_new[sequences]) new token ids
  const int32_t* positions = nullptr;  // (cu_new[sequences]) their position ids
  PageTable table;                     // each sequence's pages, new tokens included
};

// logits (sequences, vocab).
Status qwen3_decode_step(const CpuContext& ctx, Qwen3Model& model, KvPages& pages,
                         const Qwen3DecodeBatch& b, bool cascade, float* logits);

}  // namespace npr
