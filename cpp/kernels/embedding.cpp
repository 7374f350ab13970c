#include "kernels/embedding.h"

#include <cstring>

#include "kernels/parallel.h"

namespace npr {

void embedding_forward(const CpuContext& ctx, float* out, const float* table, const int32_t* ids,
                       int64_t tokens, int64_t dim) {
  parallel_rows(ctx, tokens, 64, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t)
      std::memcpy(out + t * dim, table + static_cast<int64_t>(ids[t]) * dim, sizeof(float) * dim);
  });
}

void embedding_backward(const CpuContext& ctx, float* dtable, const float* dout, const int32_t* ids,
                        int64_t tokens, int64_t dim) {
  parallel_rows(ctx, dim, 64, [&](int64_t c0, int64_t c1) {
    for (int64_t t = 0; t < tokens; ++t) {
      float* row = dtable + static_cast<int64_t>(ids[t]) * dim;
      const float* src = dout + t * dim;
      for (int64_t c = c0; c < c1; ++c) row[c] += src[c];
    }
  });
}

}  // namespace npr
