// The decode-sized linear kernels (skinny_linear_cuda.h) against a double-precision host oracle
// on bf16-rounded inputs: every row count 1..8, odd output counts (a warp's second column past
// the end), in a multiple of 8 (the 16-byte path) and not (the element path), an x one element
// off its 16-byte alignment, fp32 and bf16 outputs, overwrite (outputs poisoned with NaN) and
// accumulate, the SwiGLU form over stacked gate/up rows, and the refused calls.
#include <cmath>
#include <string>
#include <vector>

#include "tests/harness.h"
#include "tests/test_util.h"
#if defined(NPR_WITH_CUDA)
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

std::string shape(int64_t rows, int64_t in, int64_t out) {
  return "rows " + std::to_string(rows) + " in " + std::to_string(in) + " out " +
         std::to_string(out);
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
        for (DevDType t : {DevDType::kF32, DevDType::kBF16})
          for (bool acc : {false, true}) {
            std::vector<float> y0 = acc ? random_vector(rng, rows * out) : poisoned(rows * out);
            if (t == DevDType::kBF16) y0 = bf16_rounded(y0);
            DeviceBuffer dy = to_device(ctx, y0, t);
            CHECK_OK(skinny_linear_cuda(ctx, t, dy.get(), xp, dW.get(), rows, in, out, acc));
            const auto got = to_host(ctx, dy, rows * out, t);
            std::vector<float> want(static_cast<size_t>(rows * out));
            for (size_t i = 0; i < want.size(); ++i)
              want[i] = static_cast<float>(dots[i] + (acc ? y0[i] : 0.0));
            const double err = rel_norm_error(got, want);
            const double tol = t == DevDType::kF32 ? 1e-5 : 1e-2;
            CHECK_MSG(err < tol, shape(rows, in, out) + " " + dev_dtype_name(t) +
                                     (acc ? " accumulate" : "") + (shift ? " unaligned x" : "") +
                                     ": relative error " + std::to_string(err));
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
        std::vector<float> want(static_cast<size_t>(rows * inter));
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t j = 0; j < inter; ++j) {
            const double g = bf16_to_f32(f32_to_bf16(static_cast<float>(dots[r * 2 * inter + j])));
            const double u =
                bf16_to_f32(f32_to_bf16(static_cast<float>(dots[r * 2 * inter + inter + j])));
            want[r * inter + j] = static_cast<float>(g / (1.0 + std::exp(-g)) * u);
          }
        DeviceBuffer dx = to_device(ctx, x, DevDType::kBF16),
                     dW = to_device(ctx, W, DevDType::kBF16);
        DeviceBuffer da = poisoned_device(ctx, rows * inter, DevDType::kBF16);
        CHECK_OK(skinny_swiglu_linear_cuda(ctx, da.get(), dx.get(), dW.get(), rows, in, inter));
        const auto got = to_host(ctx, da, rows * inter, DevDType::kBF16);
        const double err = rel_norm_error(got, want);
        CHECK_MSG(err < 1e-2,
                  shape(rows, in, inter) + " swiglu: relative error " + std::to_string(err));
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

#else
TEST(cuda_skinny_linear_needs_a_cuda_build) {
  SKIP("built without CUDA (NPR_CUDA=off or no nvcc)");
}
#endif

}  // namespace npr::test
