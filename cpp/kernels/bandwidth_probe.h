// Memory read bandwidth probe: the GB/s a streaming read of a large array reaches with the
// context's threads (best of several passes), the denominator of bandwidth-bound figures such
// as batch-1 decode tokens/s.
#pragma once

#include <cstdint>

#include "core/cpu_info.h"
#include "core/status.h"

namespace npr {

Status read_bandwidth_gbps(const CpuContext& ctx, int64_t bytes, int passes, double* gbps);

}  // namespace npr
