// The per-row result the device sampler kernels write (sampler.cu's one-block kernel and
// sampler_plain.cu's many-block one) and its reading on the host, with their shared refusals.
#pragma once

#include <cstdint>

#include "core/cuda_context.h"
#include "core/status.h"
#include "sampler/sampler.h"

namespace npr {

struct DeviceSampleOut {
  int32_t token, error;  // error: 0 ok, 1 a NaN or +inf logit, 2 no finite logit
  float logprob, logprob_sampling;
};

// Downloads n results from the device and returns them as results (n), or the first refusal.
Status read_device_samples(CudaContext& ctx, const DeviceSampleOut* device, int64_t n,
                           SampleResult* results);

}  // namespace npr
