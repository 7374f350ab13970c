// The training path's elementwise and row ops on the device against their CPU twins: rmsnorm,
// rope, swiglu, embedding / index-add, AdamW, sum of squares, casts, adds, row gathers.
//
// Random inputs of odd sizes, outputs poisoned with NaN first (an unwritten element fails).
// fp32 outputs: max relative error < 1e-5 against the CPU op on the same inputs (sums over rows
// get a bound that grows with the row count). bf16 outputs: ||err|| / ||ref|| < 1e-2 against the
// fp32 CPU op on bf16-rounded inputs. Index-adds and gathers must match bit for bit. Runs where
// a CUDA device answers; elsewhere each case skips with the reason.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/cpu_info.h"
#include "core/dtype.h"
#include "kernels/adamw.h"
#include "kernels/embedding.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"
#include "tests/harness.h"
#include "tests/test_util.h"

#if defined(NPR_WITH_CUDA)
#include "kernels/adamw_cuda.h"
#include "kernels/elementwise_cuda.h"
#include "kernels/embedding_cuda.h"
#include "kernels/rmsnorm_cuda.h"
#include "kernels/rope_cuda.h"
#include "kernels/swiglu_cuda.h"
#include "tests/test_cuda_util.h"
#endif

namespace npr::test {

#if defined(NPR_WITH_CUDA)
namespace {

const int64_t kRows[] = {1, 17, 97, 513};
const int64_t kDims[] = {8, 24, 64, 1000, 1024};
const DevDType kTypes[] = {DevDType::kF32, DevDType::kBF16};
const CpuContext kCpu{};  // one thread: the plain CPU twin

std::string where(const char* op, int64_t a, int64_t b, DevDType t) {
  return std::string(op) + " (" + std::to_string(a) + ", " + std::to_string(b) + ") " +
         dev_dtype_name(t);
}

// An output of type t against its fp32 oracle, with the tolerance of the module comment.
void check_close(const std::string& what, const std::vector<float>& got,
                 const std::vector<float>& want, DevDType t) {
  if (t == DevDType::kF32) {
    const double e = max_rel(got, want);
    CHECK_MSG(e < 1e-5, what + ": max rel error " + std::to_string(e));
  } else {
    const double e = rel_norm_error(got, want);
    CHECK_MSG(e < 1e-2, what + ": rel norm error " + std::to_string(e));
  }
}

std::vector<float> rounded_if(DevDType t, const std::vector<float>& v) {
  return t == DevDType::kBF16 ? bf16_rounded(v) : v;
}

void rmsnorm_forward_case(CudaContext& ctx, Rng& rng, int64_t rows, int64_t dim) {
  const auto x = random_vector(rng, rows * dim), w = random_vector(rng, dim);  // (rows, dim), (dim)
  for (DevDType tx : kTypes) {
    const auto xin = rounded_if(tx, x);
    std::vector<float> y_ref(rows * dim), rs_ref(rows);  // (rows, dim), (rows)
    rmsnorm_forward(kCpu, y_ref.data(), rs_ref.data(), xin.data(), w.data(), rows, dim, 1e-6f);
    DeviceBuffer dx = to_device(ctx, x, tx), dw = to_device(ctx, w, DevDType::kF32);
    for (DevDType ty : kTypes) {
      DeviceBuffer y = poisoned_device(ctx, rows * dim, ty);
      DeviceBuffer rs = poisoned_device(ctx, rows, DevDType::kF32);
      CHECK_OK(rmsnorm_forward_cuda(ctx, tx, ty, y.get(), rs.as<float>(), dx.get(), dw.as<float>(),
                                    rows, dim, 1e-6f));
      const std::string what =
          where("rmsnorm forward", rows, dim, tx) + " -> " + dev_dtype_name(ty);
      check_close(what + " y", to_host(ctx, y, rows * dim, ty), y_ref, ty);
      check_close(what + " rstd", to_host(ctx, rs, rows, DevDType::kF32), rs_ref, DevDType::kF32);
    }
    // y aliasing x (same type).
    DeviceBuffer xy = to_device(ctx, x, tx), rs = poisoned_device(ctx, rows, DevDType::kF32);
    CHECK_OK(rmsnorm_forward_cuda(ctx, tx, tx, xy.get(), rs.as<float>(), xy.get(), dw.as<float>(),
                                  rows, dim, 1e-6f));
    check_close(where("rmsnorm forward in place", rows, dim, tx), to_host(ctx, xy, rows * dim, tx),
                y_ref, tx);
  }
}

void rmsnorm_backward_case(CudaContext& ctx, Rng& rng, int64_t rows, int64_t dim) {
  const auto x0 = random_vector(rng, rows * dim), dy0 = random_vector(rng, rows * dim);
  const auto w = random_vector(rng, dim), dw0 = random_vector(rng, dim);
  for (DevDType t : kTypes) {
    const auto x = rounded_if(t, x0), dy = rounded_if(t, dy0);  // (rows, dim)
    std::vector<float> y(rows * dim), rs(rows), dx_ref(rows * dim), dw_ref = dw0;
    rmsnorm_forward(kCpu, y.data(), rs.data(), x.data(), w.data(), rows, dim, 1e-6f);
    rmsnorm_backward(kCpu, dx_ref.data(), dw_ref.data(), dy.data(), x.data(), w.data(), rs.data(),
                     rows, dim);
    // dw oracle in double: dw0 + 2 * sum over rows (the launcher runs twice: dw accumulates).
    std::vector<float> dw_want(dim);
    for (int64_t c = 0; c < dim; ++c) {
      double s = 0.0;
      for (int64_t r = 0; r < rows; ++r)
        s += static_cast<double>(dy[r * dim + c]) * x[r * dim + c] * rs[r];
      dw_want[c] = static_cast<float>(dw0[c] + 2.0 * s);
    }
    DeviceBuffer ddy = to_device(ctx, dy, t), ddx = to_device(ctx, x, t);
    DeviceBuffer dw_ = to_device(ctx, w, DevDType::kF32), drs = to_device(ctx, rs, DevDType::kF32);
    DeviceBuffer ddw = to_device(ctx, dw0, DevDType::kF32);
    DeviceBuffer dxo = poisoned_device(ctx, rows * dim, t);
    for (int rep = 0; rep < 2; ++rep)
      CHECK_OK(rmsnorm_backward_cuda(ctx, t, dxo.get(), ddw.as<float>(), ddy.get(), ddx.get(),
                                     dw_.as<float>(), drs.as<float>(), rows, dim));
    const std::string what = where("rmsnorm backward", rows, dim, t);
    check_close(what + " dx", to_host(ctx, dxo, rows * dim, t), dx_ref, t);
    // dw is fp32 math on the same (rounded) inputs in both modes: the fp32 bound, scaled by k.
    const auto dw_got = to_host(ctx, ddw, dim, DevDType::kF32);
    const double e = max_rel(dw_got, dw_want), bound = 1e-5 + 1e-6 * std::sqrt(double(rows));
    CHECK_MSG(e < bound, what + " dw: max rel error " + std::to_string(e));
    // dx aliasing dy.
    DeviceBuffer inout = to_device(ctx, dy, t), dw2 = to_device(ctx, dw0, DevDType::kF32);
    CHECK_OK(rmsnorm_backward_cuda(ctx, t, inout.get(), dw2.as<float>(), inout.get(), ddx.get(),
                                   dw_.as<float>(), drs.as<float>(), rows, dim));
    check_close(what + " dx in place of dy", to_host(ctx, inout, rows * dim, t), dx_ref, t);
  }
}

void run_rmsnorm() {
  CudaContext& ctx = cuda_test_context();
  Rng rng(301);
  for (int64_t rows : kRows)
    for (int64_t dim : kDims) {
      rmsnorm_forward_case(ctx, rng, rows, dim);
      rmsnorm_backward_case(ctx, rng, rows, dim);
    }
  // Around the warp-per-row / block-per-row switch, the largest dim, and many rows of a small
  // one (several dw chunks).
  for (auto rd : {std::pair<int64_t, int64_t>{5, 256}, {5, 257}, {3, 4096}, {40000, 8}}) {
    rmsnorm_forward_case(ctx, rng, rd.first, rd.second);
    rmsnorm_backward_case(ctx, rng, rd.first, rd.second);
  }
}

void run_rope() {
  CudaContext& ctx = cuda_test_context();
  Rng rng(302);
  const int64_t heads = 3;
  for (int64_t tokens : kRows)
    for (int64_t head_dim : kDims) {
      std::vector<int32_t> pos(tokens);
      for (auto& p : pos) p = static_cast<int32_t>(rng.below(40000));
      RopeTable table;
      rope_table_build(&table, pos.data(), tokens, head_dim, 1000000.0);
      DeviceBuffer dcos = to_device(ctx, table.cos, DevDType::kF32);
      DeviceBuffer dsin = to_device(ctx, table.sin, DevDType::kF32);
      const auto x0 = random_vector(rng, tokens * heads * head_dim);  // (tokens, heads, head_dim)
      for (DevDType t : kTypes) {
        for (bool inverse : {false, true}) {
          auto want = rounded_if(t, x0);
          rope_apply(kCpu, want.data(), table, heads, head_dim, inverse);
          DeviceBuffer x = to_device(ctx, x0, t);
          CHECK_OK(rope_apply_cuda(ctx, t, x.get(), dcos.as<float>(), dsin.as<float>(), tokens,
                                   heads, head_dim, inverse));
          check_close(where(inverse ? "rope inverse" : "rope", tokens, head_dim, t),
                      to_host(ctx, x, tokens * heads * head_dim, t), want, t);
        }
      }
      // The inverse undoes the forward (fp32).
      DeviceBuffer x = to_device(ctx, x0, DevDType::kF32);
      for (bool inverse : {false, true})
        CHECK_OK(rope_apply_cuda(ctx, DevDType::kF32, x.get(), dcos.as<float>(), dsin.as<float>(),
                                 tokens, heads, head_dim, inverse));
      const double e = max_rel(to_host(ctx, x, tokens * heads * head_dim, DevDType::kF32), x0);
      CHECK_MSG(e < 1e-5, where("rope round trip", tokens, head_dim, DevDType::kF32) + ": " +
                              std::to_string(e));
    }
}

void run_swiglu() {
  CudaContext& ctx = cuda_test_context();
  Rng rng(303);
  for (int64_t n : {int64_t{1}, int64_t{17}, int64_t{97}, int64_t{513}, int64_t{17 * 1000},
                    int64_t{97 * 1024}}) {
    auto g0 = random_vector(rng, n);  // (n), gate scaled to reach sigmoid's tails
    for (float& v : g0) v *= 8.0f;
    const auto u0 = random_vector(rng, n), dh0 = random_vector(rng, n);
    for (DevDType t : kTypes) {
      const auto g = rounded_if(t, g0), u = rounded_if(t, u0), dh = rounded_if(t, dh0);
      std::vector<float> h_ref(n), dg_ref(n), du_ref(n);
      swiglu_forward(kCpu, h_ref.data(), g.data(), u.data(), n);
      swiglu_backward(kCpu, dg_ref.data(), du_ref.data(), dh.data(), g.data(), u.data(), n);
      DeviceBuffer dg = to_device(ctx, g, t), du = to_device(ctx, u, t),
                   ddh = to_device(ctx, dh, t);
      DeviceBuffer h = poisoned_device(ctx, n, t);
      CHECK_OK(swiglu_forward_cuda(ctx, t, h.get(), dg.get(), du.get(), n));
      check_close(where("swiglu forward", n, 1, t), to_host(ctx, h, n, t), h_ref, t);
      DeviceBuffer og = poisoned_device(ctx, n, t), ou = poisoned_device(ctx, n, t);
      CHECK_OK(swiglu_backward_cuda(ctx, t, og.get(), ou.get(), ddh.get(), dg.get(), du.get(), n));
      check_close(where("swiglu dgate", n, 1, t), to_host(ctx, og, n, t), dg_ref, t);
      check_close(where("swiglu dup", n, 1, t), to_host(ctx, ou, n, t), du_ref, t);
      // dgate over gate, dup over up.
      CHECK_OK(swiglu_backward_cuda(ctx, t, dg.get(), du.get(), ddh.get(), dg.get(), du.get(), n));
      check_close(where("swiglu dgate in place", n, 1, t), to_host(ctx, dg, n, t), dg_ref, t);
      check_close(where("swiglu dup in place", n, 1, t), to_host(ctx, du, n, t), du_ref, t);
    }
  }
}

void run_embedding() {
  CudaContext& ctx = cuda_test_context();
  Rng rng(304);
  const int64_t vocab = 37;
  for (int64_t tokens : kRows)
    for (int64_t dim : kDims) {
      std::vector<int32_t> ids(tokens);  // (tokens): few distinct ids, so most repeat
      for (auto& id : ids) id = static_cast<int32_t>(rng.below(tokens < 8 ? vocab : 11));
      DeviceBuffer dids = to_device_i32(ctx, ids);
      const auto table = random_vector(rng, vocab * dim);  // (vocab, dim)
      for (DevDType t : kTypes) {
        const auto tin = rounded_if(t, table);
        std::vector<float> want(tokens * dim);
        embedding_forward(kCpu, want.data(), tin.data(), ids.data(), tokens, dim);
        DeviceBuffer dtab = to_device(ctx, table, t);
        DeviceBuffer out = poisoned_device(ctx, tokens * dim, DevDType::kF32);
        CHECK_OK(embedding_forward_cuda(ctx, t, out.as<float>(), dtab.get(), dids.as<int32_t>(),
                                        tokens, dim));
        CHECK_MSG(to_host(ctx, out, tokens * dim, DevDType::kF32) == want,
                  where("embedding forward (exact)", tokens, dim, t));
      }
      // Backward: dtable += scatter, twice, in token order: the CPU's additions exactly.
      const auto dtable0 = random_vector(rng, vocab * dim), dout = random_vector(rng, tokens * dim);
      auto want = dtable0;
      for (int rep = 0; rep < 2; ++rep)
        embedding_backward(kCpu, want.data(), dout.data(), ids.data(), tokens, dim);
      DeviceIndexAddPlan plan;
      CHECK_OK(plan.upload(ctx, index_add_plan(ids.data(), tokens)));
      DeviceBuffer ddout = to_device(ctx, dout, DevDType::kF32);
      std::vector<float> runs[2];
      for (int run = 0; run < 2; ++run) {
        DeviceBuffer dtab = to_device(ctx, dtable0, DevDType::kF32);
        for (int rep = 0; rep < 2; ++rep)
          CHECK_OK(index_add_rows_cuda(ctx, dtab.as<float>(), ddout.as<float>(), plan, dim));
        runs[run] = to_host(ctx, dtab, vocab * dim, DevDType::kF32);
      }
      CHECK_MSG(runs[0] == want,
                where("index-add vs embedding_backward (exact)", tokens, dim, DevDType::kF32));
      CHECK_MSG(std::memcmp(runs[0].data(), runs[1].data(), runs[0].size() * 4) == 0,
                where("index-add run twice (bitwise)", tokens, dim, DevDType::kF32));
    }
}

void run_index_add_plan() {
  const std::vector<int32_t> ids = {5, 2, 5, 0, 2, 5};
  IndexAddPlan p = index_add_plan(ids.data(), 6);
  CHECK((p.dest == std::vector<int32_t>{0, 2, 5}));
  CHECK((p.ptr == std::vector<int32_t>{0, 1, 3, 6}));
  CHECK((p.src == std::vector<int32_t>{3, 1, 4, 0, 2, 5}));
  // Sparse destinations take the sorting path: same answer shape.
  const std::vector<int32_t> sparse = {2000000000, 7, 2000000000, 7, 3};
  p = index_add_plan(sparse.data(), 5);
  CHECK((p.dest == std::vector<int32_t>{3, 7, 2000000000}));
  CHECK((p.ptr == std::vector<int32_t>{0, 1, 3, 5}));
  CHECK((p.src == std::vector<int32_t>{4, 1, 3, 0, 2}));
  p = index_add_plan(nullptr, 0);
  CHECK(p.dest.empty() && p.src.empty() && (p.ptr == std::vector<int32_t>{0}));
  // An empty plan uploads and adds nothing.
  CudaContext& ctx = cuda_test_context();
  DeviceIndexAddPlan dp;
  CHECK_OK(dp.upload(ctx, p));
  DeviceBuffer dst = to_device(ctx, {1.0f, 2.0f}, DevDType::kF32);
  CHECK_OK(index_add_rows_cuda(ctx, dst.as<float>(), dst.as<float>(), dp, 2));
  CHECK((to_host(ctx, dst, 2, DevDType::kF32) == std::vector<float>{1.0f, 2.0f}));
}

void run_adamw() {
  CudaContext& ctx = cuda_test_context();
  Rng rng(305);
  for (int64_t n : {int64_t{1}, int64_t{17}, int64_t{513}, int64_t{100003}}) {
    AdamWParams a;
    a.lr = 1e-2f;
    a.weight_decay = 0.1f;
    a.grad_scale = 0.5f;
    auto p = random_vector(rng, n);  // (n) each
    std::vector<float> m(n, 0.0f), v(n, 0.0f);
    DeviceBuffer dp = to_device(ctx, p, DevDType::kF32), dm = to_device(ctx, m, DevDType::kF32),
                 dv = to_device(ctx, v, DevDType::kF32);
    for (int64_t step = 1; step <= 5; ++step) {
      a.step = step;
      const auto g = random_vector(rng, n);
      adamw_step_reference(p.data(), m.data(), v.data(), g.data(), n, a);
      DeviceBuffer dg = to_device(ctx, g, DevDType::kF32);
      const bool with_copy = step % 2 == 1;
      DeviceBuffer copy = poisoned_device(ctx, n, DevDType::kBF16);
      CHECK_OK(adamw_step_cuda(ctx, dp.as<float>(), dm.as<float>(), dv.as<float>(), dg.as<float>(),
                               n, a, with_copy ? copy.get() : nullptr));
      const auto pg = to_host(ctx, dp, n, DevDType::kF32);
      const std::string what = where("adamw", n, step, DevDType::kF32);
      check_close(what + " p", pg, p, DevDType::kF32);
      check_close(what + " m", to_host(ctx, dm, n, DevDType::kF32), m, DevDType::kF32);
      check_close(what + " v", to_host(ctx, dv, n, DevDType::kF32), v, DevDType::kF32);
      if (with_copy)
        CHECK_MSG(to_host(ctx, copy, n, DevDType::kBF16) == bf16_rounded(pg),
                  what + ": bf16 compute copy != rounded p");
    }
  }
}

void run_sum_squares() {
  CudaContext& ctx = cuda_test_context();
  Rng rng(306);
  for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{17}, int64_t{513}, int64_t{1000003}}) {
    const auto g = random_vector(rng, n);
    double want = 0.0;
    for (float x : g) want += static_cast<double>(x) * x;
    DeviceBuffer dg = to_device(ctx, g, DevDType::kF32);
    double got[2] = {-1.0, -1.0};
    for (double& o : got) CHECK_OK(sum_squares_cuda(ctx, dg.as<float>(), n, &o));
    CHECK_MSG(std::fabs(got[0] - want) <= 1e-10 * want, "sum_squares n " + std::to_string(n) +
                                                            ": " + std::to_string(got[0]) + " vs " +
                                                            std::to_string(want));
    CHECK_MSG(std::memcmp(&got[0], &got[1], sizeof(double)) == 0,
              "sum_squares not bitwise repeatable at n " + std::to_string(n));
  }
}

void run_elementwise() {
  CudaContext& ctx = cuda_test_context();
  Rng rng(307);
  for (int64_t n : {int64_t{1}, int64_t{17}, int64_t{513}, int64_t{100003}}) {
    const auto x = random_vector(rng, n), y = random_vector(rng, n);
    for (DevDType from : kTypes)
      for (DevDType to : kTypes) {
        DeviceBuffer src = to_device(ctx, x, from), dst = poisoned_device(ctx, n, to);
        CHECK_OK(cast_cuda(ctx, from, to, dst.get(), src.get(), n));
        const bool exact_f32 = from == DevDType::kF32 && to == DevDType::kF32;
        CHECK_MSG(to_host(ctx, dst, n, to) == (exact_f32 ? x : bf16_rounded(x)),
                  where("cast (exact)", n, 1, from) + " -> " + dev_dtype_name(to));
      }
    std::vector<float> sum(n);
    for (int64_t i = 0; i < n; ++i) sum[i] = y[i] + x[i];
    DeviceBuffer dy = to_device(ctx, y, DevDType::kF32), dx = to_device(ctx, x, DevDType::kF32);
    CHECK_OK(add_cuda(ctx, dy.as<float>(), dx.as<float>(), n));
    CHECK_MSG(to_host(ctx, dy, n, DevDType::kF32) == sum,
              where("add (exact)", n, 1, DevDType::kF32));
  }
  const int64_t src_rows = 29;
  for (int64_t count : kRows)
    for (int64_t dim : kDims) {
      const auto src = random_vector(rng, src_rows * dim);  // (src_rows, dim)
      std::vector<int32_t> rows(count);                     // (count), repeats allowed
      for (auto& r : rows) r = static_cast<int32_t>(rng.below(src_rows));
      std::vector<float> want(count * dim);
      for (int64_t r = 0; r < count; ++r)
        for (int64_t c = 0; c < dim; ++c) want[r * dim + c] = src[rows[r] * dim + c];
      DeviceBuffer dsrc = to_device(ctx, src, DevDType::kF32), drows = to_device_i32(ctx, rows);
      DeviceBuffer dst = poisoned_device(ctx, count * dim, DevDType::kF32);
      CHECK_OK(gather_rows_cuda(ctx, dst.as<float>(), dsrc.as<float>(), drows.as<int32_t>(), count,
                                dim));
      CHECK_MSG(to_host(ctx, dst, count * dim, DevDType::kF32) == want,
                where("gather_rows (exact)", count, dim, DevDType::kF32));
    }
}

void expect_invalid(const Status& s, const char* what) {
  CHECK_MSG(s.code() == StatusCode::kInvalidArgument,
            std::string(what) + " should fail with InvalidArgument, got " + s.to_string());
}

void run_errors() {
  CudaContext& ctx = cuda_test_context();
  DeviceBuffer buf = to_device(ctx, std::vector<float>(64, 1.0f), DevDType::kF32);
  float* f = buf.as<float>();
  const DevDType F = DevDType::kF32;
  expect_invalid(rope_apply_cuda(ctx, F, f, f, f, 2, 1, 7, false), "rope with odd head_dim");
  expect_invalid(rope_apply_cuda(ctx, F, f, f, f, -1, 1, 8, false), "rope with tokens < 0");
  expect_invalid(rmsnorm_forward_cuda(ctx, F, F, f, f, f, f, -1, 8, 1e-6f), "rmsnorm rows < 0");
  expect_invalid(rmsnorm_forward_cuda(ctx, F, F, f, f, f, f, 2, 0, 1e-6f), "rmsnorm dim 0");
  expect_invalid(rmsnorm_forward_cuda(ctx, F, DevDType::kBF16, f, f + 32, f, f + 48, 1, 8, 1e-6f),
                 "rmsnorm y == x across types");
  expect_invalid(rmsnorm_backward_cuda(ctx, F, f, f, f, f, f, f, -3, 8), "rmsnorm bwd rows < 0");
  expect_invalid(rmsnorm_backward_cuda(ctx, F, f, f + 16, f + 32, f, f, f, 1, 8),
                 "rmsnorm bwd with dx == x");
  expect_invalid(swiglu_forward_cuda(ctx, F, f, f, f, -1), "swiglu n < 0");
  expect_invalid(swiglu_backward_cuda(ctx, F, f, f, f, f, f, 4), "swiglu dgate == dup");
  expect_invalid(embedding_forward_cuda(ctx, F, f, f, nullptr, -2, 8), "embedding tokens < 0");
  DeviceIndexAddPlan empty;
  expect_invalid(index_add_rows_cuda(ctx, f, f, empty, 0), "index-add dim 0");
  AdamWParams a;
  a.step = 0;
  expect_invalid(adamw_step_cuda(ctx, f, f, f, f, 4, a, nullptr), "adamw step 0");
  double out = 0;
  expect_invalid(sum_squares_cuda(ctx, f, -1, &out), "sum_squares n < 0");
  expect_invalid(cast_cuda(ctx, F, DevDType::kBF16, f, f, -1), "cast n < 0");
  expect_invalid(add_cuda(ctx, f, f, -1), "add n < 0");
  expect_invalid(gather_rows_cuda(ctx, f, f, nullptr, -1, 8), "gather count < 0");
  // Empty work is fine and touches nothing.
  CHECK_OK(rmsnorm_forward_cuda(ctx, F, F, nullptr, nullptr, nullptr, nullptr, 0, 8, 1e-6f));
  CHECK_OK(rope_apply_cuda(ctx, F, nullptr, nullptr, nullptr, 0, 2, 8, true));
  CHECK_OK(sum_squares_cuda(ctx, nullptr, 0, &out));
  CHECK(out == 0.0);
  CHECK_OK(ctx.sync("cuda ops error cases"));
}

}  // namespace
#define NPR_CUDA_CASE(fn) fn()
#else
#define NPR_CUDA_CASE(fn) SKIP("CUDA not compiled into this build")
#endif

TEST(cuda_rmsnorm_matches_cpu) {
  NPR_CUDA_CASE(run_rmsnorm);
}
TEST(cuda_rope_matches_cpu) {
  NPR_CUDA_CASE(run_rope);
}
TEST(cuda_swiglu_matches_cpu) {
  NPR_CUDA_CASE(run_swiglu);
}
TEST(cuda_index_add_plan_groups_stably) {
  NPR_CUDA_CASE(run_index_add_plan);
}
TEST(cuda_embedding_and_index_add_match_cpu) {
  NPR_CUDA_CASE(run_embedding);
}
TEST(cuda_adamw_matches_reference) {
  NPR_CUDA_CASE(run_adamw);
}
TEST(cuda_sum_squares_matches_double_loop) {
  NPR_CUDA_CASE(run_sum_squares);
}
TEST(cuda_cast_add_gather_exact) {
  NPR_CUDA_CASE(run_elementwise);
}
TEST(cuda_ops_reject_bad_arguments) {
  NPR_CUDA_CASE(run_errors);
}

}  // namespace npr::test

#undef NPR_CUDA_CASE
