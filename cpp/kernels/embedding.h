// Token embedding: out[t] = table[ids[t]]; backward accumulates dtable[ids[t]] += dout[t].
// ids are checked by the caller (the model validates every id against the vocabulary once).
#pragma once

#include <cstdint>

#include "core/cpu_info.h"

namespace npr {

// out (tokens, dim) <- table (vocab, dim), ids (tokens).
void embedding_forward(const CpuContext& ctx, float* out, const float* table, const int32_t* ids,
                       int64_t tokens, int64_t dim);
// dtable (vocab, dim) += scatter of dout (tokens, dim). Threads split the hidden dimension, so
// every row is summed in token order whatever the thread count (deterministic).
void embedding_backward(const CpuContext& ctx, float* dtable, const float* dout, const int32_t* ids,
                        int64_t tokens, int64_t dim);

}  // namespace npr
