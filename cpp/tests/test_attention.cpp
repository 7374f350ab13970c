// Attention over packed batches with a Structure: the dense-masked fast path against the naive
// double reference on random structures (several sequences, blocks of 1..5 steps of odd
// lengths, GQA ratios 1/2/4, head dims 16 and 64), forward and all gradients; sibling
// isolation bit for bit; and the reference's own gradients against finite differences.
#include <algorithm>
#include <cmath>
#include <string>

#include "core/thread_pool.h"
#include "kernels/attention.h"
#include "tests/harness.h"
#include "tests/test_structures.h"
#include "tests/test_util.h"

namespace npr::test {

namespace {
ThreadPool& pool3() {
  static ThreadPool p(3);
  return p;
}
}  // namespace

TEST(attention_matches_reference_on_random_structures) {
  Rng rng(31);
  for (auto [heads, kv_heads, dim] :
       {std::tuple<int64_t, int64_t, int64_t>{2, 2, 16}, {4, 2, 16}, {4, 1, 64}, {8, 2, 64}}) {
    for (int trial = 0; trial < 3; ++trial) {
      RandomStructure rs = random_structure(rng, 1 + trial, 2, 5, 9 + 4 * trial);
      const StructureView st = rs.view();
      CHECK_OK(check_structure(st));
      const int64_t T = rs.tokens;
      AttentionShape sh{heads, kv_heads, dim,
                        static_cast<float>(1.0 / std::sqrt(static_cast<double>(dim)))};
      auto q = random_vector(rng, T * heads * dim), k = random_vector(rng, T * kv_heads * dim),
           v = random_vector(rng, T * kv_heads * dim), dout = random_vector(rng, T * heads * dim);
      for (auto& x : q) x *= 2.0f;  // sharper softmax
      auto out = poisoned(T * heads * dim), lse = poisoned(T * heads);
      auto ro = poisoned(T * heads * dim), rl = poisoned(T * heads);
      CpuContext ctx{trial == 0 ? nullptr : &pool3(), detect_simd()};
      CHECK_OK(attention_forward_dense(ctx, out.data(), lse.data(), q.data(), k.data(), v.data(),
                                       sh, st));
      attention_forward_reference(ro.data(), rl.data(), q.data(), k.data(), v.data(), sh, st);
      const std::string what = "heads " + std::to_string(heads) + "/" + std::to_string(kv_heads) +
                               " D " + std::to_string(dim) + " T " + std::to_string(T);
      CHECK_MSG(max_rel(out, ro) < 1e-5, what + ": out " + std::to_string(max_rel(out, ro)));
      CHECK_MSG(max_rel(lse, rl) < 1e-5, what + ": lse");
      auto dq = poisoned(T * heads * dim), dk = poisoned(T * kv_heads * dim),
           dv = poisoned(T * kv_heads * dim);
      auto rq = poisoned(T * heads * dim), rk = poisoned(T * kv_heads * dim),
           rv = poisoned(T * kv_heads * dim);
      CHECK_OK(attention_backward_dense(ctx, dq.data(), dk.data(), dv.data(), dout.data(), q.data(),
                                        k.data(), v.data(), out.data(), lse.data(), sh, st));
      attention_backward_reference(rq.data(), rk.data(), rv.data(), dout.data(), q.data(), k.data(),
                                   v.data(), sh, st);
      CHECK_MSG(max_rel(dq, rq) < 1e-4, what + ": dq " + std::to_string(max_rel(dq, rq)));
      CHECK_MSG(max_rel(dk, rk) < 1e-4, what + ": dk " + std::to_string(max_rel(dk, rk)));
      CHECK_MSG(max_rel(dv, rv) < 1e-4, what + ": dv " + std::to_string(max_rel(dv, rv)));
    }
  }
}

TEST(attention_siblings_are_isolated_bit_for_bit) {
  Rng rng(32);
  RandomStructure rs;
  do rs = random_structure(rng, 1, 1, 4, 7);
  while (*std::max_element(rs.step.begin(), rs.step.end()) < 1);  // at least two steps
  const StructureView st = rs.view();
  const int64_t T = rs.tokens, H = 4, KV = 2, D = 16;
  AttentionShape sh{H, KV, D, 0.25f};
  auto q = random_vector(rng, T * H * D), k = random_vector(rng, T * KV * D),
       v = random_vector(rng, T * KV * D);
  auto dout = random_vector(rng, T * H * D);
  // Upstream gradient only up to the end of the block: queries after it see every step, so
  // their gradient legitimately reaches the keys of all steps (through the changed softmax).
  int64_t block_end = 0;
  for (int64_t t = 0; t < T; ++t)
    if (rs.block[t] >= 0) block_end = t + 1;
  for (int64_t i = block_end * H * D; i < T * H * D; ++i) dout[i] = 0.0f;
  // Perturb the keys/values/queries of every token of step 0; nothing in step 1 may move.
  auto q2 = q, k2 = k, v2 = v;
  for (int64_t t = 0; t < T; ++t)
    if (rs.step[t] == 0) {
      for (int64_t i = 0; i < H * D; ++i) q2[t * H * D + i] += 0.5f;
      for (int64_t i = 0; i < KV * D; ++i) k2[t * KV * D + i] -= 0.3f, v2[t * KV * D + i] += 0.7f;
    }
  CpuContext ctx{&pool3(), detect_simd()};
  auto run = [&](const std::vector<float>& qq, const std::vector<float>& kk,
                 const std::vector<float>& vv, std::vector<float>* out, std::vector<float>* dq,
                 std::vector<float>* dk) {
    std::vector<float> lse(T * H), dv(T * KV * D);
    out->assign(T * H * D, 0.0f);
    dq->assign(T * H * D, 0.0f);
    dk->assign(T * KV * D, 0.0f);
    CHECK_OK(attention_forward_dense(ctx, out->data(), lse.data(), qq.data(), kk.data(), vv.data(),
                                     sh, st));
    CHECK_OK(attention_backward_dense(ctx, dq->data(), dk->data(), dv.data(), dout.data(),
                                      qq.data(), kk.data(), vv.data(), out->data(), lse.data(), sh,
                                      st));
  };
  std::vector<float> o1, dq1, dk1, o2, dq2, dk2;
  run(q, k, v, &o1, &dq1, &dk1);
  run(q2, k2, v2, &o2, &dq2, &dk2);
  bool after_changed = false;
  for (int64_t t = 0; t < T; ++t) {
    const bool sibling = rs.step[t] >= 1;
    for (int64_t i = 0; i < H * D; ++i) {
      if (sibling) {
        CHECK(o1[t * H * D + i] == o2[t * H * D + i]);
        CHECK(dq1[t * H * D + i] == dq2[t * H * D + i]);
      }
      if (rs.block[t] == -1 && t > 0 && rs.block[t - 1] >= 0)
        after_changed |= o1[t * H * D + i] != o2[t * H * D + i];
    }
    if (sibling)
      for (int64_t i = 0; i < KV * D; ++i) CHECK(dk1[t * KV * D + i] == dk2[t * KV * D + i]);
  }
  CHECK_MSG(after_changed, "the token after the block sees every step, so it must change");
}

TEST(attention_reference_gradients_match_finite_differences) {
  Rng rng(33);
  RandomStructure rs = random_structure(rng, 2, 1, 3, 5);
  const StructureView st = rs.view();
  const int64_t T = rs.tokens, H = 2, KV = 1, D = 8;
  AttentionShape sh{H, KV, D, 0.35f};
  auto q = random_vector(rng, T * H * D), k = random_vector(rng, T * KV * D),
       v = random_vector(rng, T * KV * D);
  auto dout = random_vector(rng, T * H * D);
  std::vector<float> dq(T * H * D), dk(T * KV * D), dv(T * KV * D);
  attention_backward_reference(dq.data(), dk.data(), dv.data(), dout.data(), q.data(), k.data(),
                               v.data(), sh, st);
  auto loss = [&](const std::vector<float>& qq, const std::vector<float>& kk,
                  const std::vector<float>& vv) {
    std::vector<float> out(T * H * D), lse(T * H);
    attention_forward_reference(out.data(), lse.data(), qq.data(), kk.data(), vv.data(), sh, st);
    double s = 0.0;
    for (size_t i = 0; i < out.size(); ++i) s += static_cast<double>(out[i]) * dout[i];
    return s;
  };
  const float h = 1e-2f;
  for (int trial = 0; trial < 12; ++trial) {
    const int which = trial % 3;
    std::vector<float>* x = which == 0 ? &q : which == 1 ? &k : &v;
    const std::vector<float>& g = which == 0 ? dq : which == 1 ? dk : dv;
    const int64_t i = rng.below(static_cast<int64_t>(x->size()));
    const float keep = (*x)[i];
    (*x)[i] = keep + h;
    const double lp = loss(q, k, v);
    (*x)[i] = keep - h;
    const double lm = loss(q, k, v);
    (*x)[i] = keep;
    const double fd = (lp - lm) / (2 * h);
    CHECK_MSG(std::fabs(fd - g[i]) < 2e-3 + 1e-2 * std::fabs(fd),
              "which " + std::to_string(which) + " fd " + std::to_string(fd) + " vs " +
                  std::to_string(g[i]));
  }
}

}  // namespace npr::test
