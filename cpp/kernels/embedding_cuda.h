// Embedding and every other "scatter rows with repeats" on the device, deterministically.
//
// Forward gathers table rows (type t) into the fp32 residual stream. Backward, and the head's
// return of scored rows to their prev positions, are index-adds where several sources may hit
// one destination row: an IndexAddPlan built on the host (a stable sort of sources by
// destination: CSR of destination -> its sources in source order) makes each destination row a
// fixed-order sum by one thread block. No atomics: same inputs, same bits.
#pragma once

#include <cstdint>
#include <vector>

#include "core/cuda_context.h"
#include "core/status.h"

namespace npr {

// Host side: for index[i] (n sources) in [0, rows): destinations that occur, in ascending
// order, and the sources of each in ascending source order.
struct IndexAddPlan {
  std::vector<int32_t> dest;  // (groups) destination rows
  std::vector<int32_t> ptr;   // (groups + 1) CSR into src
  std::vector<int32_t> src;   // (n) source indices grouped by destination
};
IndexAddPlan index_add_plan(const int32_t* index, int64_t n);

// The plan on the device.
struct DeviceIndexAddPlan {
  Status upload(CudaContext& ctx, const IndexAddPlan& plan);
  DeviceBuffer dest, ptr, src;  // int32
  int64_t groups = 0, n = 0;
};

// out (tokens, dim) fp32 <- table (vocab, dim) type t at ids (tokens) int32, device pointers.
Status embedding_forward_cuda(CudaContext& ctx, DevDType t, float* out, const void* table,
                              const int32_t* ids, int64_t tokens, int64_t dim);
// dst[plan.dest[g]] += sum over the group's sources i of src[i]   (rows of dim, fp32).
// Embedding backward: dst = dtable, src = d residual (tokens, dim), plan from ids.
Status index_add_rows_cuda(CudaContext& ctx, float* dst, const float* src,
                           const DeviceIndexAddPlan& plan, int64_t dim);

}  // namespace npr
