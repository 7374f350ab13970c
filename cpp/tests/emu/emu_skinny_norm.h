// The fused RMSNorm + skinny linear kernels (skinny_rmsnorm_linear_cuda,
// skinny_rmsnorm_swiglu_linear_cuda: their RMSNorm prologue is skinny_rmsnorm_stage.cuh's, the
// one-kernel decode step's too) against rmsnorm_forward_cuda + the unfused skinny call, on the
// emulated device. Plain types only: compiled into the emulator build (emu_skinny_norm.cpp,
// where namespace npr is npr_emu) and into the test.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace emu {

struct NormPair {
  int64_t rows, in, out;  // out: the SwiGLU's inter where swiglu
  bool swiglu, tensor_cores;
  float eps;
};

// x (rows, in) fp32, nw (in) fp32, W (out, in) bf16 bits, or (2 out, in) for the SwiGLU (gate
// rows, then up rows). fused and unfused get the two calls' outputs as fp32 (the SwiGLU's bf16
// widened). Returns "" or the first failed call's Status text.
std::string run_norm_pair(const NormPair& p, const std::vector<float>& x,
                          const std::vector<float>& nw, const std::vector<uint16_t>& W,
                          std::vector<float>* fused, std::vector<float>* unfused);

// skinny::row_rstd<rows> (the prologue's sums, skinny_rmsnorm_stage.cuh) on one emulated CTA,
// beside the rstd of rmsnorm.cu's forward kernels (rmsnorm_rows.cuh, launched as
// rmsnorm_forward_cuda launches them): x (rows, in) fp32. Returns "" or the fault. Both are
// compiled into emu_skinny_norm.cpp, built without floating-point contraction (CMakeLists.txt):
// the host compiler fuses a += b * c into one FMA or not by the code's shape (vectorised or
// not), where nvcc always fuses it, so only a build that never fuses compares two shapes'
// rounding as the GPU does.
std::string run_row_rstd(int64_t rows, int64_t in, float eps, const std::vector<float>& x,
                         std::vector<float>* prologue, std::vector<float>* rmsnorm);

}  // namespace emu
