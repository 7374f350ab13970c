// The RMSNorm prologue of the fused skinny kernels (skinny_rmsnorm_stage.cuh, which the
// one-kernel decode step runs too) in the kernel emulator: the fused RMSNorm + linear and
// RMSNorm + SwiGLU calls give rmsnorm_forward_cuda + the unfused call's outputs bit for bit, for
// both forms of the prologue (a warp a row up to 256; above, the CTA's 128 threads as 256
// virtual ones, rows shorter than a pass of them, one pass, several), row counts 1..8, both
// cores; and the prologue's rstd is rmsnorm.cu's, bit for bit. Without a GPU this is where the
// prologue's sum order is held to rmsnorm.cu's (test_cuda_skinny.cpp checks the outputs on a
// GPU, where a one-ulp rstd rarely moves a bf16).
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "tests/harness.h"
#include "tests/test_util.h"
#if defined(NPR_HAVE_EMU)
#include "tests/emu/emu_cuda_api.h"
#include "tests/emu/emu_skinny_norm.h"
#endif

namespace npr::test {

TEST(emu_skinny_fused_norm_gives_the_unfused_bits) {
#if !defined(NPR_HAVE_EMU)
  SKIP("the kernel emulator is not built (no CUDA toolkit headers, or NPR_EMU=off)");
#else
  emu::set_device(emu::Device{});
  Rng rng(4242);
  int cases = 0;
  for (int64_t in : {40, 256, 264, 1000, 1024, 1544})
    for (int64_t rows : {1, 3, 8})
      for (bool swiglu : {false, true})
        for (bool tc : {false, true}) {
          const emu::NormPair p{rows, in, swiglu ? 5 : 9, swiglu, tc, 1e-6f};
          std::vector<float> x = random_vector(rng, rows * in), nw = random_vector(rng, in);
          for (float& v : x) v *= 3.0f;  // a spread of magnitudes, so that rounding order shows
          for (float& v : nw) v += 1.0f;
          const std::vector<float> w = random_vector(rng, (swiglu ? 2 : 1) * p.out * in);
          std::vector<uint16_t> W(w.size());
          for (size_t i = 0; i < w.size(); ++i) W[i] = f32_to_bf16(w[i]).bits;
          std::vector<float> fused, unfused;
          const std::string what = "rows " + std::to_string(rows) + " in " + std::to_string(in) +
                                   (swiglu ? " swiglu" : " linear") + (tc ? " tensor cores" : "");
          const std::string fault = emu::run_norm_pair(p, x, nw, W, &fused, &unfused);
          CHECK_MSG(fault.empty(), what + ": " + fault);
          if (!fault.empty()) continue;
          int64_t differ = 0;
          for (size_t i = 0; i < fused.size(); ++i)
            differ += std::memcmp(&fused[i], &unfused[i], 4) != 0 ? 1 : 0;
          CHECK_MSG(differ == 0, what + ": " + std::to_string(differ) + " of " +
                                     std::to_string(fused.size()) + " outputs differ");
          ++cases;
        }
  std::printf("    %d fused / unfused cases\n", cases);
#endif
}

// The prologue's rstd itself against rmsnorm.cu's forward kernels', bit for bit: every row count,
// both forms of the prologue, rows shorter than a pass of the virtual threads, one pass, several.
// A sum in another order shows here (in the outputs above a one-ulp rstd rarely moves a bf16):
// swapping which virtual thread sums a term failed 116 of its 288 rows.
TEST(emu_skinny_norm_prologue_sums_as_rmsnorm) {
#if !defined(NPR_HAVE_EMU)
  SKIP("the kernel emulator is not built (no CUDA toolkit headers, or NPR_EMU=off)");
#else
  emu::set_device(emu::Device{});
  Rng rng(777);
  int rows_checked = 0;
  for (int64_t in : {40, 256, 264, 1000, 1024, 1544, 3000, 6152})
    for (int64_t rows = 1; rows <= 8; ++rows) {
      // Each row's terms in one lane's share only (columns t0 + 128 j, the rest zero): squares
      // of 2^-24, and one of 1 at a random place. Summed from the start, each tiny square that
      // comes after the 1 is lost in its rounding and each before it is kept, so the order of
      // the lane's sums reaches rstd's bits (in a dense row it hardly ever would).
      std::vector<float> x(static_cast<size_t>(rows * in), 0.0f);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t t0 = rng.below(in < 128 ? in : 128), terms = (in - t0 + 127) / 128;
        const int64_t big = rng.below(terms);
        for (int64_t j = 0; j < terms; ++j)
          x[r * in + t0 + 128 * j] = j == big ? 1.0f : 1.0f / 4096.0f;
      }
      std::vector<float> prologue, rmsnorm;
      const std::string what = "rows " + std::to_string(rows) + " in " + std::to_string(in);
      const std::string fault = emu::run_row_rstd(rows, in, 1e-6f, x, &prologue, &rmsnorm);
      CHECK_MSG(fault.empty(), what + ": " + fault);
      if (!fault.empty()) continue;
      for (int64_t r = 0; r < rows; ++r) {
        CHECK_MSG(std::memcmp(&prologue[r], &rmsnorm[r], 4) == 0,
                  what + ", row " + std::to_string(r) + ": rstd " + std::to_string(prologue[r]) +
                      " vs rmsnorm's " + std::to_string(rmsnorm[r]));
        ++rows_checked;
      }
    }
  std::printf("    %d rows' rstd\n", rows_checked);
#endif
}

}  // namespace npr::test
