// Naive attention in double precision: the oracle for every attention kernel.
#include <cmath>
#include <vector>

#include "kernels/attention.h"

namespace npr {

namespace {
// Probabilities (double) of query row i of head h over keys [s0, i] of its sequence.
void probs(std::vector<double>* p, double* lse_out, const float* q, const float* k,
           const AttentionShape& sh, const StructureView& st, int64_t s0, int64_t i, int64_t h) {
  const int64_t D = sh.head_dim, kvh = h / (sh.heads / sh.kv_heads);
  p->assign(static_cast<size_t>(i - s0 + 1), 0.0);
  double m = -INFINITY;
  for (int64_t j = s0; j <= i; ++j) {
    if (!structure_visible(st, i, j)) {
      (*p)[j - s0] = -INFINITY;
      continue;
    }
    double dot = 0.0;
    for (int64_t d = 0; d < D; ++d)
      dot +=
          static_cast<double>(q[(i * sh.heads + h) * D + d]) * k[(j * sh.kv_heads + kvh) * D + d];
    (*p)[j - s0] = dot * sh.scale;
    m = std::max(m, (*p)[j - s0]);
  }
  double sum = 0.0;
  for (double& x : *p) sum += (x = std::exp(x - m));
  for (double& x : *p) x /= sum;
  *lse_out = m + std::log(sum);
}
}  // namespace

void attention_forward_reference(float* out, float* lse, const float* q, const float* k,
                                 const float* v, const AttentionShape& sh,
                                 const StructureView& st) {
  const int64_t D = sh.head_dim;
  std::vector<double> p;
  for (int64_t s = 0; s < st.sequences; ++s) {
    const int64_t s0 = st.cu_seqlens[s], s1 = st.cu_seqlens[s + 1];
    for (int64_t i = s0; i < s1; ++i) {
      for (int64_t h = 0; h < sh.heads; ++h) {
        const int64_t kvh = h / (sh.heads / sh.kv_heads);
        double l;
        probs(&p, &l, q, k, sh, st, s0, i, h);
        lse[i * sh.heads + h] = static_cast<float>(l);
        for (int64_t d = 0; d < D; ++d) {
          double acc = 0.0;
          for (int64_t j = s0; j <= i; ++j) acc += p[j - s0] * v[(j * sh.kv_heads + kvh) * D + d];
          out[(i * sh.heads + h) * D + d] = static_cast<float>(acc);
        }
      }
    }
  }
}

void attention_backward_reference(float* dq, float* dk, float* dv, const float* dout,
                                  const float* q, const float* k, const float* v,
                                  const AttentionShape& sh, const StructureView& st) {
  const int64_t D = sh.head_dim;
  const int64_t T = st.tokens;
  std::vector<double> gq(static_cast<size_t>(T * sh.heads * D), 0.0);
  std::vector<double> gk(static_cast<size_t>(T * sh.kv_heads * D), 0.0), gv(gk.size(), 0.0);
  std::vector<double> p, dp;
  for (int64_t s = 0; s < st.sequences; ++s) {
    const int64_t s0 = st.cu_seqlens[s], s1 = st.cu_seqlens[s + 1];
    for (int64_t i = s0; i < s1; ++i) {
      for (int64_t h = 0; h < sh.heads; ++h) {
        const int64_t kvh = h / (sh.heads / sh.kv_heads);
        double l;
        probs(&p, &l, q, k, sh, st, s0, i, h);
        const float* go = dout + (i * sh.heads + h) * D;
        dp.assign(p.size(), 0.0);
        double delta = 0.0;  // sum_j p_j * dp_j
        for (int64_t j = s0; j <= i; ++j) {
          double acc = 0.0;
          for (int64_t d = 0; d < D; ++d)
            acc += static_cast<double>(go[d]) * v[(j * sh.kv_heads + kvh) * D + d];
          dp[j - s0] = acc;
          delta += p[j - s0] * acc;
          for (int64_t d = 0; d < D; ++d) gv[(j * sh.kv_heads + kvh) * D + d] += p[j - s0] * go[d];
        }
        for (int64_t j = s0; j <= i; ++j) {
          const double ds = p[j - s0] * (dp[j - s0] - delta) * sh.scale;
          for (int64_t d = 0; d < D; ++d) {
            gq[(i * sh.heads + h) * D + d] += ds * k[(j * sh.kv_heads + kvh) * D + d];
            gk[(j * sh.kv_heads + kvh) * D + d] += ds * q[(i * sh.heads + h) * D + d];
          }
        }
      }
    }
  }
  for (size_t i = 0; i < gq.size(); ++i) dq[i] = static_cast<float>(gq[i]);
  for (size_t i = 0; i < gk.size(); ++i) {
    dk[i] = static_cast<float>(gk[i]);
    dv[i] = static_cast<float>(gv[i]);
  }
}

}  // namespace npr
