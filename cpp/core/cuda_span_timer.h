// Device time of one stretch of work on a stream, read later without adding a wait: begin()
// and end() record two events around the work; settle() (called before the next begin, or
// when stats are read) waits for the end event, which has long passed by then, and adds the
// elapsed milliseconds to a running total. What the decoder uses to tell a step's device time
// (graph replay or eager launches) from its wall time on the host.
#pragma once

#include <cstdint>

#include "core/status.h"

namespace npr {

class CudaSpanTimer {
 public:
  CudaSpanTimer() = default;
  ~CudaSpanTimer();
  CudaSpanTimer(const CudaSpanTimer&) = delete;
  CudaSpanTimer& operator=(const CudaSpanTimer&) = delete;

  Status begin(void* stream);  // cudaStream_t; settles a span still pending first
  Status end(void* stream);
  Status settle();  // adds a pending span to the totals; a no-op when none is pending
  double total_ms() const { return total_ms_; }
  int64_t spans() const { return spans_; }

 private:
  void* begin_ = nullptr;  // cudaEvent_t
  void* end_ = nullptr;
  bool open_ = false, pending_ = false;
  double total_ms_ = 0.0;
  int64_t spans_ = 0;
};

}  // namespace npr
