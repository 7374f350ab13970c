// The rows, parameters and outputs of a sampling call as JavaScript passes them, shared by
// sample() (sampler_binding.cpp) and NativeKv.sample() (kv_binding.cpp):
//   rows: { request, branch, index: Int32Array (R), penaltyOffsets?: Int32Array (R + 1),
//           penaltyTokens?: Int32Array, repetitionPenalty?: Float32Array (R) }
//   params: { temperature? = 1, topK? = 0, topP? = 1, minP? = 0, seed? = 0 }
//   out: { tokens: Int32Array (R), logprob: Float32Array (R), logprobSampling: Float32Array (R) }
// Parsed synchronously: the rows point into the caller's arrays, valid during the call only.
#pragma once

#include <napi.h>

#include <vector>

#include "sampler/sampler.h"

namespace npr::addon {

struct SampleArgs {
  std::vector<SampleRow> rows;  // (R) logits pointers left null for the caller to set
  SamplingParams params;
  Napi::Int32Array tokens;
  Napi::Float32Array logprob, logprob_sampling;
};

// Throws a TypeError / RangeError naming the bad field.
SampleArgs parse_sample_args(const char* fn, const Napi::Object& rows, const Napi::Object& params,
                             const Napi::Object& out);
void write_sample_results(SampleArgs& a, const std::vector<SampleResult>& results);

}  // namespace npr::addon
