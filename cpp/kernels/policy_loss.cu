// policy_loss_cuda (see policy_loss_cuda.h). Five kernels on ctx's stream over a workspace in
// the context's reduction scratch: (1) per token, its term (policy_loss_token.h) and flags, the
// first bad token by atomicMin (the minimum does not depend on the order); (2) per sequence,
// the sum of its mask weights in token order; (3) one block: the tally (counts, ratio and KL
// sums, ratio min/max, live sequences); the host reads it, reports a bad token or derives the
// aggregation's denominator; (4) per token, weight x gradient into dlogprob and weight x loss
// into the workspace; (5) one block: the loss.
#include <cuda_runtime.h>

#include <climits>
#include <cmath>
#include <string>

#include "core/cuda_check.cuh"
#include "core/cuda_launch.cuh"
#include "core/dynamic_shared.cuh"
#include "kernels/policy_loss_cuda.h"
#include "kernels/policy_loss_token.h"

namespace npr {

namespace {

constexpr int kThreads = 256;
constexpr uint8_t kMasked = 1, kSpecial = 2, kEps = 4, kDual = 8;

// What the device hands back: the shared tally, the sequences with a masked token, and the
// first bad token.
struct DeviceTally {
  PolicyLossTally tally;
  int64_t live;
  int first_bad;
};

unsigned grid_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 65535 ? (b > 0 ? b : 1) : 65535);
}

__global__ void terms_kernel(double* loss, double* grad, double* ratio, double* kl, uint8_t* flags,
                             int* first_bad, const float* lp, const float* lp_old, const float* adv,
                             const float* mask, const uint8_t* special, int64_t tokens,
                             PolicyLossParams p) {
  const bool ppo = p.kind == PolicyLossKind::kPpoClip;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < tokens;
       t += stride) {
    PolicyTokenTerm tt;
    uint8_t f = 0;
    tt.ratio = 0.0;
    if (mask[t] > 0.0f) {
      const double a = adv[t];
      if (!isfinite(a) || !isfinite(lp[t]) || (ppo && !isfinite(lp_old[t]))) {
        atomicMin(first_bad, static_cast<int>(t));
      } else {
        const bool sp = special != nullptr && special[t] != 0;
        tt = policy_token_term(a, lp[t], ppo ? lp_old[t] : 0.0f, sp, p);
        f = kMasked | (sp ? kSpecial : 0) | (tt.eps_clipped ? kEps : 0) |
            (tt.dual_clipped ? kDual : 0);
      }
    }
    loss[t] = tt.loss;
    grad[t] = tt.grad;
    ratio[t] = tt.ratio;
    kl[t] = tt.kl;
    flags[t] = f;
  }
}

// count[s] = sum of the positive mask weights of sequence s, in token order.
__global__ void seq_count_kernel(double* count, const int32_t* cu, const float* mask,
                                 int64_t sequences) {
  const int64_t s = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (s >= sequences) return;
  double c = 0.0;
  for (int32_t t = cu[s]; t < cu[s + 1]; ++t)
    if (mask[t] > 0.0f) c += mask[t];
  count[s] = c;
}

// Block-wide reductions in a fixed tree (blockDim.x == kThreads).
template <typename V, typename Op>
__device__ V block_reduce(V v, V* sm, Op op) {
  sm[threadIdx.x] = v;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w >>= 1) {
    if (static_cast<int>(threadIdx.x) < w)
      sm[threadIdx.x] = op(sm[threadIdx.x], sm[threadIdx.x + w]);
    __syncthreads();
  }
  const V r = sm[0];
  __syncthreads();
  return r;
}

__global__ void __launch_bounds__(kThreads)
    tally_kernel(DeviceTally* out, const double* ratio, const double* kl, const uint8_t* flags,
                 const double* count, int64_t tokens, int64_t sequences) {
  NPR_STATIC_SHARED(long long, si, [kThreads]);
  NPR_STATIC_SHARED(double, sd, [kThreads]);
  long long n = 0, ns = 0, ne = 0, nd = 0, nsc = 0, live = 0;
  double rs = 0.0, ks = 0.0, rmin = INFINITY, rmax = -INFINITY;
  for (int64_t t = threadIdx.x; t < tokens; t += kThreads) {
    const uint8_t f = flags[t];
    if (!(f & kMasked)) continue;
    ++n;
    ns += (f & kSpecial) ? 1 : 0;
    ne += (f & kEps) ? 1 : 0;
    nd += (f & kDual) ? 1 : 0;
    nsc += ((f & kSpecial) && (f & (kEps | kDual))) ? 1 : 0;
    rs += ratio[t];
    ks += kl[t];
    rmin = fmin(rmin, ratio[t]);
    rmax = fmax(rmax, ratio[t]);
  }
  for (int64_t s = threadIdx.x; s < sequences; s += kThreads) live += count[s] > 0.0 ? 1 : 0;
  const auto add_i = [](long long a, long long b) { return a + b; };
  const auto add_d = [](double a, double b) { return a + b; };
  n = block_reduce(n, si, add_i);
  ns = block_reduce(ns, si, add_i);
  ne = block_reduce(ne, si, add_i);
  nd = block_reduce(nd, si, add_i);
  nsc = block_reduce(nsc, si, add_i);
  live = block_reduce(live, si, add_i);
  rs = block_reduce(rs, sd, add_d);
  ks = block_reduce(ks, sd, add_d);
  rmin = block_reduce(rmin, sd, [](double a, double b) { return fmin(a, b); });
  rmax = block_reduce(rmax, sd, [](double a, double b) { return fmax(a, b); });
  if (threadIdx.x == 0) {
    PolicyLossTally& t = out->tally;
    t.tokens = n;
    t.special_tokens = ns;
    t.clipped = ne;
    t.clipped_lower = nd;
    t.special_clipped = nsc;
    t.ratio_sum = rs;
    t.kl_sum = ks;
    t.ratio_min = rmin;
    t.ratio_max = rmax;
    out->live = live;
  }
}

// w = 1 / D for the token mean (per_seq false); else w_s = per_s / S with per_s = 1 / count_s
// (token mean within the sequence) or 1, as policy_loss.cpp computes them.
__global__ void weights_kernel(float* dlogprob, double* weighted, const double* loss,
                               const double* grad, const float* mask, const int32_t* cu,
                               const double* count, int64_t tokens, int64_t sequences, bool per_seq,
                               bool seq_token_mean, double w_token, double S) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < tokens;
       t += stride) {
    double w = w_token;
    if (per_seq) {
      // The last s with cu[s] <= t: the token's sequence (empty sequences end before it).
      int64_t lo = 0, hi = sequences - 1;
      while (lo < hi) {
        const int64_t mid = (lo + hi + 1) / 2;
        if (cu[mid] <= t)
          lo = mid;
        else
          hi = mid - 1;
      }
      const double c = count[lo];
      const double per = seq_token_mean ? (c > 0 ? 1.0 / c : 0.0) : 1.0;
      w = S > 0 ? per / S : 0.0;
    }
    const double wt = mask[t] > 0.0f ? w * mask[t] : 0.0;
    weighted[t] = wt * loss[t];
    dlogprob[t] = static_cast<float>(wt * grad[t]);
  }
}

__global__ void __launch_bounds__(kThreads) sum_kernel(double* out, const double* v, int64_t n) {
  NPR_STATIC_SHARED(double, sd, [kThreads]);
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += kThreads) s += v[i];
  s = block_reduce(s, sd, [](double a, double b) { return a + b; });
  if (threadIdx.x == 0) *out = s;
}

}  // namespace

Status policy_loss_cuda(CudaContext& ctx, float* dlogprob, PolicyLossMetrics* m, const float* lp,
                        const float* lp_old, const float* adv, const float* mask,
                        const uint8_t* special, const int32_t* cu_seqlens, int64_t sequences,
                        int64_t tokens, const PolicyLossParams& p) {
  NPR_TRY(policy_loss_check(cu_seqlens, sequences, tokens, p));
  if (tokens >= INT_MAX) return Status::out_of_range("policy_loss_cuda: at most 2^31 - 2 tokens");
  if (tokens > 0 &&
      (!dlogprob || !lp || !adv || !mask || (p.kind == PolicyLossKind::kPpoClip && !lp_old)))
    return Status::invalid("policy_loss_cuda: null device pointer");
  // Workspace: tally | cu (S + 1) | count (S) | loss, grad, ratio, kl, weighted (T) | flags (T).
  auto up = [](int64_t b) { return (b + 255) / 256 * 256; };
  const int64_t T = tokens > 0 ? tokens : 1, S = sequences;
  const int64_t o_cu = up(sizeof(DeviceTally)), o_count = o_cu + up(4 * (S + 1)),
                o_terms = o_count + up(8 * S), o_flags = o_terms + 5 * up(8 * T),
                bytes = o_flags + up(T) + up(8);
  void* ws = nullptr;
  NPR_TRY(ctx.scratch(CudaContext::kScratchReduce, bytes, &ws));
  char* base = static_cast<char*>(ws);
  auto* tally = reinterpret_cast<DeviceTally*>(base);
  auto* cu = reinterpret_cast<int32_t*>(base + o_cu);
  auto* count = reinterpret_cast<double*>(base + o_count);
  auto term = [&](int i) { return reinterpret_cast<double*>(base + o_terms + i * up(8 * T)); };
  double *loss = term(0), *grad = term(1), *ratio = term(2), *kl = term(3), *weighted = term(4);
  auto* flags = reinterpret_cast<uint8_t*>(base + o_flags);
  auto* loss_sum = reinterpret_cast<double*>(base + o_flags + up(T));
  cudaStream_t st = static_cast<cudaStream_t>(ctx.stream());

  NPR_TRY(ctx.upload(cu, cu_seqlens, 4 * (S + 1), "policy_loss_cuda: cu_seqlens"));
  NPR_CUDA_TRY(cudaMemsetAsync(&tally->first_bad, 0x7f, sizeof(int), st),
               "policy_loss_cuda: reset");
  if (tokens > 0) {
    NPR_LAUNCH(grid_for(tokens), kThreads, 0, st, terms_kernel)
    (loss, grad, ratio, kl, flags, &tally->first_bad, lp, lp_old, adv, mask, special, tokens, p);
    NPR_TRY(cuda_launch_status("policy_loss_cuda: terms"));
  }
  NPR_LAUNCH(grid_for(S), kThreads, 0, st, seq_count_kernel)(count, cu, mask, S);
  NPR_TRY(cuda_launch_status("policy_loss_cuda: sequence weights"));
  NPR_LAUNCH(1, kThreads, 0, st, tally_kernel)(tally, ratio, kl, flags, count, tokens, S);
  NPR_TRY(cuda_launch_status("policy_loss_cuda: tally"));
  DeviceTally h;
  NPR_TRY(ctx.download(&h, tally, sizeof(DeviceTally), "policy_loss_cuda: tally"));
  if (h.first_bad != 0x7f7f7f7f)
    return Status::out_of_range("policy_loss: non-finite logprob or advantage at token " +
                                std::to_string(h.first_bad));

  const bool per_seq = p.aggregation != LossAggregation::kTokenMean;
  const double D = p.denominator > 0 ? p.denominator : static_cast<double>(h.tally.tokens);
  const double w_token = D > 0 ? 1.0 / D : 0.0;
  const double S_div = p.denominator > 0 ? p.denominator : static_cast<double>(h.live);
  double loss_total = 0.0;
  if (tokens > 0) {
    NPR_LAUNCH(grid_for(tokens), kThreads, 0, st, weights_kernel)
    (dlogprob, weighted, loss, grad, mask, cu, count, tokens, S, per_seq,
     p.aggregation == LossAggregation::kSeqMeanTokenMean, w_token, S_div);
    NPR_TRY(cuda_launch_status("policy_loss_cuda: weights"));
    NPR_LAUNCH(1, kThreads, 0, st, sum_kernel)(loss_sum, weighted, tokens);
    NPR_TRY(cuda_launch_status("policy_loss_cuda: loss"));
    NPR_TRY(ctx.download(&loss_total, loss_sum, sizeof(double), "policy_loss_cuda: loss"));
  }
  *m = policy_loss_metrics(h.tally, loss_total);
  return Status::ok();
}

}  // namespace npr
