// The device linear layers and fused logprob head against their CPU twins (linear.cpp,
// logprob_head.cpp), in fp32 mode (||dev - cpu|| / ||cpu|| < 1e-5) and bf16 mode (< 1e-2; the
// CPU sees the same bf16-rounded weights and inputs), on odd sizes (rows 1, 37, 130; hidden 24,
// 64; vocab 37, 1000), on the kernel GEMM path and, where linked, cuBLAS. The head runs with
// and without entropy and with its row chunk shrunk so that one call spans several chunks.
// Gradients must accumulate (two calls give twice the gradient) and be bitwise reproducible
// (no floating-point atomics). Outputs are poisoned before each run.
#include <cmath>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/linear.h"
#include "kernels/logprob_head.h"
#include "tests/harness.h"
#include "tests/test_util.h"
#if defined(NPR_WITH_CUDA)
#include "kernels/linear_cuda.h"
#include "kernels/logprob_head_cuda.h"
#include "tests/test_cuda_util.h"
#endif

namespace npr::test {

#if defined(NPR_WITH_CUDA)
namespace {

double tol_of(DevDType t) {
  return t == DevDType::kF32 ? 1e-5 : 1e-2;
}

std::vector<float> rounded_if(DevDType t, std::vector<float> v) {
  return t == DevDType::kBF16 ? bf16_rounded(std::move(v)) : v;
}

std::vector<float> scaled(std::vector<float> v, float f) {
  for (float& x : v) x *= f;
  return v;
}

void check_rel(const std::vector<float>& got, const std::vector<float>& want, double tol,
               const std::string& what) {
  const double e = rel_norm_error(got, want);
  CHECK_MSG(e < tol, what + ": relative error " + std::to_string(e));
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace
#endif

TEST(cuda_linear_matches_cpu) {
#if !defined(NPR_WITH_CUDA)
  SKIP("CUDA not compiled into this build");
#else
  CudaContext& ctx = cuda_test_context();
  GemmPathScope scope(ctx);
  const CpuContext cpu{};
  Rng rng(201);
  const std::tuple<DevDType, DevDType> modes[] = {{DevDType::kF32, DevDType::kF32},
                                                  {DevDType::kBF16, DevDType::kBF16},
                                                  {DevDType::kBF16, DevDType::kF32}};
  for (CudaGemmPath p : gemm_paths(ctx)) {
    ctx.gemm_path = p;
    for (int64_t rows : {1, 37, 130})
      for (auto [in, out] : {std::tuple<int64_t, int64_t>{24, 64}, {64, 37}})
        for (auto [t, ot] : modes) {
          const std::string what = std::string(p == CudaGemmPath::kCublas ? "cublas " : "kernel ") +
                                   dev_dtype_name(t) + "->" + dev_dtype_name(ot) +
                                   " rows=" + std::to_string(rows) + " in=" + std::to_string(in) +
                                   " out=" + std::to_string(out);
          const double tol = tol_of(t);
          auto x = rounded_if(t, random_vector(rng, rows * in));
          auto W = rounded_if(t, random_vector(rng, out * in));
          auto dy = rounded_if(t, random_vector(rng, rows * out));
          auto dW0 = random_vector(rng, out * in);
          DeviceBuffer dx_ = to_device(ctx, x, t), dW_ = to_device(ctx, W, t),
                       ddy = to_device(ctx, dy, t);

          for (float beta : {0.0f, 1.0f}) {  // y = x W^T (+ y)
            auto y0 = beta == 0.0f ? poisoned(rows * out)
                                   : rounded_if(ot, random_vector(rng, rows * out));
            auto ry = y0;
            linear_forward(cpu, ry.data(), x.data(), W.data(), rows, in, out, beta);
            DeviceBuffer dy_out = to_device(ctx, y0, ot);
            CHECK_OK(linear_forward_cuda(ctx, t, ot, dy_out.get(), dx_.get(), dW_.get(), rows, in,
                                         out, beta));
            check_rel(to_host(ctx, dy_out, rows * out, ot), ry, tol, what + " forward");

            auto g0 =
                beta == 0.0f ? poisoned(rows * in) : rounded_if(ot, random_vector(rng, rows * in));
            auto rg = g0;  // dx = dy W (+ dx)
            linear_backward_x(cpu, rg.data(), dy.data(), W.data(), rows, in, out, beta);
            DeviceBuffer dgx = to_device(ctx, g0, ot);
            CHECK_OK(linear_backward_x_cuda(ctx, t, ot, dgx.get(), ddy.get(), dW_.get(), rows, in,
                                            out, beta));
            check_rel(to_host(ctx, dgx, rows * in, ot), rg, tol, what + " backward x");
          }

          // dW += dy^T x, twice: dW0 + 2 g.
          DeviceBuffer dgw = to_device(ctx, dW0, DevDType::kF32);
          for (int call = 0; call < 2; ++call)
            CHECK_OK(linear_backward_w_cuda(ctx, t, dgw.as<float>(), ddy.get(), dx_.get(), rows, in,
                                            out));
          auto rw = dW0;
          linear_backward_w(cpu, rw.data(), dy.data(), x.data(), rows, in, out);
          linear_backward_w(cpu, rw.data(), dy.data(), x.data(), rows, in, out);
          check_rel(to_host(ctx, dgw, out * in, DevDType::kF32), rw, tol, what + " backward w x2");
        }
  }
#endif
}

TEST(cuda_logprob_head_matches_cpu) {
#if !defined(NPR_WITH_CUDA)
  SKIP("CUDA not compiled into this build");
#else
  CudaContext& ctx = cuda_test_context();
  GemmPathScope scope(ctx);
  const CpuContext cpu{};
  Rng rng(202);
  // rows, hidden, vocab, max_chunk_rows (0: the workspace budget, i.e. one chunk here).
  const int64_t cases[][4] = {{1, 24, 37, 0},      {37, 64, 1000, 0}, {130, 24, 1000, 0},
                              {130, 64, 1000, 32}, {37, 24, 37, 7},   {130, 64, 37, 1}};
  int n = 0;
  for (CudaGemmPath p : gemm_paths(ctx)) {
    ctx.gemm_path = p;
    for (auto& c : cases)
      for (DevDType t : {DevDType::kF32, DevDType::kBF16}) {
        const int64_t rows = c[0], hidden = c[1], vocab = c[2], chunk = c[3];
        const bool with_entropy = (n++ % 2) == 0;
        const LogprobHeadShape s{rows, hidden, vocab, 1e-6f};
        const std::string what = std::string(p == CudaGemmPath::kCublas ? "cublas " : "kernel ") +
                                 dev_dtype_name(t) + " " + std::to_string(rows) + "x" +
                                 std::to_string(hidden) + "x" + std::to_string(vocab) + " chunk " +
                                 std::to_string(chunk) + (with_entropy ? " +entropy" : "");
        const double tol = tol_of(t);
        auto h = scaled(random_vector(rng, rows * hidden), 2.0f);
        auto nw = random_vector(rng, hidden);
        auto W = rounded_if(t, random_vector(rng, vocab * hidden));
        std::vector<int32_t> tg(static_cast<size_t>(rows));
        for (auto& x : tg) x = static_cast<int32_t>(rng.below(vocab));
        auto dlp = random_vector(rng, rows);

        // CPU twin.
        auto lp = poisoned(rows), lse = poisoned(rows), ent = poisoned(rows),
             hn = poisoned(rows * hidden), rs = poisoned(rows);
        CHECK_OK(logprob_head_forward(cpu, lp.data(), lse.data(), ent.data(), hn.data(), rs.data(),
                                      h.data(), nw.data(), W.data(), tg.data(), s));
        auto dh = poisoned(rows * hidden);
        std::vector<float> dnw(hidden, 0.0f), dW(vocab * hidden, 0.0f);
        CHECK_OK(logprob_head_backward(cpu, dh.data(), dnw.data(), dW.data(), dlp.data(), h.data(),
                                       hn.data(), rs.data(), lse.data(), nw.data(), W.data(),
                                       tg.data(), s));

        // Device.
        DeviceBuffer d_h = to_device(ctx, h, DevDType::kF32),
                     d_nw = to_device(ctx, nw, DevDType::kF32), d_W = to_device(ctx, W, t),
                     d_tg = to_device_i32(ctx, tg), d_dlp = to_device(ctx, dlp, DevDType::kF32);
        DeviceBuffer d_lp = poisoned_device(ctx, rows, DevDType::kF32),
                     d_lse = poisoned_device(ctx, rows, DevDType::kF32),
                     d_ent = poisoned_device(ctx, rows, DevDType::kF32),
                     d_hn = poisoned_device(ctx, rows * hidden, t),
                     d_rs = poisoned_device(ctx, rows, DevDType::kF32);
        CHECK_OK(logprob_head_forward_cuda(ctx, t, d_lp.as<float>(), d_lse.as<float>(),
                                           with_entropy ? d_ent.as<float>() : nullptr, d_hn.get(),
                                           d_rs.as<float>(), d_h.as<float>(), d_nw.as<float>(),
                                           d_W.get(), d_tg.as<int32_t>(), s, chunk));
        check_rel(to_host(ctx, d_lp, rows, DevDType::kF32), lp, tol, what + " logprob");
        check_rel(to_host(ctx, d_lse, rows, DevDType::kF32), lse, tol, what + " lse");
        check_rel(to_host(ctx, d_hn, rows * hidden, t), hn, tol, what + " hn");
        check_rel(to_host(ctx, d_rs, rows, DevDType::kF32), rs, 1e-5, what + " rstd");
        auto ent_dev = to_host(ctx, d_ent, rows, DevDType::kF32);
        if (with_entropy) {
          check_rel(ent_dev, ent, tol, what + " entropy");
        } else {
          bool untouched = true;
          for (float x : ent_dev) untouched = untouched && std::isnan(x);
          CHECK_MSG(untouched, what + ": entropy written although not asked for");
        }

        // Backward twice into the same gradients: 2x; then once more from zero: bitwise the
        // first call's result.
        DeviceBuffer d_dh = poisoned_device(ctx, rows * hidden, DevDType::kF32),
                     d_dnw = to_device(ctx, std::vector<float>(hidden, 0.0f), DevDType::kF32),
                     d_dW =
                         to_device(ctx, std::vector<float>(vocab * hidden, 0.0f), DevDType::kF32);
        auto backward = [&] {
          CHECK_OK(logprob_head_backward_cuda(
              ctx, t, d_dh.as<float>(), d_dnw.as<float>(), d_dW.as<float>(), d_dlp.as<float>(),
              d_h.as<float>(), d_hn.get(), d_rs.as<float>(), d_lse.as<float>(), d_nw.as<float>(),
              d_W.get(), d_tg.as<int32_t>(), s, chunk));
        };
        backward();
        auto dh1 = to_host(ctx, d_dh, rows * hidden, DevDType::kF32);
        auto dnw1 = to_host(ctx, d_dnw, hidden, DevDType::kF32);
        auto dW1 = to_host(ctx, d_dW, vocab * hidden, DevDType::kF32);
        check_rel(dh1, dh, tol, what + " dh");
        check_rel(dnw1, dnw, tol, what + " dnorm_w");
        check_rel(dW1, dW, tol, what + " dW");
        backward();
        check_rel(to_host(ctx, d_dh, rows * hidden, DevDType::kF32), dh, tol, what + " dh (2nd)");
        check_rel(to_host(ctx, d_dnw, hidden, DevDType::kF32), scaled(dnw, 2.0f), tol,
                  what + " dnorm_w accumulated");
        check_rel(to_host(ctx, d_dW, vocab * hidden, DevDType::kF32), scaled(dW, 2.0f), tol,
                  what + " dW accumulated");
        CHECK_OK(ctx.zero(d_dnw.get(), hidden * 4, "test zero"));
        CHECK_OK(ctx.zero(d_dW.get(), vocab * hidden * 4, "test zero"));
        backward();
        CHECK_MSG(bitwise_equal(to_host(ctx, d_dW, vocab * hidden, DevDType::kF32), dW1) &&
                      bitwise_equal(to_host(ctx, d_dnw, hidden, DevDType::kF32), dnw1) &&
                      bitwise_equal(to_host(ctx, d_dh, rows * hidden, DevDType::kF32), dh1),
                  what + ": backward not bitwise reproducible");
      }
  }
#endif
}

TEST(cuda_logprob_head_chunk_rows) {
  // The chunk size rule needs no device: budget / bytes per row, whole 128-row tiles when it is
  // large, capped by max_chunk_rows and rows, never below 1.
#if !defined(NPR_WITH_CUDA)
  SKIP("CUDA not compiled into this build");
#else
  const int64_t qwen_vocab = 151936;
  const int64_t fwd = logprob_head_cuda_chunk_rows(1 << 20, qwen_vocab * 4, 0);
  CHECK(fwd >= 128 && fwd % 128 == 0);
  CHECK(fwd * qwen_vocab * 4 <= kLogprobHeadWorkspaceBytes);
  CHECK(logprob_head_cuda_chunk_rows(130, 1000 * 4, 32) == 32);
  CHECK(logprob_head_cuda_chunk_rows(130, 1000 * 4, 0) == 130);
  CHECK(logprob_head_cuda_chunk_rows(5, kLogprobHeadWorkspaceBytes * 2, 0) == 1);
#endif
}

TEST(cuda_logprob_head_rejects_bad_shapes) {
#if !defined(NPR_WITH_CUDA)
  SKIP("CUDA not compiled into this build");
#else
  CudaContext& ctx = cuda_test_context();
  LogprobHeadShape s{4, 0, 10, 1e-6f};
  Status st = logprob_head_forward_cuda(ctx, DevDType::kF32, nullptr, nullptr, nullptr, nullptr,
                                        nullptr, nullptr, nullptr, nullptr, nullptr, s);
  CHECK(st.code() == StatusCode::kInvalidArgument);
  s = LogprobHeadShape{0, 8, 10, 1e-6f};  // no rows: nothing to do
  CHECK_OK(logprob_head_backward_cuda(ctx, DevDType::kBF16, nullptr, nullptr, nullptr, nullptr,
                                      nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                      s));
#endif
}

}  // namespace npr::test
