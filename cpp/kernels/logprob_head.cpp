#include "kernels/logprob_head.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/gemm.h"
#include "kernels/rmsnorm.h"

namespace npr {

namespace {

constexpr int64_t kRowChunk = 64;     // rows of one logits tile
constexpr int64_t kVocabChunk = 512;  // columns of one logits tile

Status check(const LogprobHeadShape& s, const int32_t* targets) {
  if (s.rows < 0 || s.hidden <= 0 || s.vocab <= 0)
    return Status::invalid("logprob head: rows must be >= 0, hidden and vocab > 0");
  for (int64_t r = 0; r < s.rows; ++r)
    if (targets[r] < 0 || targets[r] >= s.vocab)
      return Status::out_of_range(
          "logprob head: target " + std::to_string(targets[r]) + " of row " + std::to_string(r) +
          " is outside the vocabulary [0, " + std::to_string(s.vocab) + ")");
  return Status::ok();
}

int parts_of(const CpuContext& ctx, int64_t vocab) {
  const int threads = ctx.pool ? ctx.pool->size() : 1;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, vocab / kVocabChunk)));
}

template <typename F>
void run_parts(const CpuContext& ctx, int parts, F&& fn) {
  if (parts == 1 || !ctx.pool) {
    for (int p = 0; p < parts; ++p) fn(p);
  } else {
    ctx.pool->parallel_for(parts, [&](int64_t p, int) { fn(static_cast<int>(p)); });
  }
}

// logits tile (rows_n, cols_n) = hn[r0:] . W[v0:]^T on one thread.
void logits_tile(SimdLevel simd, float* tile, const float* hn, const float* W, int64_t r0,
                 int64_t rows_n, int64_t v0, int64_t cols_n, int64_t hidden) {
  GemmShape g;
  g.m = rows_n;
  g.n = cols_n;
  g.k = hidden;
  g.tb = Trans::kT;
  g.lda = hidden;
  g.ldb = hidden;
  g.ldc = cols_n;
  (void)gemm_f32(CpuContext{nullptr, simd}, g, hn + r0 * hidden, W + v0 * hidden, tile);
}

}  // namespace

Status logprob_head_forward(const CpuContext& ctx, float* logprob, float* lse, float* entropy,
                            float* hn, float* rstd, const float* h, const float* norm_w,
                            const float* W, const int32_t* targets, const LogprobHeadShape& s) {
  NPR_TRY(check(s, targets));
  if (s.rows == 0) return Status::ok();
  rmsnorm_forward(ctx, hn, rstd, h, norm_w, s.rows, s.hidden, s.eps);
  const int parts = parts_of(ctx, s.vocab);
  // Per part and row: running max, sum of exp(l - max), sum of exp(l - max) * l, target logit.
  std::vector<double> mx(parts * s.rows, -INFINITY), se(parts * s.rows, 0.0),
      sl(parts * s.rows, 0.0);
  std::vector<float> tgt(static_cast<size_t>(s.rows), 0.0f);
  run_parts(ctx, parts, [&](int p) {
    const int64_t v0 = s.vocab * p / parts, v1 = s.vocab * (p + 1) / parts;
    std::vector<float> tile(static_cast<size_t>(kRowChunk * kVocabChunk));  // (rows, cols)
    for (int64_t r0 = 0; r0 < s.rows; r0 += kRowChunk) {
      const int64_t rn = std::min(kRowChunk, s.rows - r0);
      for (int64_t c0 = v0; c0 < v1; c0 += kVocabChunk) {
        const int64_t cn = std::min(kVocabChunk, v1 - c0);
        logits_tile(ctx.simd, tile.data(), hn, W, r0, rn, c0, cn, s.hidden);
        for (int64_t i = 0; i < rn; ++i) {
          const int64_t r = r0 + i;
          const float* row = tile.data() + i * cn;
          double& m = mx[p * s.rows + r];
          double& e = se[p * s.rows + r];
          double& l = sl[p * s.rows + r];
          float tmax = row[0];
          for (int64_t j = 1; j < cn; ++j) tmax = std::max(tmax, row[j]);
          if (tmax > m) {  // rescale the running sums to the new maximum
            const double f = std::exp(m - tmax);
            e *= f;
            l *= f;
            m = tmax;
          }
          float fe = 0.0f, fl = 0.0f;
          for (int64_t j = 0; j < cn; ++j) {
            const float x = std::exp(row[j] - static_cast<float>(m));
            fe += x;
            fl += x * row[j];
          }
          e += fe;
          l += fl;
          const int32_t t = targets[r];
          if (t >= c0 && t < c0 + cn) tgt[r] = row[t - c0];
        }
      }
    }
  });
  for (int64_t r = 0; r < s.rows; ++r) {
    double m = -INFINITY;
    for (int p = 0; p < parts; ++p) m = std::max(m, mx[p * s.rows + r]);
    double e = 0.0, l = 0.0;
    for (int p = 0; p < parts; ++p) {
      const double f = std::exp(mx[p * s.rows + r] - m);
      e += se[p * s.rows + r] * f;
      l += sl[p * s.rows + r] * f;
    }
    const double z = m + std::log(e);
    lse[r] = static_cast<float>(z);
    logprob[r] = static_cast<float>(tgt[r] - z);
    if (entropy) entropy[r] = static_cast<float>(z - l / e);
  }
  return Status::ok();
}

Status logprob_head_backward(const CpuContext& ctx, float* dh, float* dnorm_w, float* dW,
                             const float* dlogprob, const float* h, const float* hn,
                             const float* rstd, const float* lse, const float* norm_w,
                             const float* W, const int32_t* targets, const LogprobHeadShape& s) {
  NPR_TRY(check(s, targets));
  if (s.rows == 0) return Status::ok();
  const int parts = parts_of(ctx, s.vocab);
  std::vector<float> dhn(static_cast<size_t>(parts * s.rows * s.hidden),
                         0.0f);  // (parts, rows, hidden)
  run_parts(ctx, parts, [&](int p) {
    const int64_t v0 = s.vocab * p / parts, v1 = s.vocab * (p + 1) / parts;
    std::vector<float> tile(static_cast<size_t>(kRowChunk * kVocabChunk));
    float* my_dhn = dhn.data() + p * s.rows * s.hidden;
    CpuContext single{nullptr, ctx.simd};
    for (int64_t r0 = 0; r0 < s.rows; r0 += kRowChunk) {
      const int64_t rn = std::min(kRowChunk, s.rows - r0);
      for (int64_t c0 = v0; c0 < v1; c0 += kVocabChunk) {
        const int64_t cn = std::min(kVocabChunk, v1 - c0);
        logits_tile(ctx.simd, tile.data(), hn, W, r0, rn, c0, cn, s.hidden);
        // dlogit = dlogprob * (onehot(target) - softmax), in place.
        for (int64_t i = 0; i < rn; ++i) {
          const int64_t r = r0 + i;
          float* row = tile.data() + i * cn;
          const float g = dlogprob[r], z = lse[r];
          for (int64_t j = 0; j < cn; ++j) row[j] = -g * std::exp(row[j] - z);
          const int32_t t = targets[r];
          if (t >= c0 && t < c0 + cn) row[t - c0] += g;
        }
        GemmShape gw;  // dW[c0:c0+cn] (cn, hidden) += dlogit^T (cn, rn) . hn (rn, hidden)
        gw.m = cn;
        gw.n = s.hidden;
        gw.k = rn;
        gw.ta = Trans::kT;
        gw.lda = cn;
        gw.ldb = s.hidden;
        gw.ldc = s.hidden;
        gw.beta = 1.0f;
        (void)gemm_f32(single, gw, tile.data(), hn + r0 * s.hidden, dW + c0 * s.hidden);
        GemmShape gh;  // dhn (rn, hidden) += dlogit (rn, cn) . W[c0:] (cn, hidden)
        gh.m = rn;
        gh.n = s.hidden;
        gh.k = cn;
        gh.lda = cn;
        gh.ldb = s.hidden;
        gh.ldc = s.hidden;
        gh.beta = 1.0f;
        (void)gemm_f32(single, gh, tile.data(), W + c0 * s.hidden, my_dhn + r0 * s.hidden);
      }
    }
  });
  for (int p = 1; p < parts; ++p) {
    const float* src = dhn.data() + p * s.rows * s.hidden;
    for (int64_t i = 0; i < s.rows * s.hidden; ++i) dhn[i] += src[i];
  }
  rmsnorm_backward(ctx, dh, dnorm_w, dhn.data(), h, norm_w, rstd, s.rows, s.hidden);
  return Status::ok();
}

void logprob_head_forward_reference(float* logprob, float* entropy, const float* h,
                                    const float* norm_w, const float* W, const int32_t* targets,
                                    const LogprobHeadShape& s) {
  std::vector<double> hn(static_cast<size_t>(s.hidden)), logits(static_cast<size_t>(s.vocab));
  for (int64_t r = 0; r < s.rows; ++r) {
    double ss = 0.0;
    for (int64_t i = 0; i < s.hidden; ++i)
      ss += static_cast<double>(h[r * s.hidden + i]) * h[r * s.hidden + i];
    const double rs = 1.0 / std::sqrt(ss / s.hidden + s.eps);
    for (int64_t i = 0; i < s.hidden; ++i) hn[i] = h[r * s.hidden + i] * rs * norm_w[i];
    double m = -INFINITY;
    for (int64_t v = 0; v < s.vocab; ++v) {
      double acc = 0.0;
      for (int64_t i = 0; i < s.hidden; ++i) acc += hn[i] * W[v * s.hidden + i];
      logits[v] = acc;
      m = std::max(m, acc);
    }
    double e = 0.0, l = 0.0;
    for (int64_t v = 0; v < s.vocab; ++v) {
      const double x = std::exp(logits[v] - m);
      e += x;
      l += x * logits[v];
    }
    const double z = m + std::log(e);
    logprob[r] = static_cast<float>(logits[targets[r]] - z);
    if (entropy) entropy[r] = static_cast<float>(z - l / e);
  }
}

void logprob_head_backward_reference(float* dh, float* dnorm_w, float* dW, const float* dlogprob,
                                     const float* h, const float* norm_w, const float* W,
                                     const int32_t* targets, const LogprobHeadShape& s) {
  const int64_t H = s.hidden;
  std::vector<double> hn(H), xhat(H), logits(s.vocab), dhn(H);
  for (int64_t r = 0; r < s.rows; ++r) {
    double ss = 0.0;
    for (int64_t i = 0; i < H; ++i) ss += static_cast<double>(h[r * H + i]) * h[r * H + i];
    const double rs = 1.0 / std::sqrt(ss / H + s.eps);
    for (int64_t i = 0; i < H; ++i) {
      xhat[i] = h[r * H + i] * rs;
      hn[i] = xhat[i] * norm_w[i];
    }
    double m = -INFINITY;
    for (int64_t v = 0; v < s.vocab; ++v) {
      double acc = 0.0;
      for (int64_t i = 0; i < H; ++i) acc += hn[i] * W[v * H + i];
      logits[v] = acc;
      m = std::max(m, acc);
    }
    double e = 0.0;
    for (int64_t v = 0; v < s.vocab; ++v) e += std::exp(logits[v] - m);
    std::fill(dhn.begin(), dhn.end(), 0.0);
    for (int64_t v = 0; v < s.vocab; ++v) {
      const double g = dlogprob[r] * ((v == targets[r] ? 1.0 : 0.0) - std::exp(logits[v] - m) / e);
      for (int64_t i = 0; i < H; ++i) {
        dW[v * H + i] += static_cast<float>(g * hn[i]);
        dhn[i] += g * W[v * H + i];
      }
    }
    double dot = 0.0;
    for (int64_t i = 0; i < H; ++i) dot += xhat[i] * norm_w[i] * dhn[i];
    for (int64_t i = 0; i < H; ++i) {
      dh[r * H + i] = static_cast<float>(rs * (norm_w[i] * dhn[i] - xhat[i] * dot / H));
      dnorm_w[i] += static_cast<float>(dhn[i] * xhat[i]);
    }
  }
}

}  // namespace npr
