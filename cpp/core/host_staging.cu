// HostStaging (see host_staging.h).
#include <cuda_runtime.h>

#include <cstring>

#include "core/cuda_check.cuh"
#include "core/host_staging.h"

namespace npr {

HostStaging::~HostStaging() {
  for (void*& e : done_)
    if (e) cudaEventDestroy(static_cast<cudaEvent_t>(e));
  if (mem_) cudaFreeHost(mem_);
}

bool HostStaging::ready() {
  if (mem_) return true;
  if (failed_) return false;
  void* m = nullptr;
  if (cudaHostAlloc(&m, static_cast<size_t>((kBlocks + 1) * kBlockBytes), cudaHostAllocDefault) !=
      cudaSuccess) {
    cudaGetLastError();  // not sticky: the copies go on from pageable memory
    failed_ = true;
    return false;
  }
  for (void*& e : done_) {
    cudaEvent_t ev = nullptr;
    if (cudaEventCreateWithFlags(&ev, cudaEventDisableTiming) != cudaSuccess) {
      cudaGetLastError();
      for (void*& made : done_) {
        if (made) cudaEventDestroy(static_cast<cudaEvent_t>(made));
        made = nullptr;
      }
      cudaFreeHost(m);
      failed_ = true;
      return false;
    }
    e = ev;
  }
  mem_ = static_cast<unsigned char*>(m);
  return true;
}

Status HostStaging::stage(void* stream, const void* src, int64_t bytes, const void** out) {
  *out = nullptr;
  if (bytes <= 0 || bytes > kBlockBytes || !ready()) return Status::ok();
  if (used_ + bytes > kBlockBytes) {  // on to the next block, once the stream is past its copies
    NPR_CUDA_TRY(
        cudaEventRecord(static_cast<cudaEvent_t>(done_[block_]), static_cast<cudaStream_t>(stream)),
        "host staging: marking a block's copies");
    ++turns_;
    block_ = (block_ + 1) % kBlocks;
    used_ = 0;
    if (turns_ >= kBlocks)  // the ring has been round: this block's event is recorded
      NPR_CUDA_TRY(cudaEventSynchronize(static_cast<cudaEvent_t>(done_[block_])),
                   "host staging: waiting for a block's copies");
  }
  unsigned char* at = mem_ + block_ * kBlockBytes + used_;
  std::memcpy(at, src, static_cast<size_t>(bytes));
  used_ += (bytes + 15) / 16 * 16;
  *out = at;
  return Status::ok();
}

Status HostStaging::landing(int64_t bytes, void** out) {
  *out = nullptr;
  if (bytes <= 0 || bytes > kBlockBytes || !ready()) return Status::ok();
  *out = mem_ + kBlocks * kBlockBytes;
  return Status::ok();
}

}  // namespace npr
