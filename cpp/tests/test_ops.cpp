// Elementwise and row-wise ops of the model against their double references, plus finite
// differences on the backward passes: rmsnorm, rope, swiglu, embedding, linear, adamw.
#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/adamw.h"
#include "kernels/embedding.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"
#include "tests/harness.h"
#include "tests/test_util.h"

namespace npr::test {

namespace {

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

ThreadPool& pool2() {
  static ThreadPool p(2);
  return p;
}

}  // namespace

TEST(rmsnorm_matches_reference_and_finite_differences) {
  Rng rng(21);
  for (SimdLevel level : runnable_simd_levels()) {
    CpuContext ctx{&pool2(), level};
    for (const auto& rd : {std::pair<int64_t, int64_t>{1, 16}, {7, 33}, {97, 128}, {40, 1}}) {
      const int64_t rows = rd.first, dim = rd.second;
      auto x = random_vector(rng, rows * dim), w = random_vector(rng, dim),
           dy = random_vector(rng, rows * dim);
      auto y = poisoned(rows * dim), yr = poisoned(rows * dim), rs = poisoned(rows),
           rsr = poisoned(rows);
      rmsnorm_forward(ctx, y.data(), rs.data(), x.data(), w.data(), rows, dim, 1e-6f);
      rmsnorm_forward_reference(yr.data(), rsr.data(), x.data(), w.data(), rows, dim, 1e-6f);
      CHECK(max_abs_diff(y, yr) < 1e-5);
      auto dx = poisoned(rows * dim), dxr = poisoned(rows * dim);
      std::vector<float> dw(dim, 0.0f), dwr(dim, 0.0f);
      rmsnorm_backward(ctx, dx.data(), dw.data(), dy.data(), x.data(), w.data(), rs.data(), rows,
                       dim);
      rmsnorm_backward_reference(dxr.data(), dwr.data(), dy.data(), x.data(), w.data(), rows, dim,
                                 1e-6f);
      CHECK(max_abs_diff(dx, dxr) < 1e-4);
      CHECK(max_abs_diff(dw, dwr) < 1e-4 * rows);
      // Finite differences of L = <dy, y(x)> along a random direction of x, and of w. Not for
      // dim 1, where y = sign(x) w has a near-singular derivative at x ~ 0 that no step resolves.
      if (dim == 1) continue;
      auto dirx = random_vector(rng, rows * dim), dirw = random_vector(rng, dim);
      const float h = 1e-3f;
      auto loss = [&](const std::vector<float>& xx, const std::vector<float>& ww) {
        std::vector<float> yy(rows * dim), r(rows);
        rmsnorm_forward_reference(yy.data(), r.data(), xx.data(), ww.data(), rows, dim, 1e-6f);
        return dot(dy, yy);
      };
      auto xp = x, xm = x, wp = w, wm = w;
      for (size_t i = 0; i < x.size(); ++i) xp[i] += h * dirx[i], xm[i] -= h * dirx[i];
      for (size_t i = 0; i < w.size(); ++i) wp[i] += h * dirw[i], wm[i] -= h * dirw[i];
      const double fdx = (loss(xp, w) - loss(xm, w)) / (2 * h),
                   fdw = (loss(x, wp) - loss(x, wm)) / (2 * h);
      CHECK_MSG(std::fabs(fdx - dot(dx, dirx)) < 1e-2 * (1 + std::fabs(fdx)),
                "rmsnorm dx fd " + std::to_string(fdx) + " vs " + std::to_string(dot(dx, dirx)));
      CHECK_MSG(std::fabs(fdw - dot(dw, dirw)) < 1e-2 * (1 + std::fabs(fdw)),
                "rmsnorm dw fd " + std::to_string(fdw) + " vs " + std::to_string(dot(dw, dirw)));
    }
  }
}

TEST(rope_matches_reference_and_backward_is_its_transpose) {
  Rng rng(22);
  CpuContext ctx{&pool2(), detect_simd()};
  for (auto [tokens, heads, dim] :
       {std::tuple<int64_t, int64_t, int64_t>{1, 1, 2}, {17, 3, 16}, {97, 2, 128}}) {
    std::vector<int32_t> pos(tokens);
    for (auto& p : pos) p = static_cast<int32_t>(rng.below(40000));  // long contexts too
    for (double theta : {10000.0, 1000000.0}) {
      RopeTable table;
      rope_table_build(&table, pos.data(), tokens, dim, theta);
      auto x = random_vector(rng, tokens * heads * dim),
           y = random_vector(rng, tokens * heads * dim);
      auto fast = x, ref = x;
      rope_apply(ctx, fast.data(), table, heads, dim, false);
      rope_apply_reference(ref.data(), pos.data(), tokens, heads, dim, theta, false);
      CHECK(max_abs_diff(fast, ref) < 2e-6);
      // <R x, y> == <x, R^T y>: the backward is the transpose of the forward.
      auto ry = y;
      rope_apply(ctx, ry.data(), table, heads, dim, true);
      CHECK(std::fabs(dot(fast, y) - dot(x, ry)) < 1e-4 * (1 + std::fabs(dot(x, ry))));
      // and the inverse undoes the forward
      rope_apply(ctx, fast.data(), table, heads, dim, true);
      CHECK(max_abs_diff(fast, x) < 1e-5);
    }
  }
}

TEST(swiglu_matches_reference_and_finite_differences) {
  Rng rng(23);
  CpuContext ctx{&pool2(), detect_simd()};
  for (int64_t n : {1, 17, 100003}) {
    auto g = random_vector(rng, n), u = random_vector(rng, n), dh = random_vector(rng, n);
    for (auto& x : g) x *= 6.0f;  // cover the saturated parts of the sigmoid
    auto h = poisoned(n), hr = poisoned(n);
    swiglu_forward(ctx, h.data(), g.data(), u.data(), n);
    swiglu_forward_reference(hr.data(), g.data(), u.data(), n);
    CHECK(max_abs_diff(h, hr) < 1e-5);
    auto dg = poisoned(n), du = poisoned(n), dgr = poisoned(n), dur = poisoned(n);
    swiglu_backward(ctx, dg.data(), du.data(), dh.data(), g.data(), u.data(), n);
    swiglu_backward_reference(dgr.data(), dur.data(), dh.data(), g.data(), u.data(), n);
    CHECK(max_abs_diff(dg, dgr) < 1e-5);
    CHECK(max_abs_diff(du, dur) < 1e-5);
    const float eps = 1e-3f;
    for (int64_t i = 0; i < std::min<int64_t>(n, 50); ++i) {
      float hp, hm;
      float gp = g[i] + eps, gm = g[i] - eps;
      swiglu_forward_reference(&hp, &gp, &u[i], 1);
      swiglu_forward_reference(&hm, &gm, &u[i], 1);
      CHECK(std::fabs((hp - hm) / (2 * eps) * dh[i] - dgr[i]) < 2e-2 * (1 + std::fabs(dgr[i])));
    }
  }
}

TEST(swiglu_stacked_rows_match_the_reference_on_split_gate_and_up) {
  Rng rng(29);
  CpuContext ctx{&pool2(), detect_simd()};
  for (auto [rows, inter] : {std::pair<int64_t, int64_t>{1, 1}, {3, 17}, {9, 3072}, {70, 333}}) {
    auto gu = random_vector(rng, rows * 2 * inter);
    for (auto& x : gu) x *= 6.0f;
    std::vector<float> g(static_cast<size_t>(rows * inter)), u(g.size());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < inter; ++i) {
        g[r * inter + i] = gu[r * 2 * inter + i];
        u[r * inter + i] = gu[r * 2 * inter + inter + i];
      }
    auto h = poisoned(rows * inter), hr = poisoned(rows * inter);
    swiglu_forward_stacked(ctx, h.data(), gu.data(), rows, inter);
    swiglu_forward_reference(hr.data(), g.data(), u.data(), rows * inter);
    CHECK(max_abs_diff(h, hr) < 1e-5);
  }
}

TEST(embedding_gathers_and_scatters_with_repeated_ids) {
  Rng rng(24);
  const int64_t vocab = 13, dim = 37, tokens = 101;
  std::vector<int32_t> ids(tokens);
  for (auto& i : ids) i = static_cast<int32_t>(rng.below(vocab));
  auto table = random_vector(rng, vocab * dim), dout = random_vector(rng, tokens * dim);
  for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool2()}) {
    CpuContext ctx{p, detect_simd()};
    auto out = poisoned(tokens * dim);
    embedding_forward(ctx, out.data(), table.data(), ids.data(), tokens, dim);
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t c = 0; c < dim; ++c) CHECK(out[t * dim + c] == table[ids[t] * dim + c]);
    std::vector<float> dt(vocab * dim, 0.0f), want(vocab * dim, 0.0f);
    embedding_backward(ctx, dt.data(), dout.data(), ids.data(), tokens, dim);
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t c = 0; c < dim; ++c) want[ids[t] * dim + c] += dout[t * dim + c];
    CHECK(max_abs_diff(dt, want) == 0.0);  // same summation order: bit-identical
  }
}

TEST(adamw_matches_reference) {
  Rng rng(25);
  for (int64_t n : {1, 1000, 70001}) {
    auto p = random_vector(rng, n), g = random_vector(rng, n);
    std::vector<float> m(n, 0.0f), v(n, 0.0f);
    auto pr = p, mr = m, vr = v;
    CpuContext ctx{&pool2(), detect_simd()};
    for (int64_t step = 1; step <= 5; ++step) {
      AdamWParams a;
      a.lr = 1e-2f;
      a.beta1 = 0.9f;
      a.beta2 = 0.95f;
      a.weight_decay = 0.1f;
      a.step = step;
      a.grad_scale = step == 3 ? 0.5f : 1.0f;
      adamw_step(ctx, p.data(), m.data(), v.data(), g.data(), n, a);
      adamw_step_reference(pr.data(), mr.data(), vr.data(), g.data(), n, a);
    }
    CHECK(max_abs_diff(p, pr) < 1e-5);
    CHECK(max_abs_diff(m, mr) < 1e-6);
    CHECK(max_abs_diff(v, vr) < 1e-6);
    double ss = 0.0;
    for (float x : g) ss += static_cast<double>(x) * x;
    CHECK(std::fabs(sum_squares(CpuContext{&pool2(), detect_simd()}, g.data(), n) - ss) <
          1e-9 * (1 + ss));
  }
}

}  // namespace npr::test
