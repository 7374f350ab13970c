// attention_cuda_time (see parallel_attention_timing.h): hash-filled inputs, CUDA-event timing
// of the block-sparse attention's forward and forward + backward, tile statistics, sample rows.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/cuda_check.cuh"
#include "core/cuda_dtype.cuh"
#include "kernels/parallel_attention.h"
#include "kernels/parallel_attention_cuda.h"
#include "kernels/parallel_attention_timing.h"

namespace npr {

namespace {

constexpr int kThreads = 256;

// The counter hash the Python peer repeats with int64 tensors: every product stays below 2^59.
__device__ __forceinline__ float hash_uniform(uint64_t i, uint32_t seed) {
  uint32_t x = static_cast<uint32_t>(i + (static_cast<uint64_t>(seed) << 28));
  x ^= x >> 16;
  x *= 0x45d9f3bu;
  x ^= x >> 16;
  x *= 0x45d9f3bu;
  x ^= x >> 16;
  return static_cast<float>(x >> 8) * (1.0f / 8388608.0f) - 1.0f;  // [-1, 1), exact in fp32
}

template <typename T>
__global__ void fill_hash_kernel(T* __restrict__ p, int64_t n, uint32_t seed) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    p[i] = from_f32<T>(hash_uniform(static_cast<uint64_t>(i), seed));
}

// count += number of non-finite elements (an integer atomic: the count is order-independent).
template <typename T>
__global__ void count_nonfinite_kernel(const T* __restrict__ p, int64_t n,
                                       unsigned long long* count) {
  unsigned long long local = 0;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    local += isfinite(to_f32(p[i])) ? 0 : 1;
  if (local) atomicAdd(count, local);
}

// out (count, width) fp32 = rows tokens[s] of src (tokens, width).
template <typename T>
__global__ void gather_rows_kernel(float* __restrict__ out, const T* __restrict__ src,
                                   const int32_t* __restrict__ tokens, int64_t count,
                                   int64_t width) {
  const int64_t n = count * width;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t s = i / width, c = i % width;
    out[i] = to_f32(src[static_cast<int64_t>(tokens[s]) * width + c]);
  }
}

int grid_for(int64_t n) {
  return static_cast<int>(std::min<int64_t>((n + kThreads - 1) / kThreads, 4096));
}

// Type-dispatched launches of the helpers above on the context's stream.
Status fill_hash(const CudaContext& ctx, DevDType t, void* p, int64_t n, uint32_t seed) {
  cudaStream_t s = static_cast<cudaStream_t>(ctx.stream());
  if (t == DevDType::kBF16)
    fill_hash_kernel<<<grid_for(n), kThreads, 0, s>>>(static_cast<__nv_bfloat16*>(p), n, seed);
  else
    fill_hash_kernel<<<grid_for(n), kThreads, 0, s>>>(static_cast<float*>(p), n, seed);
  return cuda_launch_status("attention timing: fill inputs");
}

Status count_nonfinite(const CudaContext& ctx, DevDType t, const void* p, int64_t n,
                       unsigned long long* count) {
  cudaStream_t s = static_cast<cudaStream_t>(ctx.stream());
  if (t == DevDType::kBF16)
    count_nonfinite_kernel<<<grid_for(n), kThreads, 0, s>>>(static_cast<const __nv_bfloat16*>(p), n,
                                                            count);
  else
    count_nonfinite_kernel<<<grid_for(n), kThreads, 0, s>>>(static_cast<const float*>(p), n, count);
  return cuda_launch_status("attention timing: count non-finite");
}

// Downloads rows `tokens` (device, count) of src (tokens, width) of type t into *host.
Status gather_rows(CudaContext& ctx, DevDType t, const void* src, const int32_t* tokens,
                   int64_t count, int64_t width, DeviceBuffer& scratch, std::vector<float>* host) {
  const int64_t n = count * width;
  NPR_TRY(scratch.grow(ctx.alloc(), n * 4, "attention timing: sample rows"));
  cudaStream_t s = static_cast<cudaStream_t>(ctx.stream());
  if (t == DevDType::kBF16)
    gather_rows_kernel<<<grid_for(n), kThreads, 0, s>>>(
        scratch.as<float>(), static_cast<const __nv_bfloat16*>(src), tokens, count, width);
  else
    gather_rows_kernel<<<grid_for(n), kThreads, 0, s>>>(
        scratch.as<float>(), static_cast<const float*>(src), tokens, count, width);
  NPR_TRY(cuda_launch_status("attention timing: gather sample rows"));
  host->resize(static_cast<size_t>(n));
  return ctx.download(host->data(), scratch.get(), n * 4, "attention timing: download samples");
}

// 2 * iters events, destroyed on every path.
struct EventPairs {
  std::vector<cudaEvent_t> ev;
  ~EventPairs() {
    for (cudaEvent_t e : ev) cudaEventDestroy(e);
  }
  Status create(int iters) {
    for (int i = 0; i < 2 * iters; ++i) {
      cudaEvent_t e = nullptr;
      NPR_CUDA_TRY(cudaEventCreate(&e), "attention timing: cudaEventCreate");
      ev.push_back(e);
    }
    return Status::ok();
  }
};

// Runs `run` warmup times, then iters times between event pairs; median and min in ms.
template <typename Run>
Status time_runs(CudaContext& ctx, int warmup, int iters, Run&& run, double* median, double* min) {
  cudaStream_t s = static_cast<cudaStream_t>(ctx.stream());
  for (int i = 0; i < warmup; ++i) NPR_TRY(run());
  NPR_TRY(ctx.sync("attention timing: warm-up"));
  EventPairs events;
  NPR_TRY(events.create(iters));
  for (int i = 0; i < iters; ++i) {
    NPR_CUDA_TRY(cudaEventRecord(events.ev[2 * i], s), "attention timing: cudaEventRecord");
    NPR_TRY(run());
    NPR_CUDA_TRY(cudaEventRecord(events.ev[2 * i + 1], s), "attention timing: cudaEventRecord");
  }
  NPR_TRY(ctx.sync("attention timing: timed runs"));
  std::vector<double> ms(static_cast<size_t>(iters));
  for (int i = 0; i < iters; ++i) {
    float m = 0;
    NPR_CUDA_TRY(cudaEventElapsedTime(&m, events.ev[2 * i], events.ev[2 * i + 1]),
                 "attention timing: cudaEventElapsedTime");
    ms[static_cast<size_t>(i)] = m;
  }
  std::sort(ms.begin(), ms.end());
  *min = ms.front();
  *median =
      iters % 2
          ? ms[static_cast<size_t>(iters / 2)]
          : 0.5 * (ms[static_cast<size_t>(iters / 2 - 1)] + ms[static_cast<size_t>(iters / 2)]);
  return Status::ok();
}

}  // namespace

Status attention_cuda_time(CudaContext& ctx, const StructureView& st, const AttentionShape& shape,
                           DevDType t, bool dense_causal, const AttentionTimingOptions& options,
                           AttentionTiming* out) {
  if (options.iters < 1 || options.warmup < 0)
    return Status::invalid("attention timing: iters must be >= 1 and warmup >= 0 (got " +
                           std::to_string(options.iters) + ", " + std::to_string(options.warmup) +
                           ")");
  if (shape.heads <= 0 || shape.kv_heads <= 0 || shape.head_dim <= 0 ||
      shape.heads % shape.kv_heads != 0)
    return Status::invalid("attention timing: heads must be a positive multiple of kv_heads");
  const int64_t T = st.tokens;
  for (int64_t i = 0; i < options.sample_count; ++i)
    if (options.sample_tokens[i] < 0 || options.sample_tokens[i] >= T)
      return Status::out_of_range("attention timing: sample token " +
                                  std::to_string(options.sample_tokens[i]) + " outside [0, " +
                                  std::to_string(T) + ")");

  AttentionPlan plan;
  NPR_TRY(attention_plan(st, &plan, dense_causal));
  DeviceAttentionPlan dplan;
  NPR_TRY(dplan.upload(ctx, plan));

  const int64_t es = dev_dtype_size(t);
  const int64_t nq = T * shape.heads * shape.head_dim;     // q, out, dout, dq
  const int64_t nk = T * shape.kv_heads * shape.head_dim;  // k, v, dk, dv
  DeviceAllocator& a = ctx.alloc();
  DeviceBuffer q, k, v, o, lse, dout, dq, dk, dv, count, tokens, samples;
  NPR_TRY(q.grow(a, nq * es, "attention timing: q"));
  NPR_TRY(k.grow(a, nk * es, "attention timing: k"));
  NPR_TRY(v.grow(a, nk * es, "attention timing: v"));
  NPR_TRY(o.grow(a, nq * es, "attention timing: out"));
  NPR_TRY(lse.grow(a, T * shape.heads * 4, "attention timing: lse"));
  NPR_TRY(count.grow(a, 8, "attention timing: non-finite count"));
  if (options.backward) {
    NPR_TRY(dout.grow(a, nq * es, "attention timing: dout"));
    NPR_TRY(dq.grow(a, nq * es, "attention timing: dq"));
    NPR_TRY(dk.grow(a, nk * es, "attention timing: dk"));
    NPR_TRY(dv.grow(a, nk * es, "attention timing: dv"));
  }
  NPR_TRY(fill_hash(ctx, t, q.get(), nq, kTimingSeedQ));
  NPR_TRY(fill_hash(ctx, t, k.get(), nk, kTimingSeedK));
  NPR_TRY(fill_hash(ctx, t, v.get(), nk, kTimingSeedV));
  if (options.backward) NPR_TRY(fill_hash(ctx, t, dout.get(), nq, kTimingSeedDout));

  auto forward = [&]() {
    return attention_forward_cuda(ctx, t, dplan, o.get(), lse.as<float>(), q.get(), k.get(),
                                  v.get(), shape);
  };
  auto forward_backward = [&]() {
    NPR_TRY(forward());
    return attention_backward_cuda(ctx, t, dplan, dq.get(), dk.get(), dv.get(), dout.get(), q.get(),
                                   k.get(), v.get(), o.get(), lse.as<float>(), shape);
  };

  AttentionTiming r;
  r.iters = options.iters;
  NPR_TRY(time_runs(ctx, options.warmup, options.iters, forward, &r.fwd_ms_median, &r.fwd_ms_min));
  if (options.backward)
    NPR_TRY(time_runs(ctx, options.warmup, options.iters, forward_backward, &r.fwdbwd_ms_median,
                      &r.fwdbwd_ms_min));
  else
    NPR_TRY(forward());  // out and lse of the last run are a forward's either way

  // Non-finite outputs: out and lse of the last forward; dq, dk, dv of the last backward.
  unsigned long long* c = count.as<unsigned long long>();
  unsigned long long host_count = 0;
  NPR_TRY(ctx.zero(c, 8, "attention timing: zero count"));
  NPR_TRY(count_nonfinite(ctx, t, o.get(), nq, c));
  NPR_TRY(count_nonfinite(ctx, DevDType::kF32, lse.get(), T * shape.heads, c));
  NPR_TRY(ctx.download(&host_count, c, 8, "attention timing: download count"));
  r.nonfinite_out = static_cast<int64_t>(host_count);
  if (options.backward) {
    NPR_TRY(ctx.zero(c, 8, "attention timing: zero count"));
    NPR_TRY(count_nonfinite(ctx, t, dq.get(), nq, c));
    NPR_TRY(count_nonfinite(ctx, t, dk.get(), nk, c));
    NPR_TRY(count_nonfinite(ctx, t, dv.get(), nk, c));
    NPR_TRY(ctx.download(&host_count, c, 8, "attention timing: download count"));
    r.nonfinite_grads = static_cast<int64_t>(host_count);
  }

  if (options.sample_count > 0) {
    const int64_t S = options.sample_count;
    NPR_TRY(tokens.grow(a, S * 4, "attention timing: sample tokens"));
    NPR_TRY(ctx.upload(tokens.get(), options.sample_tokens, S * 4, "attention timing: tokens"));
    const int32_t* tok = tokens.as<int32_t>();
    const int64_t wq = shape.heads * shape.head_dim, wk = shape.kv_heads * shape.head_dim;
    NPR_TRY(gather_rows(ctx, t, o.get(), tok, S, wq, samples, &r.sample_out));
    if (options.backward) {
      NPR_TRY(gather_rows(ctx, t, dq.get(), tok, S, wq, samples, &r.sample_dq));
      NPR_TRY(gather_rows(ctx, t, dk.get(), tok, S, wk, samples, &r.sample_dk));
      NPR_TRY(gather_rows(ctx, t, dv.get(), tok, S, wk, samples, &r.sample_dv));
    }
  }

  r.visible_pairs = plan.visible_pairs;
  r.causal_pairs = plan.causal_pairs;
  r.tiles_causal = plan.tiles_causal;
  r.tiles_full = plan.tiles_full;
  r.tiles_partial = plan.tiles_partial;
  r.tiles_skip = plan.tiles_skip;
  r.plan_bytes = dplan.bytes();
  r.forward_wgmma = attention_forward_uses_wgmma(ctx, t, shape);
  r.device_peak_bytes = a.peak_bytes();
  *out = std::move(r);
  return Status::ok();
}

}  // namespace npr
