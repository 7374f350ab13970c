// Per-op device time of a sequence of launches on one stream, for profiling an eager decode
// step: begin() records a start event, mark(op) an event after each op, collect() waits for the
// last one and adds each op's elapsed time (between its event and the one before) to a map by
// op name. Events are created once and reused; timing costs a few microseconds per op and is
// meant for a profiling run, not for steps whose speed is being measured.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace npr {

class CudaOpTimer {
 public:
  CudaOpTimer() = default;
  ~CudaOpTimer();
  CudaOpTimer(const CudaOpTimer&) = delete;
  CudaOpTimer& operator=(const CudaOpTimer&) = delete;

  Status begin(void* stream);   // cudaStream_t
  Status mark(const char* op);  // op: a string literal (kept by pointer)
  // Milliseconds per op name added into *ms; also resets for the next begin().
  Status collect(std::map<std::string, double>* ms);

 private:
  Status record();
  std::vector<void*> events_;  // cudaEvent_t
  std::vector<const char*> names_;
  size_t used_ = 0;
  void* stream_ = nullptr;
};

}  // namespace npr
