// Dense-masked attention through the GEMM (see attention.h). One task per (sequence, kv head):
// the task runs the query heads of its group one after another, so dk and dv rows are only
// ever written by one thread.
#include "kernels/attention.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/gemm.h"

namespace npr {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

Status check_shape(const AttentionShape& s) {
  if (s.heads <= 0 || s.kv_heads <= 0 || s.head_dim <= 0 || s.heads % s.kv_heads != 0)
    return Status::invalid("attention: heads (" + std::to_string(s.heads) +
                           ") must be a positive multiple of kv_heads (" +
                           std::to_string(s.kv_heads) + ") and head_dim positive");
  return Status::ok();
}

// Scores (L, L) of one head of one sequence, scaled, invisible entries -inf.
void masked_scores(SimdLevel simd, float* S, const float* q, const float* k, int64_t s0, int64_t L,
                   const AttentionShape& sh, int64_t h, int64_t kvh, const StructureView& st) {
  GemmShape g;
  g.m = L;
  g.n = L;
  g.k = sh.head_dim;
  g.tb = Trans::kT;
  g.lda = sh.heads * sh.head_dim;
  g.ldb = sh.kv_heads * sh.head_dim;
  g.ldc = L;
  g.alpha = sh.scale;
  CpuContext single{nullptr, simd};
  (void)gemm_f32(single, g, q + s0 * g.lda + h * sh.head_dim, k + s0 * g.ldb + kvh * sh.head_dim,
                 S);
  for (int64_t i = 0; i < L; ++i) {
    float* row = S + i * L;
    for (int64_t j = i + 1; j < L; ++j) row[j] = kNegInf;
    if (st.depth > 0)
      for (int64_t j = 0; j < i; ++j)
        if (!structure_visible(st, s0 + i, s0 + j)) row[j] = kNegInf;
  }
}

template <typename F>
void for_each_group(const CpuContext& ctx, const StructureView& st, int64_t kv_heads, F&& fn) {
  const int64_t tasks = st.sequences * kv_heads;
  auto body = [&](int64_t t) { fn(t / kv_heads, t % kv_heads); };
  if (ctx.pool && tasks > 1) {
    ctx.pool->parallel_for(tasks, [&](int64_t t, int) { body(t); });
  } else {
    for (int64_t t = 0; t < tasks; ++t) body(t);
  }
}

}  // namespace

Status attention_forward_dense(const CpuContext& ctx, float* out, float* lse, const float* q,
                               const float* k, const float* v, const AttentionShape& sh,
                               const StructureView& st) {
  NPR_TRY(check_shape(sh));
  const int64_t group = sh.heads / sh.kv_heads, D = sh.head_dim;
  CpuContext single{nullptr, ctx.simd};
  for_each_group(ctx, st, sh.kv_heads, [&](int64_t seq, int64_t kvh) {
    const int64_t s0 = st.cu_seqlens[seq], L = st.cu_seqlens[seq + 1] - s0;
    if (L == 0) return;
    std::vector<float> S(static_cast<size_t>(L * L));  // (L, L) scores, then probabilities
    for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
      masked_scores(ctx.simd, S.data(), q, k, s0, L, sh, h, kvh, st);
      for (int64_t i = 0; i < L; ++i) {
        float* row = S.data() + i * L;
        float m = kNegInf;
        for (int64_t j = 0; j <= i; ++j) m = row[j] > m ? row[j] : m;
        double sum = 0.0;
        for (int64_t j = 0; j <= i; ++j) {
          row[j] = std::exp(row[j] - m);
          sum += row[j];
        }
        const float inv = static_cast<float>(1.0 / sum);
        for (int64_t j = 0; j <= i; ++j) row[j] *= inv;
        for (int64_t j = i + 1; j < L; ++j) row[j] = 0.0f;
        lse[(s0 + i) * sh.heads + h] = m + static_cast<float>(std::log(sum));
      }
      GemmShape g;  // out_h (L, D) = P (L, L) . V (L, D)
      g.m = L;
      g.n = D;
      g.k = L;
      g.lda = L;
      g.ldb = sh.kv_heads * D;
      g.ldc = sh.heads * D;
      (void)gemm_f32(single, g, S.data(), v + s0 * g.ldb + kvh * D, out + s0 * g.ldc + h * D);
    }
  });
  return Status::ok();
}

Status attention_backward_dense(const CpuContext& ctx, float* dq, float* dk, float* dv,
                                const float* dout, const float* q, const float* k, const float* v,
                                const float* out, const float* lse, const AttentionShape& sh,
                                const StructureView& st) {
  NPR_TRY(check_shape(sh));
  const int64_t group = sh.heads / sh.kv_heads, D = sh.head_dim;
  const int64_t ldq = sh.heads * D, ldk = sh.kv_heads * D;
  CpuContext single{nullptr, ctx.simd};
  for_each_group(ctx, st, sh.kv_heads, [&](int64_t seq, int64_t kvh) {
    const int64_t s0 = st.cu_seqlens[seq], L = st.cu_seqlens[seq + 1] - s0;
    if (L == 0) return;
    for (int64_t t = s0; t < s0 + L; ++t)
      for (int64_t d = 0; d < D; ++d) dk[t * ldk + kvh * D + d] = dv[t * ldk + kvh * D + d] = 0.0f;
    std::vector<float> P(static_cast<size_t>(L * L)), dP(static_cast<size_t>(L * L));
    std::vector<float> delta(static_cast<size_t>(L));  // rowsum(dO * O)
    for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
      masked_scores(ctx.simd, P.data(), q, k, s0, L, sh, h, kvh, st);
      for (int64_t i = 0; i < L; ++i) {
        const float l = lse[(s0 + i) * sh.heads + h];
        float* row = P.data() + i * L;
        for (int64_t j = 0; j < L; ++j) row[j] = j <= i ? std::exp(row[j] - l) : 0.0f;
        const float* o = out + (s0 + i) * ldq + h * D;
        const float* go = dout + (s0 + i) * ldq + h * D;
        float acc = 0.0f;
        for (int64_t d = 0; d < D; ++d) acc += o[d] * go[d];
        delta[i] = acc;
      }
      GemmShape g;  // dP (L, L) = dO (L, D) . V^T
      g.m = L;
      g.n = L;
      g.k = D;
      g.tb = Trans::kT;
      g.lda = ldq;
      g.ldb = ldk;
      g.ldc = L;
      (void)gemm_f32(single, g, dout + s0 * ldq + h * D, v + s0 * ldk + kvh * D, dP.data());
      // dS = P * (dP - delta), kept in dP; exp(-inf) = 0 zeroes the invisible entries.
      for (int64_t i = 0; i < L; ++i)
        for (int64_t j = 0; j < L; ++j) dP[i * L + j] = P[i * L + j] * (dP[i * L + j] - delta[i]);
      g = GemmShape();  // dq_h (L, D) = scale * dS (L, L) . K (L, D)
      g.m = L;
      g.n = D;
      g.k = L;
      g.lda = L;
      g.ldb = ldk;
      g.ldc = ldq;
      g.alpha = sh.scale;
      (void)gemm_f32(single, g, dP.data(), k + s0 * ldk + kvh * D, dq + s0 * ldq + h * D);
      g = GemmShape();  // dk (L, D) += scale * dS^T . Q_h
      g.m = L;
      g.n = D;
      g.k = L;
      g.ta = Trans::kT;
      g.lda = L;
      g.ldb = ldq;
      g.ldc = ldk;
      g.alpha = sh.scale;
      g.beta = 1.0f;
      (void)gemm_f32(single, g, dP.data(), q + s0 * ldq + h * D, dk + s0 * ldk + kvh * D);
      g.alpha = 1.0f;  // dv (L, D) += P^T . dO_h
      g.ldb = ldq;
      (void)gemm_f32(single, g, P.data(), dout + s0 * ldq + h * D, dv + s0 * ldk + kvh * D);
    }
  });
  return Status::ok();
}

}  // namespace npr
