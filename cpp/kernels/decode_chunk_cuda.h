// The attention among a multi-token decode step's own new tokens (each sequence's chunk, plain
// causal), run by the fused parallel attention of the training forward over their contiguous
// q, k, v, and handed to the paged decode attention as one more partial softmax state a query
// row (DecodeWork::chunk_rows, with_chunk_rows): the paged plan then covers only the keys from
// before the step (a prompt's earlier chunks, a branch's prefix), read once per group of rows,
// and its merge folds the chunk's state in last, in key order, by log-sum-exp. A normalised
// output o with log-sum-exp z is the state (m = z, l = 1, acc = o): sum exp(s - z) = 1 and
// sum exp(s - z) v = o.
#pragma once

#include <cstdint>

#include "core/cuda_context.h"
#include "core/status.h"
#include "kernels/decode_attention_cuda.h"

namespace npr {

// The plan's partial rows chunk_rows + q (q < queries) <- (lse, 1, out) of query row q. out
// (queries, heads, head_dim) type t, normalised; lse (queries, heads) fp32, natural log. An
// invalid-argument error if the plan has no chunk rows or the heads / head_dim are not its.
Status decode_chunk_partials_cuda(CudaContext& ctx, DevDType t, const DeviceDecodePlan& plan,
                                  const void* out, const float* lse, int64_t heads,
                                  int64_t head_dim);

}  // namespace npr
