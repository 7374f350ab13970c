// sample_rows_cuda: one 1024-thread block per row; the row's processed logits, probabilities
// and keep flags live in scratch (kScratchHead) between the phases.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/cuda_check.cuh"
#include "core/cuda_launch.cuh"
#include "core/dynamic_shared.cuh"
#include "sampler/counter_rng.h"
#include "sampler/device_sample_out.h"
#include "sampler/sampler_cuda.h"
#include "sampler/sampler_plain_cuda.h"

namespace npr {

namespace {

constexpr int kThreads = 1024;

struct RowMeta {
  uint64_t request, branch, index;
  int32_t pen_begin, pen_count;
  float penalty;
  int32_t logit_row;
};

struct Params {
  float temperature, top_p, min_p;
  int32_t top_k;
  uint64_t seed;
};

using Out = DeviceSampleOut;

// Block-wide reductions through shared memory (every thread gets the result).
template <typename T, typename Op>
__device__ T block_reduce(T v, Op op, T* sh) {
  const int tid = threadIdx.x;
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();
  if ((tid & 31) == 0) sh[tid >> 5] = v;
  __syncthreads();
  if (tid < 32) {
    T w = sh[tid];  // 32 warps exactly
    for (int o = 16; o > 0; o >>= 1) w = op(w, __shfl_xor_sync(0xffffffffu, w, o));
    if (tid == 0) sh[0] = w;
  }
  __syncthreads();
  return sh[0];
}

// Exclusive prefix of v over threads in thread order (Hillis-Steele on shared memory).
template <typename T>
__device__ T block_exclusive_scan(T v, T* sh) {
  const int tid = threadIdx.x;
  __syncthreads();
  sh[tid] = v;
  __syncthreads();
  for (int o = 1; o < kThreads; o <<= 1) {
    const T add = tid >= o ? sh[tid - o] : T(0);
    __syncthreads();
    sh[tid] += add;
    __syncthreads();
  }
  return sh[tid] - v;
}

__device__ __forceinline__ uint32_t order_key(float x) {  // larger x -> larger key
  const uint32_t u = __float_as_uint(x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

struct Shared {
  double d[kThreads];
  int64_t i[kThreads];
  float f[32];
  int32_t n[32];
  double dd[32];
};

// Keeps, among kept tokens, those before the cut in (key desc, id asc) order: all tokens with
// key > K, and ties at K in id order while `before(tie prefix)` holds. weight(t): 1 for top-k
// (need = k), p[t] for top-p (need = target mass).
template <bool kMass>
__device__ void cut(const float* z, const double* p, uint8_t* keep, int64_t vocab, double need,
                    Shared& sh) {
  const int tid = threadIdx.x;
  auto weight = [&](int64_t t) -> double { return kMass ? p[t] : 1.0; };
  uint32_t prefix = 0;
  for (int bit = 31; bit >= 0; --bit) {  // largest K with weight(key >= K) >= need
    const uint32_t cand = prefix | (1u << bit);
    double w = 0.0;
    for (int64_t t = tid; t < vocab; t += kThreads)
      if (keep[t] && order_key(z[t]) >= cand) w += weight(t);
    w = block_reduce(
        w, [](double a, double b) { return a + b; }, sh.dd);
    if (w >= need) prefix = cand;
  }
  const uint32_t K = prefix;
  double above = 0.0;
  for (int64_t t = tid; t < vocab; t += kThreads)
    if (keep[t] && order_key(z[t]) > K) above += weight(t);
  above = block_reduce(
      above, [](double a, double b) { return a + b; }, sh.dd);
  // Ties at K in id order: a contiguous chunk of ids per thread, an exclusive scan of chunks.
  const int64_t chunk = (vocab + kThreads - 1) / kThreads;
  const int64_t t0 = tid * chunk, t1 = min(vocab, t0 + chunk);
  double local = 0.0;
  for (int64_t t = t0; t < t1; ++t)
    if (keep[t] && order_key(z[t]) == K) local += weight(t);
  double acc = above + block_exclusive_scan(local, sh.d);
  __syncthreads();
  for (int64_t t = t0; t < t1; ++t) {
    if (!keep[t]) continue;
    const uint32_t k = order_key(z[t]);
    if (k < K) {
      keep[t] = 0;
    } else if (k == K) {
      if (acc < need)
        acc += weight(t);
      else
        keep[t] = 0;
    }
  }
  __syncthreads();
}

// p <- renormalised exp(z - max kept z) over kept tokens (0 elsewhere).
__device__ void renormalise(const float* z, double* p, const uint8_t* keep, int64_t vocab,
                            Shared& sh) {
  const int tid = threadIdx.x;
  float zm = -INFINITY;
  for (int64_t t = tid; t < vocab; t += kThreads)
    if (keep[t]) zm = fmaxf(zm, z[t]);
  zm = block_reduce(
      zm, [](float a, float b) { return fmaxf(a, b); }, sh.f);
  double total = 0.0;
  for (int64_t t = tid; t < vocab; t += kThreads) {
    p[t] = keep[t] ? exp(static_cast<double>(z[t]) - zm) : 0.0;
    total += p[t];
  }
  total = block_reduce(
      total, [](double a, double b) { return a + b; }, sh.dd);
  for (int64_t t = tid; t < vocab; t += kThreads) p[t] /= total;
  __syncthreads();
}

__global__ void __launch_bounds__(kThreads)
    sample_kernel(const float* logits_all, const RowMeta* meta, const int32_t* pen, float* z_all,
                  double* p_all, uint8_t* keep_all, Out* out, int64_t vocab, Params P) {
  NPR_STATIC_SHARED(Shared, sh);
  const int tid = threadIdx.x;
  const int64_t row = blockIdx.x;
  const RowMeta M = meta[row];
  const float* logits = logits_all + static_cast<int64_t>(M.logit_row) * vocab;
  float* z = z_all + row * vocab;
  double* p = p_all + row * vocab;
  uint8_t* keep = keep_all + row * vocab;
  // Refusals: NaN / +inf anywhere, or no finite logit.
  int bad = 0, finite = 0;
  float m = -INFINITY;
  for (int64_t t = tid; t < vocab; t += kThreads) {
    const float x = logits[t];
    bad |= (isnan(x) || x == INFINITY) ? 1 : 0;
    finite |= isfinite(x) ? 1 : 0;
    m = fmaxf(m, x);
    z[t] = x;
    keep[t] = 1;
  }
  bad = block_reduce(
      bad, [](int a, int b) { return a | b; }, sh.n);
  finite = block_reduce(
      finite, [](int a, int b) { return a | b; }, sh.n);
  if (bad || !finite) {
    if (tid == 0) out[row] = Out{-1, bad ? 1 : 2, 0.0f, 0.0f};
    return;
  }
  m = block_reduce(
      m, [](float a, float b) { return fmaxf(a, b); }, sh.f);
  double sum = 0.0;
  for (int64_t t = tid; t < vocab; t += kThreads) sum += exp(static_cast<double>(logits[t]) - m);
  sum = block_reduce(
      sum, [](double a, double b) { return a + b; }, sh.dd);
  const double lse = m + log(sum);
  // Step-local repetition penalty, once per distinct token.
  if (M.penalty != 1.0f) {
    for (int i = tid; i < M.pen_count; i += kThreads) {
      const int32_t t = pen[M.pen_begin + i];
      bool first = true;
      for (int j = 0; j < i && first; ++j) first = pen[M.pen_begin + j] != t;
      if (first) z[t] = z[t] > 0.0f ? z[t] / M.penalty : z[t] * M.penalty;
    }
  }
  __syncthreads();
  if (P.temperature == 0.0f) {  // greedy: the first maximum
    int64_t best = -1;
    float bv = -INFINITY;
    for (int64_t t = tid; t < vocab; t += kThreads)
      if (best < 0 || z[t] > bv) bv = z[t], best = t;
    const float top = block_reduce(
        bv, [](float a, float b) { return fmaxf(a, b); }, sh.f);
    int64_t first = vocab;
    for (int64_t t = tid; t < vocab; t += kThreads)
      if (z[t] == top) {
        first = t;
        break;
      }
    first = block_reduce(
        first, [](int64_t a, int64_t b) { return a < b ? a : b; }, sh.i);
    if (tid == 0)
      out[row] = Out{static_cast<int32_t>(first), 0,
                     static_cast<float>(static_cast<double>(logits[first]) - lse), 0.0f};
    return;
  }
  for (int64_t t = tid; t < vocab; t += kThreads) z[t] /= P.temperature;
  __syncthreads();
  if (P.top_k > 0 && P.top_k < vocab) cut<false>(z, p, keep, vocab, P.top_k, sh);
  renormalise(z, p, keep, vocab, sh);
  if (P.top_p < 1.0f) {
    double mass = 0.0;
    for (int64_t t = tid; t < vocab; t += kThreads)
      if (keep[t]) mass += p[t];
    mass = block_reduce(
        mass, [](double a, double b) { return a + b; }, sh.dd);
    cut<true>(z, p, keep, vocab, P.top_p * mass, sh);
    renormalise(z, p, keep, vocab, sh);
  }
  if (P.min_p > 0.0f) {
    double pmax = 0.0;
    for (int64_t t = tid; t < vocab; t += kThreads) pmax = fmax(pmax, p[t]);
    pmax = block_reduce(
        pmax, [](double a, double b) { return fmax(a, b); }, sh.dd);
    for (int64_t t = tid; t < vocab; t += kThreads)
      if (keep[t] && p[t] < P.min_p * pmax) keep[t] = 0;
    __syncthreads();
    renormalise(z, p, keep, vocab, sh);
  }
  // Inverse CDF in token-id order: chunks of ids per thread, an exclusive scan of chunk masses.
  const double u = counter_uniform(P.seed, M.request, M.branch, M.index);
  const int64_t chunk = (vocab + kThreads - 1) / kThreads;
  const int64_t t0 = tid * chunk, t1 = min(vocab, t0 + chunk);
  double local = 0.0;
  int64_t last_kept = -1;
  for (int64_t t = t0; t < t1; ++t)
    if (keep[t]) local += p[t], last_kept = t;
  double acc = block_exclusive_scan(local, sh.d);
  int64_t pick = vocab;
  for (int64_t t = t0; t < t1; ++t) {
    if (!keep[t]) continue;
    acc += p[t];
    if (acc > u) {
      pick = t;
      break;
    }
  }
  pick = block_reduce(
      pick, [](int64_t a, int64_t b) { return a < b ? a : b; }, sh.i);
  last_kept = block_reduce(
      last_kept, [](int64_t a, int64_t b) { return a > b ? a : b; }, sh.i);
  if (pick == vocab) pick = last_kept;  // the last kept token absorbs rounding at the top end
  if (tid == 0)
    out[row] = Out{static_cast<int32_t>(pick), 0,
                   static_cast<float>(static_cast<double>(logits[pick]) - lse),
                   static_cast<float>(log(p[pick]))};
}

}  // namespace

Status check_device_sample_rows(const SampleRow* rows, int64_t n_rows, int64_t vocab,
                                const int32_t* logit_rows, int64_t logit_rows_total) {
  if (vocab <= 0 || vocab > (int64_t{1} << 30))
    return Status::out_of_range("sampling (cuda): vocab must be in [1, 2^30]");
  for (int64_t r = 0; r < n_rows; ++r) {
    const SampleRow& row = rows[r];
    if (!(row.repetition_penalty > 0.0f))
      return Status::out_of_range("sampling (cuda): row " + std::to_string(r) +
                                  ": repetition_penalty must be > 0");
    const int32_t lr = logit_rows ? logit_rows[r] : static_cast<int32_t>(r);
    if (logit_rows && (lr < 0 || lr >= logit_rows_total))
      return Status::out_of_range("sampling (cuda): row " + std::to_string(r) +
                                  " reads logits row " + std::to_string(lr) + " of " +
                                  std::to_string(logit_rows_total));
    for (int32_t i = 0; i < row.penalty_count; ++i)
      if (row.penalty_tokens[i] < 0 || row.penalty_tokens[i] >= vocab)
        return Status::out_of_range("sampling (cuda): row " + std::to_string(r) +
                                    ": penalty token " + std::to_string(row.penalty_tokens[i]) +
                                    " is outside the vocabulary");
  }
  return Status::ok();
}

Status sample_rows_cuda(CudaContext& ctx, SampleResult* results, const float* logits,
                        const SampleRow* rows, int64_t n_rows, int64_t vocab,
                        const SamplingParams& params, const int32_t* logit_rows,
                        int64_t logit_rows_total, DeviceSamplerKernel kernel) {
  NPR_TRY(check_sampling_params(params));
  NPR_TRY(check_device_sample_rows(rows, n_rows, vocab, logit_rows, logit_rows_total));
  if (n_rows <= 0) return Status::ok();
  if (kernel == DeviceSamplerKernel::kAuto && plain_sampling(params, vocab))
    return sample_rows_plain_cuda(ctx, results, logits, rows, n_rows, vocab, params, logit_rows);
  std::vector<RowMeta> meta(static_cast<size_t>(n_rows));
  std::vector<int32_t> pen;
  for (int64_t r = 0; r < n_rows; ++r) {
    const SampleRow& row = rows[r];
    const int32_t lr = logit_rows ? logit_rows[r] : static_cast<int32_t>(r);
    meta[r] = RowMeta{static_cast<uint64_t>(row.request),
                      static_cast<uint64_t>(row.branch),
                      static_cast<uint64_t>(row.index),
                      static_cast<int32_t>(pen.size()),
                      row.penalty_count,
                      row.repetition_penalty,
                      lr};
    pen.insert(pen.end(), row.penalty_tokens, row.penalty_tokens + row.penalty_count);
  }
  // Scratch: z (rows, vocab) f32, p (rows, vocab) f64, keep (rows, vocab) u8, meta, pen, out.
  const int64_t nv = n_rows * vocab;
  const int64_t z_b = (4 * nv + 255) / 256 * 256, p_b = (8 * nv + 255) / 256 * 256,
                k_b = (nv + 255) / 256 * 256,
                m_b = (static_cast<int64_t>(sizeof(RowMeta)) * n_rows + 255) / 256 * 256,
                pen_b = (4 * static_cast<int64_t>(pen.size()) + 256) / 256 * 256,
                o_b = static_cast<int64_t>(sizeof(Out)) * n_rows;
  void* scratch = nullptr;
  NPR_TRY(ctx.scratch(CudaContext::kScratchHead, z_b + p_b + k_b + m_b + pen_b + o_b, &scratch));
  char* s = static_cast<char*>(scratch);
  float* z = reinterpret_cast<float*>(s);
  double* p = reinterpret_cast<double*>(s + z_b);
  uint8_t* keep = reinterpret_cast<uint8_t*>(s + z_b + p_b);
  RowMeta* dmeta = reinterpret_cast<RowMeta*>(s + z_b + p_b + k_b);
  int32_t* dpen = reinterpret_cast<int32_t*>(s + z_b + p_b + k_b + m_b);
  Out* dout = reinterpret_cast<Out*>(s + z_b + p_b + k_b + m_b + pen_b);
  NPR_TRY(ctx.upload(dmeta, meta.data(), sizeof(RowMeta) * n_rows, "sampling (cuda): rows"));
  NPR_TRY(ctx.upload(dpen, pen.data(), 4 * static_cast<int64_t>(pen.size()),
                     "sampling (cuda): penalty tokens"));
  const Params P{params.temperature, params.top_p, params.min_p, params.top_k, params.seed};
  NPR_LAUNCH(static_cast<unsigned>(n_rows), kThreads, 0, static_cast<cudaStream_t>(ctx.stream()),
             sample_kernel)
  (logits, dmeta, dpen, z, p, keep, dout, vocab, P);
  NPR_TRY(cuda_launch_status("sampling (cuda): sample"));
  return read_device_samples(ctx, dout, n_rows, results);
}

Status read_device_samples(CudaContext& ctx, const DeviceSampleOut* device, int64_t n,
                           SampleResult* results) {
  std::vector<DeviceSampleOut> out(static_cast<size_t>(n));
  NPR_TRY(ctx.download(out.data(), device, static_cast<int64_t>(sizeof(DeviceSampleOut)) * n,
                       "sampling (cuda): results"));
  for (int64_t r = 0; r < n; ++r) {
    if (out[r].error)
      return Status::invalid(
          "sampling (cuda): row " + std::to_string(r) +
          (out[r].error == 1 ? " has a NaN or +inf logit" : " has no finite logit (all masked)"));
    results[r] = SampleResult{out[r].token, out[r].logprob, out[r].logprob_sampling};
  }
  return Status::ok();
}

}  // namespace npr
