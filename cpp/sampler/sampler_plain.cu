// sample_rows_plain_cuda: two launches, over (chunks, rows) blocks then rows; see
// sampler_plain_cuda.h.
#include <cuda_runtime.h>

#include <climits>
#include <cmath>
#include <string>
#include <vector>

#include "core/block_reduce.cuh"
#include "core/cuda_check.cuh"
#include "core/cuda_launch.cuh"
#include "core/dynamic_shared.cuh"
#include "sampler/chunk_stats.cuh"
#include "sampler/counter_rng.h"
#include "sampler/device_sample_out.h"
#include "sampler/sampler_plain_cuda.h"

namespace npr {

namespace {

using plain::ChunkStats;
using plain::kPerThread;
using plain::kThreads;
using plain::kWarps;
using plain::PlainRow;

// grid (rows): the draw. Thread i holds chunks [i per, (i + 1) per) of the row, in order: the
// row's maxima and flags, then the chunks' sums rescaled to the row's maxima and summed in
// chunk order (a block scan), the chunk where the cumulative mass passes u x total (the last
// one absorbs rounding), then inside it kPerThread tokens a thread in id order, scanned the same
// way, and the thread holding the crossing walks its tokens.
__global__ void __launch_bounds__(kThreads)
    pick_kernel(DeviceSampleOut* out, const ChunkStats* stats, const float* logits,
                const PlainRow* rows, const uint32_t* bitmap, int64_t vocab, int64_t words,
                int64_t chunks, float temperature, uint64_t seed) {
  NPR_STATIC_SHARED(float, shf, [kWarps]);
  NPR_STATIC_SHARED(int, shi, [kWarps]);
  NPR_STATIC_SHARED(double, shd, [kWarps]);
  NPR_STATIC_SHARED(int64_t, shl, [kWarps]);
  NPR_STATIC_SHARED(double, sh_before, [1]);
  const int64_t r = blockIdx.x;
  const int tid = threadIdx.x;
  const ChunkStats* s = stats + r * chunks;
  int64_t c0 = 0, c1 = 0;
  plain::my_chunks(chunks, &c0, &c1);
  const plain::RowExtremes e = plain::row_extremes(s, c0, c1, shf, shi);
  const float m_raw = e.m_raw, zm = e.zm;
  if (e.bad != INT_MAX || !e.finite) {
    if (tid == 0) out[r] = DeviceSampleOut{-1, e.bad != INT_MAX ? 1 : 2, 0.0f, 0.0f};
    return;
  }
  double mine_raw = 0.0, mine = 0.0;
  for (int64_t c = c0; c < c1; ++c) {
    mine_raw += plain::rescaled(s[c].s_raw, s[c].m_raw, m_raw);
    mine += plain::rescaled(s[c].s_z, s[c].zm, zm);
  }
  const double total_raw = block_all_reduce<kWarps>(
      mine_raw, [](double a, double b) { return a + b; }, shd);
  const BlockSum<double> chunk_sums = block_exclusive_sum<kWarps>(mine, shd);
  const double total = chunk_sums.total;
  const PlainRow M = rows[r];
  const double target = counter_uniform(seed, M.request, M.branch, M.index) * total;
  // The first chunk whose cumulative mass passes target; the last chunk stands for the crossing
  // when none does (rounding at the top end). Its owner stops there with the mass before it.
  int64_t cs = INT64_MAX;
  double acc = chunk_sums.before;
  for (int64_t c = c0; c < c1; ++c) {
    const double w = plain::rescaled(s[c].s_z, s[c].zm, zm);
    if (acc + w > target || c + 1 == chunks) {
      cs = c;
      break;
    }
    acc += w;
  }
  cs = block_all_reduce<kWarps>(
      cs, [](int64_t a, int64_t b) { return a < b ? a : b; }, shl);
  if (c0 <= cs && cs < c1) sh_before[0] = acc;
  __syncthreads();
  const double before = sh_before[0];
  const float* x = logits + static_cast<int64_t>(M.logit_row) * vocab;
  const uint32_t* bits = bitmap + r * words;
  const int64_t t0 = cs * kPlainSamplerChunk + int64_t{tid} * kPerThread;
  // The chunk's last token (the row's, in the last chunk) absorbs rounding, as above.
  const int64_t last = min(vocab, (cs + 1) * kPlainSamplerChunk) - 1;
  const int64_t t1 = min(last + 1, t0 + kPerThread);
  auto mass = [&](int64_t t) {
    return exp(static_cast<double>(plain::processed(x[t], t, bits, M.penalty, temperature)) - zm);
  };
  double local = 0.0;
  for (int64_t t = t0; t < t1; ++t) local += mass(t);
  double at = before + block_exclusive_sum<kWarps>(local, shd).before;
  int64_t pick = INT64_MAX;
  for (int64_t t = t0; t < t1; ++t) {
    at += mass(t);
    if (at > target || t == last) {
      pick = t;
      break;
    }
  }
  pick = block_all_reduce<kWarps>(
      pick, [](int64_t a, int64_t b) { return a < b ? a : b; }, shl);
  if (tid == 0) {
    const double lse = m_raw + log(total_raw);
    out[r] = DeviceSampleOut{static_cast<int32_t>(pick), 0,
                             static_cast<float>(static_cast<double>(x[pick]) - lse),
                             static_cast<float>(log(mass(pick) / total))};
  }
}

}  // namespace

bool plain_sampling(const SamplingParams& p, int64_t vocab) {
  return p.temperature > 0.0f && (p.top_k <= 0 || p.top_k >= vocab) && p.top_p >= 1.0f &&
         p.min_p <= 0.0f;
}

Status sample_rows_plain_cuda(CudaContext& ctx, SampleResult* results, const float* logits,
                              const SampleRow* rows, int64_t n_rows, int64_t vocab,
                              const SamplingParams& params, const int32_t* logit_rows) {
  if (!plain_sampling(params, vocab))
    return Status::internal("sampling (cuda): the plain kernels got truncating parameters");
  if (n_rows <= 0) return Status::ok();
  const int64_t chunks = (vocab + kPlainSamplerChunk - 1) / kPlainSamplerChunk;
  unsigned grid = 0;  // chunk_kernel's
  NPR_TRY(plain::chunk_grid(n_rows, chunks, "sampling (cuda)", &grid));
  const int64_t words = (vocab + 31) / 32;
  // Staged for one upload: the rows (n_rows) then each row's penalty bitmap (n_rows, words),
  // the bitmaps only when some row has a penalty (the kernels read a row's bitmap only then: a
  // 151,936-token vocabulary's is 19 KB a row).
  bool any_penalty = false;
  for (int64_t r = 0; r < n_rows; ++r) any_penalty |= rows[r].repetition_penalty != 1.0f;
  const int64_t meta_bytes = (static_cast<int64_t>(sizeof(PlainRow)) * n_rows + 255) / 256 * 256;
  const int64_t bits_bytes = any_penalty ? (4 * n_rows * words + 255) / 256 * 256 : 0;
  std::vector<char> staging(static_cast<size_t>(meta_bytes + bits_bytes), 0);
  auto* meta = reinterpret_cast<PlainRow*>(staging.data());
  auto* bits = reinterpret_cast<uint32_t*>(staging.data() + meta_bytes);
  for (int64_t r = 0; r < n_rows; ++r) {
    const SampleRow& row = rows[r];
    meta[r] = PlainRow{static_cast<uint64_t>(row.request), static_cast<uint64_t>(row.branch),
                       static_cast<uint64_t>(row.index), row.repetition_penalty,
                       logit_rows ? logit_rows[r] : static_cast<int32_t>(r)};
    if (row.repetition_penalty != 1.0f)
      for (int32_t i = 0; i < row.penalty_count; ++i) {
        const int32_t t = row.penalty_tokens[i];
        bits[r * words + t / 32] |= 1u << (t % 32);
      }
  }
  const int64_t stats_bytes =
      (static_cast<int64_t>(sizeof(ChunkStats)) * n_rows * chunks + 255) / 256 * 256;
  const int64_t out_bytes = static_cast<int64_t>(sizeof(DeviceSampleOut)) * n_rows;
  void* scratch = nullptr;
  NPR_TRY(ctx.scratch(CudaContext::kScratchHead, meta_bytes + bits_bytes + stats_bytes + out_bytes,
                      &scratch));
  char* base = static_cast<char*>(scratch);
  auto* dmeta = reinterpret_cast<PlainRow*>(base);
  auto* dbits = reinterpret_cast<uint32_t*>(base + meta_bytes);
  auto* dstats = reinterpret_cast<ChunkStats*>(base + meta_bytes + bits_bytes);
  auto* dout = reinterpret_cast<DeviceSampleOut*>(base + meta_bytes + bits_bytes + stats_bytes);
  NPR_TRY(ctx.upload(base, staging.data(), meta_bytes + bits_bytes,
                     "sampling (cuda): rows and penalty sets"));
  cudaStream_t st = static_cast<cudaStream_t>(ctx.stream());
  NPR_LAUNCH(grid, kThreads, 0, st, plain::chunk_kernel<kThreads>)
  (dstats, logits, dmeta, dbits, vocab, words, chunks, params.temperature);
  NPR_TRY(cuda_launch_status("sampling (cuda): chunk statistics"));
  NPR_LAUNCH(static_cast<unsigned>(n_rows), kThreads, 0, st, pick_kernel)
  (dout, dstats, logits, dmeta, dbits, vocab, words, chunks, params.temperature, params.seed);
  NPR_TRY(cuda_launch_status("sampling (cuda): pick"));
  return read_device_samples(ctx, dout, n_rows, results);
}

}  // namespace npr
