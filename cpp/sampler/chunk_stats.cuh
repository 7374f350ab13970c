// Statistics of logits rows cut into chunks of kPlainSamplerChunk tokens, one thread block a
// chunk: what the plain sampler (sampler_plain.cu) and the token log-probabilities
// (token_logprob.cu) read off a step's logits instead of walking a 151,936-token row in one
// block. Each chunk is read once for its maxima, its refusal flags and its sums of exp (double)
// under its own maxima; a reader rescales the chunks' sums to the row's maxima (rescaled) in
// chunk order. Inside .cu files only.
#pragma once

#include <cuda_runtime.h>

#include <climits>
#include <cmath>
#include <cstdint>
#include <string>

#include "core/block_reduce.cuh"
#include "core/dynamic_shared.cuh"
#include "core/status.h"
#include "sampler/sampler_plain_cuda.h"

namespace npr::plain {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kPerThread = static_cast<int>(kPlainSamplerChunk / kThreads);
static_assert(kPlainSamplerChunk == int64_t{kThreads} * kPerThread, "whole tokens a thread");

// A row the chunks are taken of: its logits row, its step-local penalty (1: off) and, for a
// draw, the counter RNG's key.
struct PlainRow {
  uint64_t request, branch, index;
  float penalty;
  int32_t logit_row;
};

// Per (row, chunk), from the chunk's one read: its own maxima and flags, and its sums of exp
// under those maxima.
struct ChunkStats {
  float m_raw, zm;      // max raw logit, max processed logit (-inf: nothing above -inf)
  int32_t bad, finite;  // first NaN / +inf token (INT_MAX: none); any finite logit
  double s_raw, s_z;    // sum of exp(x - m_raw), of exp(z - zm); 0 where that max is -inf
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

// Sum of exp(v - m) over a thread's values (0 when m is -inf: every value is then -inf too).
__device__ __forceinline__ double exp_sum(const float (&v)[kPerThread], float m) {
  double s = 0.0;
  if (m == -INFINITY) return s;
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) s += exp(static_cast<double>(v[j]) - m);
  return s;
}

// grid (rows x chunks: block i is row i / chunks, chunk i % chunks, one dimension because a
// grid's y is at most 65,535 and a draw call may name more rows), kThreads threads (the template
// argument, so that the kernel can live in a header): each chunk read once, token t = chunk start +
// thread + j kThreads (its loads all issued before any is used), into its ChunkStats. Without a
// penalty and at temperature 1 the processed logits are the raw ones (x / 1 is x), so z's stats are
// x's and `bitmap` (rows, words) is never read (null then).
template <int THREADS>
__global__ void __launch_bounds__(THREADS)
    chunk_kernel(ChunkStats* stats, const float* logits, const PlainRow* rows,
                 const uint32_t* bitmap, int64_t vocab, int64_t words, int64_t chunks,
                 float temperature) {
  static_assert(THREADS == kThreads, "kPerThread is kPlainSamplerChunk / kThreads");
  NPR_STATIC_SHARED(float, shf, [kWarps]);
  NPR_STATIC_SHARED(int, shi, [kWarps]);
  NPR_STATIC_SHARED(double, shd, [kWarps]);
  const int64_t i = blockIdx.x, r = i / chunks, c = i % chunks;
  const PlainRow M = rows[r];
  const float* x = logits + static_cast<int64_t>(M.logit_row) * vocab;
  const uint32_t* bits = bitmap ? bitmap + r * words : nullptr;
  const bool same = M.penalty == 1.0f && temperature == 1.0f;
  const int64_t t0 = c * kPlainSamplerChunk + threadIdx.x;
  float v[kPerThread], z[kPerThread];  // (kPerThread) this thread's logits, processed
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    const int64_t t = t0 + int64_t{j} * kThreads;
    v[j] = t < vocab ? x[t] : -INFINITY;
  }
  float m = -INFINITY, zm = -INFINITY;
  int bad = INT_MAX, finite = 0;
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    const int64_t t = t0 + int64_t{j} * kThreads;
    z[j] = -INFINITY;
    if (t < vocab) {
      if ((isnan(v[j]) || v[j] == INFINITY) && bad == INT_MAX) bad = static_cast<int>(t);
      finite |= isfinite(v[j]) ? 1 : 0;
      z[j] = same ? v[j] : processed(v[j], t, bits, M.penalty, temperature);
    }
    m = fmaxf(m, v[j]);
    zm = fmaxf(zm, z[j]);
  }
  m = block_all_reduce<kWarps>(
      m, [](float a, float b) { return fmaxf(a, b); }, shf);
  zm = same ? m
            : block_all_reduce<kWarps>(
                  zm, [](float a, float b) { return fmaxf(a, b); }, shf);
  bad = block_all_reduce<kWarps>(
      bad, [](int a, int b) { return a < b ? a : b; }, shi);
  finite = block_all_reduce<kWarps>(
      finite, [](int a, int b) { return a | b; }, shi);
  auto add = [](double a, double b) { return a + b; };
  const double sr = block_all_reduce<kWarps>(exp_sum(v, m), add, shd);
  const double sz = same ? sr : block_all_reduce<kWarps>(exp_sum(z, zm), add, shd);
  if (threadIdx.x == 0) stats[i] = ChunkStats{m, zm, bad, finite, sr, sz};
}

// chunk_kernel's grid for `rows` rows of `chunks` chunks, or why there is none: a grid's x is
// at most 2^31 - 1 blocks.
inline Status chunk_grid(int64_t rows, int64_t chunks, const char* op, unsigned* grid) {
  constexpr int64_t kMaxGridX = 2147483647;
  if (rows > kMaxGridX / chunks)
    return Status::out_of_range(std::string(op) + ": " + std::to_string(rows) + " rows of " +
                                std::to_string(chunks) + " chunks are more than a grid's " +
                                std::to_string(kMaxGridX) + " blocks; split the call");
  *grid = static_cast<unsigned>(rows * chunks);
  return Status::ok();
}

// A chunk's sum of exp under its own max cm, as a sum under the row's max rm (>= cm; finite: the
// row is refused otherwise). A chunk with nothing above -inf has s = 0 and stays 0.
__device__ __forceinline__ double rescaled(double s, float cm, float rm) {
  return s * exp(static_cast<double>(cm) - rm);
}

// A row's maxima and flags over all its chunks.
struct RowExtremes {
  float m_raw, zm;
  int bad, finite;
};

// The row's extremes from its chunks' stats s (chunks), the calling thread holding chunks
// [c0, c1): every thread of the block (kThreads) calls it and gets the row's.
__device__ __forceinline__ RowExtremes row_extremes(const ChunkStats* s, int64_t c0, int64_t c1,
                                                    float* shf /* (kWarps) shared */,
                                                    int* shi /* (kWarps) shared */) {
  RowExtremes e{-INFINITY, -INFINITY, INT_MAX, 0};
  for (int64_t c = c0; c < c1; ++c) {
    e.m_raw = fmaxf(e.m_raw, s[c].m_raw);
    e.zm = fmaxf(e.zm, s[c].zm);
    e.bad = min(e.bad, s[c].bad);
    e.finite |= s[c].finite;
  }
  e.m_raw = block_all_reduce<kWarps>(
      e.m_raw, [](float a, float b) { return fmaxf(a, b); }, shf);
  e.zm = block_all_reduce<kWarps>(
      e.zm, [](float a, float b) { return fmaxf(a, b); }, shf);
  e.bad = block_all_reduce<kWarps>(
      e.bad, [](int a, int b) { return a < b ? a : b; }, shi);
  e.finite = block_all_reduce<kWarps>(
      e.finite, [](int a, int b) { return a | b; }, shi);
  return e;
}

// The chunks [c0, c1) a thread of a block holds of a row's `chunks`, in order.
__device__ __forceinline__ void my_chunks(int64_t chunks, int64_t* c0, int64_t* c1) {
  const int64_t per = (chunks + kThreads - 1) / kThreads;
  *c0 = min(chunks, threadIdx.x * per);
  *c1 = min(chunks, *c0 + per);
}

}  // namespace npr::plain
