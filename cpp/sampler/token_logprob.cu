// token_logprobs_cuda: the distinct rows' chunk statistics (chunk_stats.cuh, one block a chunk of
// kPlainSamplerChunk tokens), then one block a query adds its row's chunk sums, rescaled to the
// row's max, in chunk order, and writes log p(token).
#include <cuda_runtime.h>

#include <climits>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "core/block_reduce.cuh"
#include "core/cuda_check.cuh"
#include "core/cuda_launch.cuh"
#include "core/dynamic_shared.cuh"
#include "sampler/chunk_stats.cuh"
#include "sampler/token_logprob_cuda.h"

namespace npr {

namespace {

using plain::ChunkStats;
using plain::kThreads;
using plain::kWarps;

// A query as the kernel takes it: its row's slot among the distinct rows, the row, the token.
struct SlotQuery {
  int32_t slot, row, token;
};

struct QueryOut {
  float logprob;
  int32_t error;  // 0 ok, 1 NaN, 2 +inf, 3 no finite logit
  int32_t at;     // the offending token (errors 1 and 2)
};

// grid (queries), kThreads threads: thread i holds chunks [i per, (i + 1) per) of the query's
// row; the row's max and refusals, then its chunks' sums under that max, added in chunk order.
__global__ void __launch_bounds__(kThreads)
    query_logprob_kernel(QueryOut* out, const ChunkStats* stats, const float* logits,
                         const SlotQuery* queries, int64_t vocab, int64_t chunks) {
  NPR_STATIC_SHARED(float, shf, [kWarps]);
  NPR_STATIC_SHARED(int, shi, [kWarps]);
  NPR_STATIC_SHARED(double, shd, [kWarps]);
  const SlotQuery q = queries[blockIdx.x];
  const ChunkStats* s = stats + static_cast<int64_t>(q.slot) * chunks;
  const float* x = logits + static_cast<int64_t>(q.row) * vocab;
  int64_t c0 = 0, c1 = 0;
  plain::my_chunks(chunks, &c0, &c1);
  const plain::RowExtremes e = plain::row_extremes(s, c0, c1, shf, shi);
  if (e.bad != INT_MAX || !e.finite) {
    if (threadIdx.x == 0)
      out[blockIdx.x] =
          e.bad != INT_MAX ? QueryOut{0.0f, isnan(x[e.bad]) ? 1 : 2, e.bad} : QueryOut{0.0f, 3, 0};
    return;
  }
  double mine = 0.0;
  for (int64_t c = c0; c < c1; ++c) mine += plain::rescaled(s[c].s_raw, s[c].m_raw, e.m_raw);
  const double total = block_all_reduce<kWarps>(
      mine, [](double a, double b) { return a + b; }, shd);
  if (threadIdx.x == 0)
    out[blockIdx.x] = QueryOut{
        static_cast<float>(static_cast<double>(x[q.token]) - (e.m_raw + log(total))), 0, 0};
}

int64_t aligned(int64_t bytes) {
  return (bytes + 255) / 256 * 256;
}

}  // namespace

Status token_logprobs_cuda(CudaContext& ctx, float* out, const float* logits, int64_t rows,
                           int64_t vocab, const TokenQuery* queries, int64_t n) {
  NPR_TRY(check_token_queries(queries, n, rows, vocab));
  if (n == 0) return Status::ok();
  if (!logits) return Status::invalid("token logprob (cuda): no logits on the device");
  // Each distinct row's chunks are read once, however many queries name it (a fork asks for
  // every child's first token on its parent's row).
  std::map<int32_t, int32_t> slot;
  for (int64_t i = 0; i < n; ++i) slot.emplace(queries[i].row, 0);
  const int64_t distinct = static_cast<int64_t>(slot.size());
  const int64_t chunks = (vocab + kPlainSamplerChunk - 1) / kPlainSamplerChunk;
  unsigned grid = 0;  // chunk_kernel's
  NPR_TRY(plain::chunk_grid(distinct, chunks, "token logprob (cuda)", &grid));
  // Staged for one upload: the distinct rows (distinct) then the queries (n).
  const int64_t rows_bytes = aligned(static_cast<int64_t>(sizeof(plain::PlainRow)) * distinct);
  const int64_t q_bytes = aligned(static_cast<int64_t>(sizeof(SlotQuery)) * n);
  std::vector<char> staging(static_cast<size_t>(rows_bytes + q_bytes), 0);
  auto* meta = reinterpret_cast<plain::PlainRow*>(staging.data());
  auto* sq = reinterpret_cast<SlotQuery*>(staging.data() + rows_bytes);
  int32_t next = 0;
  for (auto& [row, s] : slot) {
    s = next;
    meta[next++] = plain::PlainRow{0, 0, 0, 1.0f, row};
  }
  for (int64_t i = 0; i < n; ++i)
    sq[i] = SlotQuery{slot[queries[i].row], queries[i].row, queries[i].token};
  // Scratch: the staged part, the chunk stats (distinct, chunks), the results (n).
  const int64_t stats_bytes = aligned(static_cast<int64_t>(sizeof(ChunkStats)) * distinct * chunks);
  const int64_t out_bytes = static_cast<int64_t>(sizeof(QueryOut)) * n;
  void* scratch = nullptr;
  NPR_TRY(ctx.scratch(CudaContext::kScratchHead, rows_bytes + q_bytes + stats_bytes + out_bytes,
                      &scratch));
  char* base = static_cast<char*>(scratch);
  auto* drows = reinterpret_cast<const plain::PlainRow*>(base);
  auto* dq = reinterpret_cast<const SlotQuery*>(base + rows_bytes);
  auto* dstats = reinterpret_cast<ChunkStats*>(base + rows_bytes + q_bytes);
  auto* dout = reinterpret_cast<QueryOut*>(base + rows_bytes + q_bytes + stats_bytes);
  NPR_TRY(ctx.upload(base, staging.data(), rows_bytes + q_bytes, "token logprob (cuda): queries"));
  cudaStream_t st = static_cast<cudaStream_t>(ctx.stream());
  // No penalty and temperature 1: the kernel never reads a penalty bitmap.
  NPR_LAUNCH(grid, kThreads, 0, st, plain::chunk_kernel<kThreads>)
  (dstats, logits, drows, nullptr, vocab, 0, chunks, 1.0f);
  NPR_TRY(cuda_launch_status("token logprob (cuda): chunk statistics"));
  NPR_LAUNCH(static_cast<unsigned>(n), kThreads, 0, st, query_logprob_kernel)
  (dout, dstats, logits, dq, vocab, chunks);
  NPR_TRY(cuda_launch_status("token logprob (cuda)"));
  std::vector<QueryOut> res(static_cast<size_t>(n));
  NPR_TRY(ctx.download(res.data(), dout, static_cast<int64_t>(sizeof(QueryOut)) * n,
                       "token logprob (cuda): results"));
  for (int64_t i = 0; i < n; ++i) {
    const QueryOut& r = res[i];
    if (r.error)
      return Status::invalid("token logprob (cuda): query " + std::to_string(i) + " (row " +
                             std::to_string(queries[i].row) + ", token " +
                             std::to_string(queries[i].token) + "): the row " +
                             (r.error == 3
                                  ? std::string("has no finite logit (all masked)")
                                  : std::string("has a ") + (r.error == 1 ? "NaN" : "+inf") +
                                        " logit at token " + std::to_string(r.at)));
  }
  for (int64_t i = 0; i < n; ++i) out[i] = res[i].logprob;
  return Status::ok();
}

}  // namespace npr
