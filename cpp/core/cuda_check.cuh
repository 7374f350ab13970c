// Inside .cu files only: CUDA runtime errors become a Status naming the operation.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "core/status.h"

namespace npr {

inline Status cuda_status(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Status::ok();
  // The runtime also leaves a failed call's error as the thread's last error: reported here, it
  // must not come back from the next, unrelated launch's check (a sticky fault does anyway).
  (void)cudaGetLastError();
  return Status(StatusCode::kCuda, std::string(what) + " failed: " + cudaGetErrorName(err) + " (" +
                                       cudaGetErrorString(err) + ")");
}

// The status of the last launch on this thread (launch configuration errors).
inline Status cuda_launch_status(const char* what) {
  return cuda_status(cudaGetLastError(), what);
}

}  // namespace npr

#define NPR_CUDA_TRY(expr, what) NPR_TRY(::npr::cuda_status((expr), (what)))
