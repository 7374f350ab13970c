// token_logprobs_cuda: block q reads its query's logits row once for the refusals and the max,
// once more for the sum of exp(x - max) in double, and thread 0 writes the result.
#include <cuda_runtime.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/block_reduce.cuh"
#include "core/cuda_check.cuh"
#include "core/cuda_launch.cuh"
#include "core/dynamic_shared.cuh"
#include "sampler/token_logprob_cuda.h"

namespace npr {

namespace {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;

struct QueryOut {
  float logprob;
  int32_t error;  // 0 ok, 1 NaN, 2 +inf, 3 no finite logit
  int32_t at;     // the offending token (errors 1 and 2)
};

__global__ void __launch_bounds__(kThreads)
    token_logprob_kernel(QueryOut* out, const float* logits, const TokenQuery* queries,
                         int64_t vocab) {
  NPR_STATIC_SHARED(float, shf, [kWarps]);
  NPR_STATIC_SHARED(double, shd, [kWarps]);
  NPR_STATIC_SHARED(int, shi, [kWarps]);
  const TokenQuery q = queries[blockIdx.x];
  const float* x = logits + static_cast<int64_t>(q.row) * vocab;
  float m = -INFINITY;
  int bad = INT32_MAX;  // the first NaN / +inf token
  for (int64_t t = threadIdx.x; t < vocab; t += kThreads) {
    const float v = x[t];
    if ((isnan(v) || v == INFINITY) && bad == INT32_MAX) bad = static_cast<int>(t);
    m = fmaxf(m, v);
  }
  bad = block_all_reduce<kWarps>(
      bad, [](int a, int b) { return a < b ? a : b; }, shi);
  m = block_all_reduce<kWarps>(
      m, [](float a, float b) { return fmaxf(a, b); }, shf);
  if (bad != INT32_MAX || m == -INFINITY) {
    if (threadIdx.x == 0)
      out[blockIdx.x] =
          bad != INT32_MAX ? QueryOut{0.0f, isnan(x[bad]) ? 1 : 2, bad} : QueryOut{0.0f, 3, 0};
    return;
  }
  double sum = 0.0;
  for (int64_t t = threadIdx.x; t < vocab; t += kThreads) sum += exp(static_cast<double>(x[t]) - m);
  sum = block_all_reduce<kWarps>(
      sum, [](double a, double b) { return a + b; }, shd);
  if (threadIdx.x == 0)
    out[blockIdx.x] =
        QueryOut{static_cast<float>(static_cast<double>(x[q.token]) - (m + log(sum))), 0, 0};
}

}  // namespace

Status token_logprobs_cuda(CudaContext& ctx, float* out, const float* logits, int64_t rows,
                           int64_t vocab, const TokenQuery* queries, int64_t n) {
  NPR_TRY(check_token_queries(queries, n, rows, vocab));
  if (n == 0) return Status::ok();
  if (!logits) return Status::invalid("token logprob (cuda): no logits on the device");
  // Scratch: the queries (n) then their results (n).
  const int64_t q_bytes = (static_cast<int64_t>(sizeof(TokenQuery)) * n + 255) / 256 * 256;
  void* scratch = nullptr;
  NPR_TRY(ctx.scratch(CudaContext::kScratchHead,
                      q_bytes + static_cast<int64_t>(sizeof(QueryOut)) * n, &scratch));
  auto* dq = static_cast<TokenQuery*>(scratch);
  auto* dout = reinterpret_cast<QueryOut*>(static_cast<char*>(scratch) + q_bytes);
  NPR_TRY(ctx.upload(dq, queries, static_cast<int64_t>(sizeof(TokenQuery)) * n,
                     "token logprob (cuda): queries"));
  NPR_LAUNCH(static_cast<unsigned>(n), kThreads, 0, static_cast<cudaStream_t>(ctx.stream()),
             token_logprob_kernel)
  (dout, logits, dq, vocab);
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
