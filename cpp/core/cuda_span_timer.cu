#include <cuda_runtime.h>

#include "core/cuda_check.cuh"
#include "core/cuda_span_timer.h"

namespace npr {

CudaSpanTimer::~CudaSpanTimer() {
  if (begin_) cudaEventDestroy(static_cast<cudaEvent_t>(begin_));
  if (end_) cudaEventDestroy(static_cast<cudaEvent_t>(end_));
}

Status CudaSpanTimer::begin(void* stream) {
  NPR_TRY(settle());
  if (!begin_) {
    cudaEvent_t b = nullptr, e = nullptr;
    NPR_CUDA_TRY(cudaEventCreate(&b), "span timer: create event");
    begin_ = b;
    NPR_CUDA_TRY(cudaEventCreate(&e), "span timer: create event");
    end_ = e;
  }
  NPR_CUDA_TRY(cudaEventRecord(static_cast<cudaEvent_t>(begin_), static_cast<cudaStream_t>(stream)),
               "span timer: record begin");
  open_ = true;
  return Status::ok();
}

Status CudaSpanTimer::end(void* stream) {
  if (!open_) return Status::internal("span timer: end() without begin()");
  NPR_CUDA_TRY(cudaEventRecord(static_cast<cudaEvent_t>(end_), static_cast<cudaStream_t>(stream)),
               "span timer: record end");
  open_ = false;
  pending_ = true;
  return Status::ok();
}

Status CudaSpanTimer::settle() {
  if (!pending_) return Status::ok();
  pending_ = false;
  NPR_CUDA_TRY(cudaEventSynchronize(static_cast<cudaEvent_t>(end_)), "span timer: wait");
  float ms = 0.0f;
  NPR_CUDA_TRY(
      cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(begin_), static_cast<cudaEvent_t>(end_)),
      "span timer: elapsed time");
  total_ms_ += ms;
  ++spans_;
  return Status::ok();
}

}  // namespace npr
