// The reads of a decode step's results from their JS arguments (NativeKv's logprobs, sample and
// logitsRows): each checks its arguments (a TypeError or RangeError naming the one at fault),
// runs the read where the logits are (step_results.h) and writes its JS outputs. Each returns
// the read's Status and how many rows or tokens it asked for (0: nothing ran, nothing waited).
#pragma once

#include <napi.h>

#include <cstdint>

#include "addon/step_results.h"
#include "core/status.h"

namespace npr::addon {

struct StepRead {
  Status status;
  int64_t asked = 0;
};

// logprobs(logitRows, tokens: Int32Array, out: Float32Array)
StepRead read_logprobs(const Napi::CallbackInfo& info, const StepLogits& l);
// sample(logitRows: Int32Array, rows, params, out)
StepRead read_sample(const Napi::CallbackInfo& info, const StepLogits& l);
// logitsRows(logitRows: Int32Array, out: Float32Array of logitRows.length * vocab)
StepRead read_logits_rows(const Napi::CallbackInfo& info, const StepLogits& l);

}  // namespace npr::addon
