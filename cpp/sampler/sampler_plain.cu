// sample_rows_plain_cuda: three launches over (chunks, rows) blocks; see sampler_plain_cuda.h.
#include <cuda_runtime.h>

#include <climits>
#include <cmath>
#include <string>
#include <vector>

#include "core/block_reduce.cuh"
#include "core/cuda_check.cuh"
#include "core/cuda_launch.cuh"
#include "core/dynamic_shared.cuh"
#include "sampler/counter_rng.h"
#include "sampler/device_sample_out.h"
#include "sampler/sampler_plain_cuda.h"

namespace npr {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kPerThread = 16;
constexpr int64_t kPlainChunk = int64_t{kThreads} * kPerThread;  // tokens a chunk block reads

struct PlainRow {
  uint64_t request, branch, index;
  float penalty;      // 1: off
  int32_t logit_row;  // the logits row it reads
};

// Per (row, chunk); filled by the first two launches.
struct ChunkStats {
  float m_raw, zm;      // max raw logit, max processed logit
  int32_t bad, finite;  // first NaN / +inf token (INT_MAX: none); any finite logit
  double s_raw, s_z;    // sum of exp(x - row max), of exp(z - row max z)
};

// The processed logit of token t: the step-local penalty if t is in the row's set, then the
// temperature, in the CPU sampler's float operations.
__device__ __forceinline__ float processed(float x, int64_t t, const uint32_t* bits, float penalty,
                                           float temperature) {
  float z = x;
  if (penalty != 1.0f && ((bits[t >> 5] >> (t & 31)) & 1u))
    z = z > 0.0f ? z / penalty : z * penalty;
  return z / temperature;
}

// grid (chunks, rows): maxima and refusal flags of each chunk.
__global__ void __launch_bounds__(kThreads)
    chunk_max_kernel(ChunkStats* stats, const float* logits, const PlainRow* rows,
                     const uint32_t* bitmap, int64_t vocab, int64_t words, float temperature) {
  NPR_STATIC_SHARED(float, shf, [kWarps]);
  NPR_STATIC_SHARED(int, shi, [kWarps]);
  const int64_t c = blockIdx.x, r = blockIdx.y, chunks = gridDim.x;
  const PlainRow M = rows[r];
  const float* x = logits + static_cast<int64_t>(M.logit_row) * vocab;
  const uint32_t* bits = bitmap + r * words;
  const int64_t t0 = c * kPlainChunk, t1 = min(vocab, t0 + kPlainChunk);
  float m = -INFINITY, zm = -INFINITY;
  int bad = INT_MAX, finite = 0;
  for (int64_t t = t0 + threadIdx.x; t < t1; t += kThreads) {
    const float v = x[t];
    if ((isnan(v) || v == INFINITY) && bad == INT_MAX) bad = static_cast<int>(t);
    finite |= isfinite(v) ? 1 : 0;
    m = fmaxf(m, v);
    zm = fmaxf(zm, processed(v, t, bits, M.penalty, temperature));
  }
  m = block_all_reduce<kWarps>(
      m, [](float a, float b) { return fmaxf(a, b); }, shf);
  zm = block_all_reduce<kWarps>(
      zm, [](float a, float b) { return fmaxf(a, b); }, shf);
  bad = block_all_reduce<kWarps>(
      bad, [](int a, int b) { return a < b ? a : b; }, shi);
  finite = block_all_reduce<kWarps>(
      finite, [](int a, int b) { return a | b; }, shi);
  if (threadIdx.x == 0) stats[r * chunks + c] = ChunkStats{m, zm, bad, finite, 0.0, 0.0};
}

// The row's maxima and flags from its chunks (every thread, in chunk order).
struct RowStats {
  float m_raw, zm;
  int bad, finite;
};
__device__ RowStats row_stats(const ChunkStats* s, int64_t chunks) {
  RowStats o{-INFINITY, -INFINITY, INT_MAX, 0};
  for (int64_t c = 0; c < chunks; ++c) {
    o.m_raw = fmaxf(o.m_raw, s[c].m_raw);
    o.zm = fmaxf(o.zm, s[c].zm);
    o.bad = min(o.bad, s[c].bad);
    o.finite |= s[c].finite;
  }
  return o;
}

// grid (chunks, rows): each chunk's sums of exp under the row's maxima.
__global__ void __launch_bounds__(kThreads)
    chunk_sum_kernel(ChunkStats* stats, const float* logits, const PlainRow* rows,
                     const uint32_t* bitmap, int64_t vocab, int64_t words, float temperature) {
  NPR_STATIC_SHARED(double, shd, [kWarps]);
  const int64_t c = blockIdx.x, r = blockIdx.y, chunks = gridDim.x;
  const RowStats R = row_stats(stats + r * chunks, chunks);
  if (R.bad != INT_MAX || !R.finite) return;  // refused by the last launch
  const PlainRow M = rows[r];
  const float* x = logits + static_cast<int64_t>(M.logit_row) * vocab;
  const uint32_t* bits = bitmap + r * words;
  const int64_t t0 = c * kPlainChunk, t1 = min(vocab, t0 + kPlainChunk);
  double sr = 0.0, sz = 0.0;
  for (int64_t t = t0 + threadIdx.x; t < t1; t += kThreads) {
    const float v = x[t];
    sr += exp(static_cast<double>(v) - R.m_raw);
    sz += exp(static_cast<double>(processed(v, t, bits, M.penalty, temperature)) - R.zm);
  }
  sr = block_all_reduce<kWarps>(
      sr, [](double a, double b) { return a + b; }, shd);
  sz = block_all_reduce<kWarps>(
      sz, [](double a, double b) { return a + b; }, shd);
  if (threadIdx.x == 0) {
    stats[r * chunks + c].s_raw = sr;
    stats[r * chunks + c].s_z = sz;
  }
}

// grid (rows): the draw. The chunk where the cumulative mass passes u x total, then inside it
// kPerThread tokens a thread in id order: an exclusive scan of the threads' masses and the
// thread holding the crossing walks its tokens.
__global__ void __launch_bounds__(kThreads)
    pick_kernel(DeviceSampleOut* out, const ChunkStats* stats, const float* logits,
                const PlainRow* rows, const uint32_t* bitmap, int64_t vocab, int64_t words,
                int64_t chunks, float temperature, uint64_t seed) {
  NPR_STATIC_SHARED(double, scan, [kThreads]);
  NPR_STATIC_SHARED(int64_t, shi, [kWarps]);
  const int64_t r = blockIdx.x;
  const int tid = threadIdx.x;
  const ChunkStats* s = stats + r * chunks;
  const RowStats R = row_stats(s, chunks);
  if (R.bad != INT_MAX || !R.finite) {
    if (tid == 0) out[r] = DeviceSampleOut{-1, R.bad != INT_MAX ? 1 : 2, 0.0f, 0.0f};
    return;
  }
  double total_raw = 0.0, total = 0.0;
  for (int64_t c = 0; c < chunks; ++c) total_raw += s[c].s_raw, total += s[c].s_z;
  const PlainRow M = rows[r];
  const double target = counter_uniform(seed, M.request, M.branch, M.index) * total;
  int64_t cs = chunks - 1;  // the chunk holding the crossing (the last one absorbs rounding)
  double before = 0.0;
  for (int64_t c = 0; c < chunks; ++c) {
    if (before + s[c].s_z > target) {
      cs = c;
      break;
    }
    if (c + 1 < chunks) before += s[c].s_z;
  }
  const float* x = logits + static_cast<int64_t>(M.logit_row) * vocab;
  const uint32_t* bits = bitmap + r * words;
  const int64_t t0 = cs * kPlainChunk + int64_t{tid} * kPerThread;
  const int64_t t1 = min(min(vocab, (cs + 1) * kPlainChunk), t0 + kPerThread);
  auto mass = [&](int64_t t) {
    return exp(static_cast<double>(processed(x[t], t, bits, M.penalty, temperature)) - R.zm);
  };
  double local = 0.0;
  for (int64_t t = t0; t < t1; ++t) local += mass(t);
  scan[tid] = local;
  __syncthreads();
  for (int o = 1; o < kThreads; o <<= 1) {  // inclusive Hillis-Steele scan, thread order
    const double add = tid >= o ? scan[tid - o] : 0.0;
    __syncthreads();
    scan[tid] += add;
    __syncthreads();
  }
  double acc = before + (scan[tid] - local);
  int64_t pick = INT64_MAX;
  for (int64_t t = t0; t < t1; ++t) {
    acc += mass(t);
    if (acc > target) {
      pick = t;
      break;
    }
  }
  pick = block_all_reduce<kWarps>(
      pick, [](int64_t a, int64_t b) { return a < b ? a : b; }, shi);
  if (pick == INT64_MAX)  // rounding at the top end: the chunk's (or the row's) last token
    pick = min(vocab, (cs + 1) * kPlainChunk) - 1;
  if (tid == 0) {
    const double lse = R.m_raw + log(total_raw);
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
  const int64_t chunks = (vocab + kPlainChunk - 1) / kPlainChunk, words = (vocab + 31) / 32;
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
  const dim3 grid(static_cast<unsigned>(chunks), static_cast<unsigned>(n_rows));
  NPR_LAUNCH(grid, kThreads, 0, st, chunk_max_kernel)
  (dstats, logits, dmeta, dbits, vocab, words, params.temperature);
  NPR_TRY(cuda_launch_status("sampling (cuda): chunk maxima"));
  NPR_LAUNCH(grid, kThreads, 0, st, chunk_sum_kernel)
  (dstats, logits, dmeta, dbits, vocab, words, params.temperature);
  NPR_TRY(cuda_launch_status("sampling (cuda): chunk sums"));
  NPR_LAUNCH(static_cast<unsigned>(n_rows), kThreads, 0, st, pick_kernel)
  (dout, dstats, logits, dmeta, dbits, vocab, words, chunks, params.temperature, params.seed);
  NPR_TRY(cuda_launch_status("sampling (cuda): pick"));
  return read_device_samples(ctx, dout, n_rows, results);
}

}  // namespace npr
