// Page-locked staging for a CudaContext's small host <-> device copies, in plain C++ (no CUDA
// headers).
//
// Why: an asynchronous copy from pageable memory makes the driver stage the bytes itself (and
// it may wait for the stream first); one to pageable memory runs synchronously through a staging
// buffer too. A decode step makes several such copies on its critical path (its description,
// rope rows, plan; the sampler's rows and results), each a few KB.
//
// Uploads: the source is copied into a ring of kBlocks page-locked blocks and the device copy is
// made from there, so the caller may reuse its source as soon as the call returns, as with a
// pageable copy. When the ring moves on from a block it records an event on the stream after
// that block's copies, and before it fills the block again it waits for that event: a block is
// never rewritten while a copy still reads it. Downloads land in a block of their own, which
// the caller syncs before reading (CudaContext::download does).
//
// Not here: copies larger than a block (they go straight from the caller's memory), copies
// while a stream is being captured into a graph (no caller makes them), thread safety (a
// context is used by one thread at a time, as everywhere else).
#pragma once

#include <cstdint>

#include "core/status.h"

namespace npr {

class HostStaging {
 public:
  static constexpr int kBlocks = 8;
  static constexpr int64_t kBlockBytes = int64_t{256} << 10;  // the largest copy staged

  HostStaging() = default;
  HostStaging(const HostStaging&) = delete;
  HostStaging& operator=(const HostStaging&) = delete;
  ~HostStaging();  // the owner has synced the stream

  // *out = a page-locked copy of src's bytes (0 < bytes <= kBlockBytes) for a copy the caller
  // enqueues on `stream` (a cudaStream_t) before its next call here; null (and ok) when no
  // page-locked memory could be had: the caller then copies from src.
  Status stage(void* stream, const void* src, int64_t bytes, const void** out);
  // *out = page-locked room for a download of bytes (<= kBlockBytes), read after a sync; null
  // (and ok) as above.
  Status landing(int64_t bytes, void** out);
  // Blocks moved on from so far (each recorded an event): for tests.
  int64_t turns() const { return turns_; }

 private:
  bool ready();  // the memory and events exist (made on first use); false: none to be had

  unsigned char* mem_ = nullptr;  // (kBlocks + 1, kBlockBytes): the ring, then the landing
  void* done_[kBlocks] = {};      // cudaEvent_t: the stream passed the block's copies
  bool failed_ = false;           // page-locked memory was refused once: stay on pageable copies
  int block_ = 0;
  int64_t used_ = 0;   // bytes of the current block handed out
  int64_t turns_ = 0;  // blocks left so far; block_ is turns_ % kBlocks
};

}  // namespace npr
