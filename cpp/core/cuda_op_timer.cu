// CudaOpTimer (see cuda_op_timer.h): a growing pool of cudaEvents recorded in order.
#include <cuda_runtime.h>

#include "core/cuda_check.cuh"
#include "core/cuda_op_timer.h"

namespace npr {

CudaOpTimer::~CudaOpTimer() {
  for (void* e : events_) cudaEventDestroy(static_cast<cudaEvent_t>(e));
}

Status CudaOpTimer::record() {
  if (used_ == events_.size()) {
    cudaEvent_t e = nullptr;
    NPR_CUDA_TRY(cudaEventCreate(&e), "op timer: create event");
    events_.push_back(e);
  }
  NPR_CUDA_TRY(
      cudaEventRecord(static_cast<cudaEvent_t>(events_[used_]), static_cast<cudaStream_t>(stream_)),
      "op timer: record event");
  ++used_;
  return Status::ok();
}

Status CudaOpTimer::begin(void* stream) {
  stream_ = stream;
  used_ = 0;
  names_.clear();
  return record();
}

Status CudaOpTimer::mark(const char* op) {
  if (used_ == 0) return Status::internal("op timer: mark() before begin()");
  names_.push_back(op);
  return record();
}

Status CudaOpTimer::collect(std::map<std::string, double>* ms) {
  if (used_ == 0) return Status::ok();
  NPR_CUDA_TRY(cudaEventSynchronize(static_cast<cudaEvent_t>(events_[used_ - 1])),
               "op timer: wait for the last event");
  for (size_t i = 0; i < names_.size(); ++i) {
    float t = 0.0f;
    NPR_CUDA_TRY(cudaEventElapsedTime(&t, static_cast<cudaEvent_t>(events_[i]),
                                      static_cast<cudaEvent_t>(events_[i + 1])),
                 "op timer: elapsed time");
    (*ms)[names_[i]] += t;
  }
  used_ = 0;
  names_.clear();
  return Status::ok();
}

}  // namespace npr
