// The decode-sized linear kernels (skinny_linear_cuda.h) against a double-precision host oracle
// on bf16-rounded inputs: every row count 1..8, odd output counts (a warp's second column past
// the end), in a multiple of 8 (the 16-byte path) and not (the element path), an x one element
// off its 16-byte alignment, fp32 and bf16 outputs, overwrite (outputs poisoned with NaN) and
// accumulate, the SwiGLU form over stacked gate/up rows, and the refused calls. The fused
// RMSNorm forms against rmsnorm_forward_cuda + the unfused call (bit for bit) and against the
// host oracles (xn within one bf16 ulp of a double RMSNorm), staging above 48 KB, their
// refusals, and batch invariance: a row's result alone and inside any batch has the same bits.
// Every check runs on both cores (kCores): the CUDA-core and the tensor-core forms.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "tests/harness.h"
#include "tests/test_util.h"
#if defined(NPR_WITH_CUDA)
#include "kernels/rmsnorm_cuda.h"
#include "kernels/skinny_linear_cuda.h"
#include "tests/test_cuda_util.h"
#endif

namespace npr::test {

#if defined(NPR_WITH_CUDA)
namespace {

// dots (rows, out) = x (rows, in) . W (out, in)^T in double.
std::vector<double> host_dots(const std::vector<float>& x, const std::vector<float>& W,
                              int64_t rows, int64_t in, int64_t out) {
  std::vector<double> d(static_cast<size_t>(rows * out), 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < out; ++j) {
      double s = 0.0;
      for (int64_t e = 0; e < in; ++e)
        s += static_cast<double>(x[r * in + e]) * static_cast<double>(W[j * in + e]);
      d[r * out + j] = s;
    }
  return d;
}

// act (rows, inter) = silu(g) * u from dots (rows, 2 inter) (gate columns, then up), g and u
// rounded to bf16 first as the kernels round them.
std::vector<float> host_swiglu(const std::vector<double>& dots, int64_t rows, int64_t inter) {
  std::vector<float> act(static_cast<size_t>(rows * inter));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < inter; ++j) {
      const double g = bf16_to_f32(f32_to_bf16(static_cast<float>(dots[r * 2 * inter + j])));
      const double u =
          bf16_to_f32(f32_to_bf16(static_cast<float>(dots[r * 2 * inter + inter + j])));
      act[r * inter + j] = static_cast<float>(g / (1.0 + std::exp(-g)) * u);
    }
  return act;
}

std::string shape(int64_t rows, int64_t in, int64_t out) {
  return "rows " + std::to_string(rows) + " in " + std::to_string(in) + " out " +
         std::to_string(out);
}

constexpr int64_t kTail = 11;  // poisoned elements past every fused output
constexpr float kEps = 1e-6f;

// The launches every form is checked under: the CUDA-core and the tensor-core paths.
constexpr SkinnyLaunch kCores[] = {SkinnyLaunch{false, false}, SkinnyLaunch{false, true}};
std::string core_name(const SkinnyLaunch& l) {
  return l.tensor_cores ? " tensor cores" : " cuda cores";
}
// Relative error allowed for an output of type t. fp32 outputs of bf16 inputs: 1e-5 on CUDA
// cores (fp32 FMAs); 1e-4 on tensor cores, whose fp32 accumulation aligns the products and the
// partial sum to the largest exponent and truncates (Fasi et al., "Numerical behavior of NVIDIA
// tensor cores", 2021), which a 1000-long dot product can carry past 1e-5.
double tolerance(DevDType t, const SkinnyLaunch& l) {
  if (t != DevDType::kF32) return 1e-2;
  return l.tensor_cores ? 1e-4 : 1e-5;
}

// Elements whose bits differ (NaN == NaN when the bits match).
int64_t bit_diffs(const std::vector<float>& a, const std::vector<float>& b, size_t n) {
  int64_t d = 0;
  for (size_t i = 0; i < n; ++i) d += std::memcmp(&a[i], &b[i], sizeof(float)) != 0;
  return d;
}

int64_t unpoisoned_tail(const std::vector<float>& v, size_t from) {
  int64_t d = 0;
  for (size_t i = from; i < v.size(); ++i) d += !std::isnan(v[i]);
  return d;
}

// The fused forms' inputs: x (rows, in) fp32 residual rows of uneven scale, norm weight (in).
struct NormInputs {
  std::vector<float> x, w;
  DeviceBuffer dx, dw;
};

NormInputs norm_inputs(CudaContext& ctx, Rng& rng, int64_t rows, int64_t in) {
  NormInputs n;
  n.x = random_vector(rng, rows * in);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < in; ++i) n.x[r * in + i] *= 0.5f + 3.0f * static_cast<float>(r);
  n.w = random_vector(rng, in);
  for (float& v : n.w) v = 1.0f + 0.5f * v;
  n.dx = to_device(ctx, n.x, DevDType::kF32);
  n.dw = to_device(ctx, n.w, DevDType::kF32);
  return n;
}

// Inputs of every skinny form: the fused forms' x and norm weight, a bf16 x (rows, in) for the
// unfused ones, and W (w_rows, in) bf16.
struct SkinnyInputs {
  NormInputs n;
  std::vector<float> xb, W;
  DeviceBuffer dxb, dW;
};

SkinnyInputs skinny_inputs(CudaContext& ctx, Rng& rng, int64_t rows, int64_t in, int64_t w_rows) {
  SkinnyInputs s;
  s.n = norm_inputs(ctx, rng, rows, in);
  s.xb = bf16_rounded(random_vector(rng, rows * in));
  s.W = bf16_rounded(random_vector(rng, w_rows * in));
  s.dxb = to_device(ctx, s.xb, DevDType::kBF16);
  s.dW = to_device(ctx, s.W, DevDType::kBF16);
  return s;
}

// xn (rows, in) bf16 from rmsnorm_forward_cuda (the unfused path), checked against a double
// RMSNorm: every element within one bf16 ulp. Returns the device buffer and its host values.
DeviceBuffer unfused_norm(CudaContext& ctx, const NormInputs& n, int64_t rows, int64_t in,
                          std::vector<float>* host, const std::string& what) {
  DeviceBuffer xn = poisoned_device(ctx, rows * in, DevDType::kBF16);
  DeviceBuffer rstd = poisoned_device(ctx, rows, DevDType::kF32);
  CHECK_OK(rmsnorm_forward_cuda(ctx, DevDType::kF32, DevDType::kBF16, xn.get(),
                                static_cast<float*>(rstd.get()), n.dx.get(),
                                static_cast<const float*>(n.dw.get()), rows, in, kEps));
  *host = to_host(ctx, xn, rows * in, DevDType::kBF16);
  int64_t off = 0;
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0.0;
    for (int64_t i = 0; i < in; ++i) ss += static_cast<double>(n.x[r * in + i]) * n.x[r * in + i];
    const double s = 1.0 / std::sqrt(ss / static_cast<double>(in) + kEps);
    for (int64_t i = 0; i < in; ++i) {
      const double want = n.x[r * in + i] * s * n.w[i];
      const double got = (*host)[r * in + i];
      off += !(std::fabs(got - want) <= std::fabs(want) * (1.0 / 128.0) + 1e-30);
    }
  }
  CHECK_MSG(off == 0, what + ": " + std::to_string(off) + " xn elements off the double RMSNorm");
  return xn;
}

}  // namespace

TEST(cuda_skinny_linear_matches_the_host_oracle) {
  CudaContext& ctx = cuda_test_context();
  Rng rng(5150);
  int cases = 0;
  for (int64_t rows = 1; rows <= kSkinnyMaxRows; ++rows)
    for (int64_t in : {8, 13, 256, 1000, 1029})
      for (int64_t out : {1, 7, 33, 130}) {
        const auto x = bf16_rounded(random_vector(rng, rows * in + 8));
        const auto W = bf16_rounded(random_vector(rng, out * in));
        DeviceBuffer dx = to_device(ctx, x, DevDType::kBF16),
                     dW = to_device(ctx, W, DevDType::kBF16);
        // Even cases read x from its start (aligned), odd ones from one element on (unaligned).
        const int64_t shift = (rows + in) % 2;
        const std::vector<float> xs(x.begin() + shift, x.begin() + shift + rows * in);
        const std::vector<double> dots = host_dots(xs, W, rows, in, out);
        const void* xp = static_cast<const char*>(dx.get()) + 2 * shift;
        for (const SkinnyLaunch& core : kCores)
          for (DevDType t : {DevDType::kF32, DevDType::kBF16})
            for (bool acc : {false, true}) {
              std::vector<float> y0 = acc ? random_vector(rng, rows * out) : poisoned(rows * out);
              if (t == DevDType::kBF16) y0 = bf16_rounded(y0);
              DeviceBuffer dy = to_device(ctx, y0, t);
              CHECK_OK(
                  skinny_linear_cuda(ctx, t, dy.get(), xp, dW.get(), rows, in, out, acc, core));
              const auto got = to_host(ctx, dy, rows * out, t);
              std::vector<float> want(static_cast<size_t>(rows * out));
              for (size_t i = 0; i < want.size(); ++i)
                want[i] = static_cast<float>(dots[i] + (acc ? y0[i] : 0.0));
              const double err = rel_norm_error(got, want);
              const double tol = tolerance(t, core);
              CHECK_MSG(err < tol, shape(rows, in, out) + " " + dev_dtype_name(t) +
                                       core_name(core) + (acc ? " accumulate" : "") +
                                       (shift ? " unaligned x" : "") + ": relative error " +
                                       std::to_string(err));
              ++cases;
            }
      }
  std::printf("    %d skinny linear cases\n", cases);
}

TEST(cuda_skinny_swiglu_linear_matches_the_host_oracle) {
  CudaContext& ctx = cuda_test_context();
  Rng rng(6160);
  for (int64_t rows = 1; rows <= kSkinnyMaxRows; ++rows)
    for (int64_t in : {16, 203, 1024})
      for (int64_t inter : {1, 9, 70}) {
        const auto x = bf16_rounded(random_vector(rng, rows * in));
        const auto W = bf16_rounded(random_vector(rng, 2 * inter * in));
        const std::vector<double> dots = host_dots(x, W, rows, in, 2 * inter);
        const std::vector<float> want = host_swiglu(dots, rows, inter);
        DeviceBuffer dx = to_device(ctx, x, DevDType::kBF16),
                     dW = to_device(ctx, W, DevDType::kBF16);
        for (const SkinnyLaunch& core : kCores) {
          DeviceBuffer da = poisoned_device(ctx, rows * inter, DevDType::kBF16);
          CHECK_OK(
              skinny_swiglu_linear_cuda(ctx, da.get(), dx.get(), dW.get(), rows, in, inter, core));
          const auto got = to_host(ctx, da, rows * inter, DevDType::kBF16);
          const double err = rel_norm_error(got, want);
          CHECK_MSG(err < 1e-2, shape(rows, in, inter) + " swiglu" + core_name(core) +
                                    ": relative error " + std::to_string(err));
        }
      }
}

TEST(cuda_skinny_linear_refuses_bad_calls) {
  CudaContext& ctx = cuda_test_context();
  Rng rng(7);
  DeviceBuffer a = to_device(ctx, random_vector(rng, 1024), DevDType::kBF16);
  for (int64_t rows : {int64_t{0}, kSkinnyMaxRows + 1})
    CHECK(skinny_linear_cuda(ctx, DevDType::kF32, a.get(), a.get(), a.get(), rows, 8, 8, false)
              .code() == StatusCode::kInvalidArgument);
  CHECK(skinny_linear_cuda(ctx, DevDType::kF32, nullptr, a.get(), a.get(), 1, 8, 8, false).code() ==
        StatusCode::kInvalidArgument);
  CHECK(skinny_swiglu_linear_cuda(ctx, a.get(), a.get(), a.get(), 2, 0, 8).code() ==
        StatusCode::kInvalidArgument);
}

// Ins: the 16-byte path (8, 256, 1000, 1024, 3072, 6144), the element path (13, 203), the warp
// (<= 256) and block (> 256) orders of rmsnorm.cu, and staging above 48 KB (6144 at rows > 4,
// exactly kSkinnyStageMaxBytes at 8 rows).
TEST(cuda_skinny_rmsnorm_linear_matches_the_unfused_pair_and_the_oracle) {
  CudaContext& ctx = cuda_test_context();
  Rng rng(8080);
  int cases = 0;
  for (int64_t in : {8, 13, 203, 256, 1000, 1024, 3072, 6144})
    for (int64_t rows = 1; rows <= kSkinnyMaxRows; ++rows) {
      CHECK(skinny_rmsnorm_fits(rows, in));
      const NormInputs n = norm_inputs(ctx, rng, rows, in);
      std::vector<float> xn;
      const DeviceBuffer dxn = unfused_norm(ctx, n, rows, in, &xn, shape(rows, in, 0));
      for (int64_t out : {1, 7, 33, 130}) {
        if (in >= 3072 && out > 33) continue;  // keeps the host oracle quick
        const auto W = bf16_rounded(random_vector(rng, out * in));
        const DeviceBuffer dW = to_device(ctx, W, DevDType::kBF16);
        const std::vector<double> dots = host_dots(xn, W, rows, in, out);
        for (const SkinnyLaunch& core : kCores)
          for (DevDType t : {DevDType::kF32, DevDType::kBF16})
            for (bool acc : {false, true}) {
              const std::string what = shape(rows, in, out) + " " + dev_dtype_name(t) +
                                       core_name(core) + (acc ? " accumulate" : "");
              std::vector<float> y0 = poisoned(rows * out + kTail);
              if (acc) {
                const auto r0 = random_vector(rng, rows * out);
                std::copy(r0.begin(), r0.end(), y0.begin());
              }
              if (t == DevDType::kBF16) y0 = bf16_rounded(y0);
              DeviceBuffer dref = to_device(ctx, y0, t), dy = to_device(ctx, y0, t);
              CHECK_OK(skinny_linear_cuda(ctx, t, dref.get(), dxn.get(), dW.get(), rows, in, out,
                                          acc, core));
              CHECK_OK(skinny_rmsnorm_linear_cuda(
                  ctx, t, dy.get(), static_cast<const float*>(n.dx.get()),
                  static_cast<const float*>(n.dw.get()), kEps, dW.get(), rows, in, out, acc, core));
              const auto ref = to_host(ctx, dref, rows * out + kTail, t);
              const auto got = to_host(ctx, dy, rows * out + kTail, t);
              const size_t m = static_cast<size_t>(rows * out);
              const int64_t diff = bit_diffs(got, ref, m);
              CHECK_MSG(diff == 0,
                        what + ": " + std::to_string(diff) +
                            " outputs differ from rmsnorm_forward_cuda + skinny_linear_cuda");
              CHECK_MSG(unpoisoned_tail(got, m) == 0, what + ": wrote past the output");
              std::vector<float> want(m), head(got.begin(), got.begin() + m);
              for (size_t i = 0; i < m; ++i)
                want[i] = static_cast<float>(dots[i] + (acc ? y0[i] : 0.0));
              const double err = rel_norm_error(head, want);
              CHECK_MSG(err < tolerance(t, core),
                        what + ": relative error " + std::to_string(err) + " vs the host oracle");
              ++cases;
            }
      }
    }
  std::printf("    %d fused rmsnorm linear cases\n", cases);
}

TEST(cuda_skinny_rmsnorm_swiglu_matches_the_unfused_pair_and_the_oracle) {
  CudaContext& ctx = cuda_test_context();
  Rng rng(9090);
  for (int64_t in : {8, 13, 256, 1000, 1024, 6144})
    for (int64_t rows = 1; rows <= kSkinnyMaxRows; ++rows)
      for (int64_t inter : {1, 9, 70}) {
        const std::string what = shape(rows, in, inter) + " swiglu";
        const NormInputs n = norm_inputs(ctx, rng, rows, in);
        std::vector<float> xn;
        const DeviceBuffer dxn = unfused_norm(ctx, n, rows, in, &xn, what);
        const auto W = bf16_rounded(random_vector(rng, 2 * inter * in));
        const DeviceBuffer dW = to_device(ctx, W, DevDType::kBF16);
        const int64_t m = rows * inter;
        const std::vector<double> dots = host_dots(xn, W, rows, in, 2 * inter);
        const std::vector<float> want = host_swiglu(dots, rows, inter);
        for (const SkinnyLaunch& core : kCores) {
          const std::string wc = what + core_name(core);
          DeviceBuffer dref = poisoned_device(ctx, m + kTail, DevDType::kBF16);
          DeviceBuffer da = poisoned_device(ctx, m + kTail, DevDType::kBF16);
          CHECK_OK(skinny_swiglu_linear_cuda(ctx, dref.get(), dxn.get(), dW.get(), rows, in, inter,
                                             core));
          CHECK_OK(skinny_rmsnorm_swiglu_linear_cuda(
              ctx, da.get(), static_cast<const float*>(n.dx.get()),
              static_cast<const float*>(n.dw.get()), kEps, dW.get(), rows, in, inter, core));
          const auto ref = to_host(ctx, dref, m + kTail, DevDType::kBF16);
          const auto got = to_host(ctx, da, m + kTail, DevDType::kBF16);
          const int64_t diff = bit_diffs(got, ref, static_cast<size_t>(m));
          CHECK_MSG(diff == 0,
                    wc + ": " + std::to_string(diff) + " outputs differ from the unfused pair");
          CHECK_MSG(unpoisoned_tail(got, static_cast<size_t>(m)) == 0,
                    wc + ": wrote past the output");
          const std::vector<float> head(got.begin(), got.begin() + m);
          const double err = rel_norm_error(head, want);
          CHECK_MSG(err < 1e-2, wc + ": relative error " + std::to_string(err));
        }
      }
}

// Row r of a batch of M rows has the bits of row r computed alone, for every M and every form.
TEST(cuda_skinny_forms_are_batch_invariant) {
  CudaContext& ctx = cuda_test_context();
  Rng rng(1234);
  const int64_t R = kSkinnyMaxRows;
  for (int64_t in : {13, 256, 1000, 3072})
    for (int64_t out : {5, 130}) {
      const SkinnyInputs inputs = skinny_inputs(ctx, rng, R, in, 2 * out);
      const DeviceBuffer& dW = inputs.dW;
      const auto* x32 = static_cast<const float*>(inputs.n.dx.get());
      const auto* nw = static_cast<const float*>(inputs.n.dw.get());
      const auto* x16 = static_cast<const char*>(inputs.dxb.get());
      // Form f of rows [r0, r0 + rows) into y (rows, cols): 0 linear fp32, 1 swiglu, 2 fused
      // linear bf16, 3 fused swiglu; cols = out (linear) or out / 2 (swiglu, inter = out / 2).
      auto run = [&](int f, int64_t r0, int64_t rows, void* y, const SkinnyLaunch& core) {
        const int64_t inter = out / 2;
        switch (f) {
          case 0:
            return skinny_linear_cuda(ctx, DevDType::kF32, y, x16 + 2 * r0 * in, dW.get(), rows, in,
                                      out, false, core);
          case 1:
            return skinny_swiglu_linear_cuda(ctx, y, x16 + 2 * r0 * in, dW.get(), rows, in, inter,
                                             core);
          case 2:
            return skinny_rmsnorm_linear_cuda(ctx, DevDType::kBF16, y, x32 + r0 * in, nw, kEps,
                                              dW.get(), rows, in, out, false, core);
          default:
            return skinny_rmsnorm_swiglu_linear_cuda(ctx, y, x32 + r0 * in, nw, kEps, dW.get(),
                                                     rows, in, inter, core);
        }
      };
      for (int fc = 0; fc < 8; ++fc) {
        const int f = fc % 4;
        const SkinnyLaunch& core = kCores[fc / 4];
        const DevDType t = f == 0 ? DevDType::kF32 : DevDType::kBF16;
        const int64_t cols = (f % 2 == 0) ? out : out / 2;
        std::vector<std::vector<float>> alone;
        for (int64_t r = 0; r < R; ++r) {
          DeviceBuffer dy = poisoned_device(ctx, cols, t);
          CHECK_OK(run(f, r, 1, dy.get(), core));
          alone.push_back(to_host(ctx, dy, cols, t));
        }
        for (int64_t M = 1; M <= R; ++M) {
          DeviceBuffer dy = poisoned_device(ctx, M * cols, t);
          CHECK_OK(run(f, 0, M, dy.get(), core));
          const auto got = to_host(ctx, dy, M * cols, t);
          for (int64_t r = 0; r < M; ++r) {
            const std::vector<float> row(got.begin() + r * cols, got.begin() + (r + 1) * cols);
            const int64_t diff = bit_diffs(row, alone[r], static_cast<size_t>(cols));
            CHECK_MSG(diff == 0, "form " + std::to_string(f) + core_name(core) + " " +
                                     shape(M, in, out) + " row " + std::to_string(r) + ": " +
                                     std::to_string(diff) + " outputs differ from the row alone");
          }
        }
      }
    }
}

// Layers wide enough for the tensor-core forms' 4-slice split (>= 512 tiles: the 0.6B q|k|v and
// gate|up; the shapes above take the 16-slice one): fused == unfused bit for bit, batch
// invariance, and the host oracle, on both cores.
TEST(cuda_skinny_wide_layers_fused_unfused_and_batch_invariant) {
  CudaContext& ctx = cuda_test_context();
  Rng rng(5353);
  const int64_t in = 1024, out = 4096 + 24, inter = 2048 + 12;
  const int64_t R = kSkinnyMaxRows;
  const SkinnyInputs inputs = skinny_inputs(ctx, rng, R, in, out);
  const auto* x32 = static_cast<const float*>(inputs.n.dx.get());
  const auto* nw = static_cast<const float*>(inputs.n.dw.get());
  std::vector<float> xn;
  const DeviceBuffer dxn = unfused_norm(ctx, inputs.n, R, in, &xn, "wide");
  const std::vector<double> dots = host_dots(xn, inputs.W, R, in, out);
  const std::vector<float> act_want =
      host_swiglu(host_dots(xn, inputs.W, R, in, 2 * inter), R, inter);
  for (const SkinnyLaunch& core : kCores) {
    std::vector<float> lin_alone, act_alone;  // rows computed one at a time
    for (int64_t M : {int64_t{1}, int64_t{5}, R}) {
      const std::string what = "wide rows " + std::to_string(M) + core_name(core);
      DeviceBuffer y = poisoned_device(ctx, M * out, DevDType::kF32);
      DeviceBuffer yf = poisoned_device(ctx, M * out, DevDType::kF32);
      DeviceBuffer a = poisoned_device(ctx, M * inter, DevDType::kBF16);
      DeviceBuffer af = poisoned_device(ctx, M * inter, DevDType::kBF16);
      CHECK_OK(skinny_linear_cuda(ctx, DevDType::kF32, y.get(), dxn.get(), inputs.dW.get(), M, in,
                                  out, false, core));
      CHECK_OK(skinny_rmsnorm_linear_cuda(ctx, DevDType::kF32, yf.get(), x32, nw, kEps,
                                          inputs.dW.get(), M, in, out, false, core));
      CHECK_OK(
          skinny_swiglu_linear_cuda(ctx, a.get(), dxn.get(), inputs.dW.get(), M, in, inter, core));
      CHECK_OK(skinny_rmsnorm_swiglu_linear_cuda(ctx, af.get(), x32, nw, kEps, inputs.dW.get(), M,
                                                 in, inter, core));
      const auto yl = to_host(ctx, y, M * out, DevDType::kF32);
      const auto yfl = to_host(ctx, yf, M * out, DevDType::kF32);
      const auto al = to_host(ctx, a, M * inter, DevDType::kBF16);
      const auto afl = to_host(ctx, af, M * inter, DevDType::kBF16);
      CHECK_MSG(bit_diffs(yfl, yl, yl.size()) == 0, what + ": fused linear differs from unfused");
      CHECK_MSG(bit_diffs(afl, al, al.size()) == 0, what + ": fused swiglu differs from unfused");
      std::vector<float> want(static_cast<size_t>(M * out));
      for (size_t i = 0; i < want.size(); ++i) want[i] = static_cast<float>(dots[i]);
      const double err = rel_norm_error(yl, want);
      CHECK_MSG(err < tolerance(DevDType::kF32, core),
                what + ": linear relative error " + std::to_string(err));
      const std::vector<float> aw(act_want.begin(), act_want.begin() + M * inter);
      const double aerr = rel_norm_error(al, aw);
      CHECK_MSG(aerr < 1e-2, what + ": swiglu relative error " + std::to_string(aerr));
      if (M == 1) {
        lin_alone = yl;
        act_alone = al;
      } else {  // row 0 of the batch has the bits of row 0 alone
        CHECK_MSG(bit_diffs(yl, lin_alone, static_cast<size_t>(out)) == 0,
                  what + ": linear row 0 differs from the row alone");
        CHECK_MSG(bit_diffs(al, act_alone, static_cast<size_t>(inter)) == 0,
                  what + ": swiglu row 0 differs from the row alone");
      }
    }
  }
}

// Programmatic dependent launches (pdl = true), also with an L2 prefetch of the next kernel's
// weights (SkinnyLaunch::ahead), give every form's bits, alone and in a chain where each kernel
// reads what the one before it wrote while that one let it launch early: the decoder's residual
// stream (x += down(swiglu(norm x)); x += o(q(norm x))) at the 0.6B widths.
TEST(cuda_skinny_pdl_launches_give_the_same_bits) {
  CudaContext& ctx = cuda_test_context();
  Rng rng(4242);
  for (const SkinnyLaunch& core : kCores)
    for (int64_t rows : {1, 4, 8})
      for (int64_t in : {13, 1024, 3072})
        for (int64_t out : {7, 130}) {
          const std::string what = shape(rows, in, out) + core_name(core) + " pdl";
          const SkinnyInputs inputs = skinny_inputs(ctx, rng, rows, in, 2 * out);
          const DeviceBuffer &dxb = inputs.dxb, &dW = inputs.dW;
          const auto* nx = static_cast<const float*>(inputs.n.dx.get());
          const auto* nw = static_cast<const float*>(inputs.n.dw.get());
          std::vector<float> got[4][3];
          for (int p = 0; p < 3; ++p) {  // plain, pdl, pdl + ahead (an odd byte count of W)
            const SkinnyLaunch pdl{p >= 1, core.tensor_cores,
                                   p == 2 ? L2Ahead{dW.get(), 2 * in * out + 3} : L2Ahead{}};
            DeviceBuffer a = poisoned_device(ctx, rows * out + kTail, DevDType::kF32);
            DeviceBuffer b = poisoned_device(ctx, rows * out + kTail, DevDType::kBF16);
            DeviceBuffer c = poisoned_device(ctx, rows * out + kTail, DevDType::kBF16);
            DeviceBuffer d = poisoned_device(ctx, rows * out + kTail, DevDType::kF32);
            CHECK_OK(skinny_linear_cuda(ctx, DevDType::kF32, a.get(), dxb.get(), dW.get(), rows, in,
                                        out, false, pdl));
            CHECK_OK(
                skinny_swiglu_linear_cuda(ctx, b.get(), dxb.get(), dW.get(), rows, in, out, pdl));
            CHECK_OK(skinny_rmsnorm_swiglu_linear_cuda(ctx, c.get(), nx, nw, kEps, dW.get(), rows,
                                                       in, out, pdl));
            CHECK_OK(skinny_rmsnorm_linear_cuda(ctx, DevDType::kF32, d.get(), nx, nw, kEps,
                                                dW.get(), rows, in, out, false, pdl));
            got[0][p] = to_host(ctx, a, rows * out + kTail, DevDType::kF32);
            got[1][p] = to_host(ctx, b, rows * out + kTail, DevDType::kBF16);
            got[2][p] = to_host(ctx, c, rows * out + kTail, DevDType::kBF16);
            got[3][p] = to_host(ctx, d, rows * out + kTail, DevDType::kF32);
          }
          const char* forms[] = {"linear", "swiglu", "rmsnorm swiglu", "rmsnorm linear"};
          for (int f = 0; f < 4; ++f)
            for (int p = 1; p < 3; ++p)
              CHECK_MSG(bit_diffs(got[f][p], got[f][0], got[f][0].size()) == 0,
                        what + " " + forms[f] + ": the pdl launch" +
                            (p == 2 ? " with the L2 prefetch" : "") + " changed bits");
        }
  const int64_t H = 1024, I = 3072;
  const auto small = [&](int64_t count) {
    auto v = random_vector(rng, count);
    for (float& e : v) e *= 0.03f;
    return bf16_rounded(v);
  };
  const DeviceBuffer wgu = to_device(ctx, small(2 * I * H), DevDType::kBF16),
                     wd = to_device(ctx, small(H * I), DevDType::kBF16),
                     wq = to_device(ctx, small(H * H), DevDType::kBF16),
                     wo = to_device(ctx, small(H * H), DevDType::kBF16);
  auto nwv = random_vector(rng, H);
  for (float& v : nwv) v = 1.0f + 0.5f * v;
  const DeviceBuffer nw = to_device(ctx, nwv, DevDType::kF32);
  const auto* nwp = static_cast<const float*>(nw.get());
  for (int64_t rows : {1, 8})
    for (const SkinnyLaunch& core : kCores) {
      const auto x0 = random_vector(rng, rows * H);
      std::vector<float> final_x[3];
      for (int p = 0; p < 3; ++p) {  // plain, pdl, pdl with each kernel prefetching the next's W
        const SkinnyLaunch pdl{p >= 1, core.tensor_cores};
        auto next = [&](const DeviceBuffer& w, int64_t elems) {
          SkinnyLaunch l = pdl;
          if (p == 2) l.ahead = L2Ahead{w.get(), 2 * elems};
          return l;
        };
        DeviceBuffer x = to_device(ctx, x0, DevDType::kF32);
        DeviceBuffer act = poisoned_device(ctx, rows * I, DevDType::kBF16);
        DeviceBuffer q = poisoned_device(ctx, rows * H, DevDType::kBF16);
        auto* xp = static_cast<float*>(x.get());
        for (int it = 0; it < 24; ++it) {
          CHECK_OK(skinny_rmsnorm_swiglu_linear_cuda(ctx, act.get(), xp, nwp, kEps, wgu.get(), rows,
                                                     H, I, next(wd, H * I)));
          CHECK_OK(skinny_linear_cuda(ctx, DevDType::kF32, xp, act.get(), wd.get(), rows, I, H,
                                      true, next(wq, H * H)));
          CHECK_OK(skinny_rmsnorm_linear_cuda(ctx, DevDType::kBF16, q.get(), xp, nwp, kEps,
                                              wq.get(), rows, H, H, false, next(wo, H * H)));
          CHECK_OK(skinny_linear_cuda(ctx, DevDType::kF32, xp, q.get(), wo.get(), rows, H, H, true,
                                      next(wgu, 2 * I * H)));
        }
        final_x[p] = to_host(ctx, x, rows * H, DevDType::kF32);
      }
      int64_t nonfinite = 0;
      for (float v : final_x[1]) nonfinite += !std::isfinite(v);
      CHECK_MSG(nonfinite == 0, "the chain went non-finite: make its weights smaller");
      CHECK_MSG(bit_diffs(final_x[2], final_x[0], final_x[0].size()) == 0,
                "rows " + std::to_string(rows) + core_name(core) +
                    ": the pdl chain with L2 prefetches of the next weights differs from the " +
                    "plain launches'");
      CHECK_MSG(bit_diffs(final_x[1], final_x[0], final_x[0].size()) == 0,
                "rows " + std::to_string(rows) + core_name(core) +
                    ": the pdl chain's residual differs from the " +
                    "plain launches' (a kernel read its input before the one before it finished)");
    }
}

TEST(cuda_skinny_rmsnorm_forms_refuse_what_they_cannot_stage) {
  CudaContext& ctx = cuda_test_context();
  Rng rng(77);
  const int64_t big =
      kSkinnyStageMaxBytes / 2 / kSkinnyMaxRows;  // in that fills the stage at 8 rows
  CHECK(skinny_rmsnorm_fits(kSkinnyMaxRows, big));
  CHECK(!skinny_rmsnorm_fits(kSkinnyMaxRows, big + 1));
  CHECK(skinny_rmsnorm_fits(1, big + 1));
  CHECK(!skinny_rmsnorm_fits(0, 8) && !skinny_rmsnorm_fits(kSkinnyMaxRows + 1, 8));
  DeviceBuffer x = to_device(ctx, random_vector(rng, kSkinnyMaxRows * (big + 1)), DevDType::kF32);
  DeviceBuffer w = to_device(ctx, random_vector(rng, big + 1), DevDType::kF32);
  DeviceBuffer W = to_device(ctx, random_vector(rng, 2 * (big + 1)), DevDType::kBF16);
  DeviceBuffer y = poisoned_device(ctx, 64, DevDType::kF32);
  const auto* xp = static_cast<const float*>(x.get());
  const auto* wp = static_cast<const float*>(w.get());
  auto code = [](const Status& s) { return s.code(); };
  const StatusCode bad = StatusCode::kInvalidArgument;
  // Too much to stage: refused, nothing launched, nothing written.
  CHECK(code(skinny_rmsnorm_linear_cuda(ctx, DevDType::kF32, y.get(), xp, wp, kEps, W.get(),
                                        kSkinnyMaxRows, big + 1, 1, false)) == bad);
  CHECK(code(skinny_rmsnorm_swiglu_linear_cuda(ctx, y.get(), xp, wp, kEps, W.get(), kSkinnyMaxRows,
                                               big + 1, 1)) == bad);
  CHECK(unpoisoned_tail(to_host(ctx, y, 64, DevDType::kF32), 0) == 0);
  for (int64_t rows : {int64_t{0}, kSkinnyMaxRows + 1})
    CHECK(code(skinny_rmsnorm_linear_cuda(ctx, DevDType::kF32, y.get(), xp, wp, kEps, W.get(), rows,
                                          8, 8, false)) == bad);
  CHECK(code(skinny_rmsnorm_linear_cuda(ctx, DevDType::kF32, y.get(), xp, nullptr, kEps, W.get(), 1,
                                        8, 8, false)) == bad);
  CHECK(code(skinny_rmsnorm_swiglu_linear_cuda(ctx, y.get(), nullptr, wp, kEps, W.get(), 1, 8,
                                               4)) == bad);
  // The output overlapping x: refused (other CTAs would still be reading x).
  CHECK(code(skinny_rmsnorm_linear_cuda(ctx, DevDType::kF32, x.get(), xp, wp, kEps, W.get(), 2, 8,
                                        4, true)) == bad);
  CHECK(code(skinny_rmsnorm_swiglu_linear_cuda(ctx, x.get(), xp, wp, kEps, W.get(), 2, 8, 1)) ==
        bad);
  // A prefetch range without a pointer or with negative bytes: refused by every form.
  for (const L2Ahead a : {L2Ahead{nullptr, 256}, L2Ahead{W.get(), -1}}) {
    const SkinnyLaunch l{false, false, a};
    CHECK(code(skinny_linear_cuda(ctx, DevDType::kF32, y.get(), W.get(), W.get(), 1, 8, 2, false,
                                  l)) == bad);
    CHECK(code(skinny_swiglu_linear_cuda(ctx, y.get(), W.get(), W.get(), 1, 8, 1, l)) == bad);
    CHECK(code(skinny_rmsnorm_linear_cuda(ctx, DevDType::kF32, y.get(), xp, wp, kEps, W.get(), 2, 8,
                                          2, false, l)) == bad);
    CHECK(code(skinny_rmsnorm_swiglu_linear_cuda(ctx, y.get(), xp, wp, kEps, W.get(), 2, 8, 1,
                                                 l)) == bad);
  }
  CHECK(unpoisoned_tail(to_host(ctx, y, 64, DevDType::kF32), 0) == 0);
  // A legal call still runs after the refusals (no sticky error left behind).
  CHECK_OK(skinny_rmsnorm_linear_cuda(ctx, DevDType::kF32, y.get(), xp, wp, kEps, W.get(), 2, 8, 2,
                                      false));
  CHECK(unpoisoned_tail(to_host(ctx, y, 4, DevDType::kF32), 0) == 4);
}

#else
TEST(cuda_skinny_linear_needs_a_cuda_build) {
  SKIP("built without CUDA (NPR_CUDA=off or no nvcc)");
}
#endif

}  // namespace npr::test
