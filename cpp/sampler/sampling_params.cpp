// check_sampling_params (sampler.h): the params' contract, shared by the CPU sampler and the
// device one (sampler_cuda.h), which must refuse alike.
#include <cmath>

#include "sampler/sampler.h"

namespace npr {

Status check_sampling_params(const SamplingParams& p) {
  if (!(p.temperature >= 0.0f) || !std::isfinite(p.temperature))
    return Status::out_of_range("sampling: temperature must be >= 0 (0 = greedy)");
  if (p.top_k < 0) return Status::out_of_range("sampling: top_k must be >= 0 (0 = off)");
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f))
    return Status::out_of_range("sampling: top_p must be in (0, 1]");
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f))
    return Status::out_of_range("sampling: min_p must be in [0, 1]");
  return Status::ok();
}

}  // namespace npr
