// The device sampler (sampler/sampler_cuda.h: one block a row for every case, or the many-block
// kernels of sampler_plain_cuda.h for untruncated params) under the emulator, for
// test_emu_sampler.cpp. Plain types only: compiled into the emulator build (emu_sampler.cpp,
// where namespace npr is npr_emu) and into the test.
#pragma once

#include <cstdint>
#include <string>

namespace emu {

// SamplingParams, SampleRow (without its logits pointer) and SampleResult, field for field.
struct SamplerParams {
  float temperature;
  int32_t top_k;
  float top_p, min_p;
  uint64_t seed;
};
struct SamplerRow {
  int64_t request, branch, index;
  const int32_t* penalty_tokens;
  int32_t penalty_count;
  float repetition_penalty;
};
struct SamplerResult {
  int32_t token;
  float logprob, logprob_sampling;
};

// logits (logit_rows, vocab), host fp32, go to the emulated device; row r samples from logit row
// map[r] (map null: row r). one_block: DeviceSamplerKernel::kOneBlock (else kAuto). Returns ""
// or the error (with its status code's name first, as Status::to_string gives it).
std::string sample_on_device(const float* logits, int64_t logit_rows, int64_t vocab,
                             const SamplerRow* rows, const int32_t* map, int64_t n_rows,
                             const SamplerParams& p, bool one_block, SamplerResult* out);

}  // namespace emu
