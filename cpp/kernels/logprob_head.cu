// The fused logprob head on the device (see logprob_head_cuda.h).
//
// Forward: one row-wise RMSNorm of all rows (fp32 h, fp32 norm_w -> hn in type t, rstd), then
// per chunk of rows: logits (chunk, vocab) fp32 = hn . W^T by gemm_cuda into scratch slot
// kScratchHead, and one block per row reduces max, sum of exp and sum of exp * (logit - max)
// to lse, logprob = logit[target] - lse and the entropy log(se) - sum(p * (l - max)).
// Backward, per chunk: recompute the logits, dlogits = dlogprob * (onehot - exp(l - lse)) (in
// type t; in place in fp32 mode), dhn = dlogits . W straight into dh (fp32), dW += dlogits^T .
// hn (fp32, beta 1). After the last chunk: dnorm_w += sum over rows of dhn * xhat, as per-64-row
// partials (scratch kScratchReduce) summed in segment order, then the RMSNorm backward rewrites
// dh in place. Every reduction has a fixed order; no atomics. The RMSNorm kernels are private
// to the head (rmsnorm.cu is the model's general one). Not here: vocabulary-parallel splits of
// one row (a block loops over the whole row), fused GEMM + softmax epilogues.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "core/cuda_check.cuh"
#include "core/cuda_dtype.cuh"
#include "core/cuda_launch.cuh"
#include "core/dynamic_shared.cuh"
#include "kernels/gemm_cuda.h"
#include "kernels/logprob_head_cuda.h"

namespace npr {

namespace {

constexpr int kBlock = 256;       // threads of the row kernels
constexpr int kSegRows = 64;      // rows per dnorm_w partial
constexpr int kColThreads = 128;  // threads of the column kernels

// Sum / max over the block (blockDim.x a multiple of 32, <= 1024); every thread gets the
// result. Fixed order: warp butterflies, then the warp totals in warp order.
__device__ float block_sum(float v, float* red) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();  // red may still be read by a previous reduction
  if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = v;
  __syncthreads();
  float s = 0.0f;
  for (int w = 0; w < static_cast<int>(blockDim.x / 32); ++w) s += red[w];
  return s;
}
__device__ float block_max(float v, float* red) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();
  if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = v;
  __syncthreads();
  float m = -INFINITY;
  for (int w = 0; w < static_cast<int>(blockDim.x / 32); ++w) m = fmaxf(m, red[w]);
  return m;
}

// hn (rows, hidden) T, rstd (rows) <- h (rows, hidden), w (hidden); one block per row.
template <typename T>
__global__ void head_rmsnorm_kernel(T* __restrict__ hn, float* __restrict__ rstd,
                                    const float* __restrict__ h, const float* __restrict__ w,
                                    int64_t hidden, float eps) {
  NPR_STATIC_SHARED(float, red, [32]);
  const int64_t r = blockIdx.x;
  const float* x = h + r * hidden;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) ss += x[i] * x[i];
  ss = block_sum(ss, red);
  const float rs = 1.0f / sqrtf(ss / static_cast<float>(hidden) + eps);
  if (threadIdx.x == 0) rstd[r] = rs;
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x)
    hn[r * hidden + i] = from_f32<T>(x[i] * rs * w[i]);
}

// Per row of logits (rows, vocab): lse, logprob, entropy (may be null); one block per row.
__global__ void head_lse_kernel(float* __restrict__ logprob, float* __restrict__ lse,
                                float* __restrict__ entropy, const float* __restrict__ logits,
                                const int32_t* __restrict__ targets, int64_t vocab) {
  NPR_STATIC_SHARED(float, red, [32]);
  const int64_t r = blockIdx.x;
  const float* row = logits + r * vocab;
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) m = fmaxf(m, row[j]);
  m = block_max(m, red);
  float se = 0.0f, sl = 0.0f;  // sum exp(l - m), sum exp(l - m) * (l - m)
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) {
    const float d = row[j] - m;
    const float e = expf(d);
    se += e;
    sl += e * d;
  }
  se = block_sum(se, red);
  sl = block_sum(sl, red);
  if (threadIdx.x == 0) {
    const float z = m + logf(se);
    const int32_t t = targets[r];
    lse[r] = z;
    logprob[r] = (t >= 0 && t < vocab) ? row[t] - z : NAN;
    if (entropy) entropy[r] = logf(se) - sl / se;
  }
}

// dl (rows, vocab) T = dlogprob * (onehot(target) - exp(logits - lse)); dl may alias logits
// (T = float): each element is read and written by the same thread.
template <typename T>
__global__ void head_dlogits_kernel(T* dl, const float* logits, const float* __restrict__ dlogprob,
                                    const float* __restrict__ lse,
                                    const int32_t* __restrict__ targets, int64_t vocab) {
  const int64_t r = blockIdx.x;
  const float g = dlogprob[r], z = lse[r];
  const int32_t t = targets[r];
  const bool bad = t < 0 || t >= vocab;
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) {
    float v = -g * expf(logits[r * vocab + j] - z);
    if (j == t) v += g;
    dl[r * vocab + j] = from_f32<T>(bad ? NAN : v);
  }
}

// partial (segments, hidden): segment s sums dhn * h * rstd over rows [s * seg, (s+1) * seg).
__global__ void head_dnorm_partial_kernel(float* __restrict__ partial,
                                          const float* __restrict__ dhn,
                                          const float* __restrict__ h,
                                          const float* __restrict__ rstd, int64_t rows,
                                          int64_t hidden, int64_t seg_rows) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= hidden) return;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * seg_rows;
  const int64_t r1 = r0 + seg_rows < rows ? r0 + seg_rows : rows;
  float acc = 0.0f;
  for (int64_t r = r0; r < r1; ++r) acc += dhn[r * hidden + i] * (h[r * hidden + i] * rstd[r]);
  partial[blockIdx.y * hidden + i] = acc;
}

// dnorm_w (hidden) += the partials, in segment order.
__global__ void head_dnorm_reduce_kernel(float* __restrict__ dnorm_w,
                                         const float* __restrict__ partial, int64_t segments,
                                         int64_t hidden) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= hidden) return;
  float acc = 0.0f;
  for (int64_t s = 0; s < segments; ++s) acc += partial[s * hidden + i];
  dnorm_w[i] += acc;
}

// dh (rows, hidden): in dhn, out rstd * (w * dhn - xhat * mean(xhat * w * dhn)); one block per
// row, each element read and rewritten by the same thread.
__global__ void head_rmsnorm_backward_kernel(float* dh, const float* __restrict__ h,
                                             const float* __restrict__ w,
                                             const float* __restrict__ rstd, int64_t hidden) {
  NPR_STATIC_SHARED(float, red, [32]);
  const int64_t r = blockIdx.x;
  const float rs = rstd[r];
  float* d = dh + r * hidden;
  const float* x = h + r * hidden;
  float dot = 0.0f;
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) dot += x[i] * rs * w[i] * d[i];
  dot = block_sum(dot, red);
  const float mean = dot / static_cast<float>(hidden);
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x)
    d[i] = rs * (w[i] * d[i] - x[i] * rs * mean);
}

Status check(const char* what, const LogprobHeadShape& s) {
  if (s.rows < 0 || s.hidden <= 0 || s.vocab <= 0)
    return Status::invalid(std::string(what) + ": rows must be >= 0, hidden and vocab > 0 (got " +
                           std::to_string(s.rows) + ", " + std::to_string(s.hidden) + ", " +
                           std::to_string(s.vocab) + ")");
  if (s.rows > INT32_MAX || s.vocab > INT32_MAX)
    return Status::out_of_range(std::string(what) + ": rows and vocab must fit in int32");
  return Status::ok();
}

// logits (rn, vocab) fp32 = hn[r0 : r0 + rn] . W^T.
Status logits_tile(CudaContext& ctx, DevDType t, float* logits, const void* hn, const void* W,
                   int64_t r0, int64_t rn, const LogprobHeadShape& s) {
  GemmShape g;
  g.m = rn;
  g.n = s.vocab;
  g.k = s.hidden;
  g.tb = Trans::kT;
  g.lda = s.hidden;
  g.ldb = s.hidden;
  g.ldc = s.vocab;
  const char* a = static_cast<const char*>(hn) + r0 * s.hidden * dev_dtype_size(t);
  return gemm_cuda(ctx, g, t, DevDType::kF32, a, W, logits);
}

int64_t round_up(int64_t x, int64_t to) {
  return (x + to - 1) / to * to;
}

}  // namespace

int64_t logprob_head_cuda_chunk_rows(int64_t rows, int64_t bytes_per_row, int64_t max_chunk_rows) {
  int64_t c = kLogprobHeadWorkspaceBytes / (bytes_per_row > 0 ? bytes_per_row : 1);
  if (c >= 256) c = c / 128 * 128;  // whole GEMM tiles
  if (max_chunk_rows > 0 && c > max_chunk_rows) c = max_chunk_rows;
  if (c > rows) c = rows;
  return c < 1 ? 1 : c;
}

Status logprob_head_forward_cuda(CudaContext& ctx, DevDType t, float* logprob, float* lse,
                                 float* entropy, void* hn, float* rstd, const float* h,
                                 const float* norm_w, const void* W, const int32_t* targets,
                                 const LogprobHeadShape& s, int64_t max_chunk_rows) {
  NPR_TRY(check("logprob_head_forward_cuda", s));
  if (s.rows == 0) return Status::ok();
  cudaStream_t st = static_cast<cudaStream_t>(ctx.stream());
  const unsigned rows = static_cast<unsigned>(s.rows);
  if (t == DevDType::kF32) NPR_LAUNCH(rows, kBlock, 0, st, head_rmsnorm_kernel<float>)
  (static_cast<float*>(hn), rstd, h, norm_w, s.hidden, s.eps);
  else NPR_LAUNCH(rows, kBlock, 0, st, head_rmsnorm_kernel<__nv_bfloat16>)(
      static_cast<__nv_bfloat16*>(hn), rstd, h, norm_w, s.hidden, s.eps);
  NPR_TRY(cuda_launch_status("logprob head: rmsnorm kernel"));

  const int64_t chunk = logprob_head_cuda_chunk_rows(s.rows, s.vocab * 4, max_chunk_rows);
  void* ws = nullptr;
  NPR_TRY(ctx.scratch(CudaContext::kScratchHead, chunk * s.vocab * 4, &ws));
  float* logits = static_cast<float*>(ws);  // (chunk, vocab)
  for (int64_t r0 = 0; r0 < s.rows; r0 += chunk) {
    const int64_t rn = s.rows - r0 < chunk ? s.rows - r0 : chunk;
    NPR_TRY(logits_tile(ctx, t, logits, hn, W, r0, rn, s));
    NPR_LAUNCH(static_cast<unsigned>(rn), kBlock, 0, st, head_lse_kernel)
    (logprob + r0, lse + r0, entropy ? entropy + r0 : nullptr, logits, targets + r0, s.vocab);
    NPR_TRY(cuda_launch_status("logprob head: lse kernel"));
  }
  return Status::ok();
}

Status logprob_head_backward_cuda(CudaContext& ctx, DevDType t, float* dh, float* dnorm_w,
                                  float* dW, const float* dlogprob, const float* h, const void* hn,
                                  const float* rstd, const float* lse, const float* norm_w,
                                  const void* W, const int32_t* targets, const LogprobHeadShape& s,
                                  int64_t max_chunk_rows) {
  NPR_TRY(check("logprob_head_backward_cuda", s));
  if (s.rows == 0) return Status::ok();
  cudaStream_t st = static_cast<cudaStream_t>(ctx.stream());
  const bool bf16 = t == DevDType::kBF16;
  const int64_t chunk =
      logprob_head_cuda_chunk_rows(s.rows, s.vocab * (bf16 ? 6 : 4), max_chunk_rows);
  // Workspace: logits (chunk, vocab) fp32, then (bf16 mode) dlogits (chunk, vocab) bf16 at a
  // 256-byte aligned offset (the GEMM's vector loads want 16-byte aligned operands).
  const int64_t logits_bytes = round_up(chunk * s.vocab * 4, 256);
  void* ws = nullptr;
  NPR_TRY(
      ctx.scratch(CudaContext::kScratchHead, logits_bytes + (bf16 ? chunk * s.vocab * 2 : 0), &ws));
  float* logits = static_cast<float*>(ws);
  void* dl = bf16 ? static_cast<void*>(static_cast<char*>(ws) + logits_bytes) : ws;

  for (int64_t r0 = 0; r0 < s.rows; r0 += chunk) {
    const int64_t rn = s.rows - r0 < chunk ? s.rows - r0 : chunk;
    NPR_TRY(logits_tile(ctx, t, logits, hn, W, r0, rn, s));
    const unsigned grid = static_cast<unsigned>(rn);
    if (bf16) NPR_LAUNCH(grid, kBlock, 0, st, head_dlogits_kernel<__nv_bfloat16>)
    (static_cast<__nv_bfloat16*>(dl), logits, dlogprob + r0, lse + r0, targets + r0, s.vocab);
    else NPR_LAUNCH(grid, kBlock, 0, st, head_dlogits_kernel<float>)(
        static_cast<float*>(dl), logits, dlogprob + r0, lse + r0, targets + r0, s.vocab);
    NPR_TRY(cuda_launch_status("logprob head: dlogits kernel"));

    GemmShape gh;  // dhn (rn, hidden) fp32 = dlogits (rn, vocab) . W (vocab, hidden), into dh
    gh.m = rn;
    gh.n = s.hidden;
    gh.k = s.vocab;
    gh.lda = s.vocab;
    gh.ldb = s.hidden;
    gh.ldc = s.hidden;
    NPR_TRY(gemm_cuda(ctx, gh, t, DevDType::kF32, dl, W, dh + r0 * s.hidden));

    GemmShape gw;  // dW (vocab, hidden) += dlogits^T (vocab, rn) . hn[r0:] (rn, hidden)
    gw.m = s.vocab;
    gw.n = s.hidden;
    gw.k = rn;
    gw.ta = Trans::kT;
    gw.lda = s.vocab;
    gw.ldb = s.hidden;
    gw.ldc = s.hidden;
    gw.beta = 1.0f;
    const char* hn_r0 = static_cast<const char*>(hn) + r0 * s.hidden * dev_dtype_size(t);
    NPR_TRY(gemm_cuda(ctx, gw, t, DevDType::kF32, dl, hn_r0, dW));
  }

  // dnorm_w: fixed segments of rows, then the segments in order.
  int64_t seg_rows = kSegRows;
  if ((s.rows + seg_rows - 1) / seg_rows > 65535) seg_rows = (s.rows + 65534) / 65535;
  const int64_t segments = (s.rows + seg_rows - 1) / seg_rows;
  void* red = nullptr;
  NPR_TRY(ctx.scratch(CudaContext::kScratchReduce, segments * s.hidden * 4, &red));
  float* partial = static_cast<float*>(red);  // (segments, hidden)
  const unsigned col_blocks = static_cast<unsigned>((s.hidden + kColThreads - 1) / kColThreads);
  NPR_LAUNCH(dim3(col_blocks, static_cast<unsigned>(segments)), kColThreads, 0, st,
             head_dnorm_partial_kernel)
  (partial, dh, h, rstd, s.rows, s.hidden, seg_rows);
  NPR_TRY(cuda_launch_status("logprob head: dnorm_w partial kernel"));
  NPR_LAUNCH(col_blocks, kColThreads, 0, st, head_dnorm_reduce_kernel)
  (dnorm_w, partial, segments, s.hidden);
  NPR_TRY(cuda_launch_status("logprob head: dnorm_w reduce kernel"));
  NPR_LAUNCH(static_cast<unsigned>(s.rows), kBlock, 0, st, head_rmsnorm_backward_kernel)
  (dh, h, norm_w, rstd, s.hidden);
  return cuda_launch_status("logprob head: rmsnorm backward kernel");
}

}  // namespace npr
