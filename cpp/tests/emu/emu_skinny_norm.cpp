// emu_skinny_norm.h in the emulator build: a context, the inputs uploaded, both calls.
#include "tests/emu/emu_skinny_norm.h"

#include <memory>

#include "core/cuda_context.h"
#include "core/dtype.h"
#include "core/dynamic_shared.cuh"
#include "kernels/rmsnorm_cuda.h"
#include "kernels/rmsnorm_rows.cuh"
#include "kernels/skinny_linear_cuda.h"
#include "kernels/skinny_linear_launch.h"
#include "kernels/skinny_rmsnorm_stage.cuh"
#include "tests/emu/emu_runtime.h"
#include "tests/emu/emu_status_message.h"

namespace emu {

namespace {

using npr::DevDType;

// out (n) fp32 from a download of n elements of type t.
npr::Status widened(npr::CudaContext& ctx, const npr::DeviceBuffer& d, int64_t n, DevDType t,
                    std::vector<float>* out) {
  out->assign(static_cast<size_t>(n), 0.0f);
  if (t == DevDType::kF32) return ctx.download(out->data(), d.get(), 4 * n, "emu norm pair: y");
  std::vector<uint16_t> bits(static_cast<size_t>(n));
  NPR_TRY(ctx.download(bits.data(), d.get(), 2 * n, "emu norm pair: act"));
  for (int64_t i = 0; i < n; ++i) (*out)[i] = npr::bf16_to_f32(npr::bf16{bits[i]});
  return npr::Status::ok();
}

npr::Status pair(const NormPair& p, const std::vector<float>& x, const std::vector<float>& nw,
                 const std::vector<uint16_t>& W, std::vector<float>* fused,
                 std::vector<float>* unfused) {
  std::unique_ptr<npr::CudaContext> ctx;
  NPR_TRY(npr::CudaContext::create(&ctx));
  auto& al = ctx->alloc();
  const int64_t wrows = p.swiglu ? 2 * p.out : p.out, n = p.rows * p.out;
  const DevDType yt = p.swiglu ? DevDType::kBF16 : DevDType::kF32;
  npr::DeviceBuffer dx, dnw, dw, dxn, drstd, dy, dref;
  NPR_TRY(dx.grow(al, 4 * p.rows * p.in, "x"));
  NPR_TRY(dnw.grow(al, 4 * p.in, "norm weights"));
  NPR_TRY(dw.grow(al, 2 * wrows * p.in, "W"));
  NPR_TRY(dxn.grow(al, 2 * p.rows * p.in, "xn"));
  NPR_TRY(drstd.grow(al, 4 * p.rows, "rstd"));
  NPR_TRY(dy.grow(al, 4 * n, "fused y"));
  NPR_TRY(dref.grow(al, 4 * n, "unfused y"));
  NPR_TRY(ctx->upload(dx.get(), x.data(), 4 * p.rows * p.in, "x"));
  NPR_TRY(ctx->upload(dnw.get(), nw.data(), 4 * p.in, "norm weights"));
  NPR_TRY(ctx->upload(dw.get(), W.data(), 2 * wrows * p.in, "W"));
  const npr::SkinnyLaunch launch{false, p.tensor_cores};
  NPR_TRY(npr::rmsnorm_forward_cuda(*ctx, DevDType::kF32, DevDType::kBF16, dxn.get(),
                                    drstd.as<float>(), dx.get(), dnw.as<float>(), p.rows, p.in,
                                    p.eps));
  if (p.swiglu) {
    NPR_TRY(npr::skinny_swiglu_linear_cuda(*ctx, dref.get(), dxn.get(), dw.get(), p.rows, p.in,
                                           p.out, launch));
    NPR_TRY(npr::skinny_rmsnorm_swiglu_linear_cuda(*ctx, dy.get(), dx.as<float>(), dnw.as<float>(),
                                                   p.eps, dw.get(), p.rows, p.in, p.out, launch));
  } else {
    NPR_TRY(npr::skinny_linear_cuda(*ctx, yt, dref.get(), dxn.get(), dw.get(), p.rows, p.in, p.out,
                                    false, launch));
    NPR_TRY(npr::skinny_rmsnorm_linear_cuda(*ctx, yt, dy.get(), dx.as<float>(), dnw.as<float>(),
                                            p.eps, dw.get(), p.rows, p.in, p.out, false, launch));
  }
  NPR_TRY(widened(*ctx, dy, n, yt, fused));
  return widened(*ctx, dref, n, yt, unfused);
}

// One CTA of the skinny kernels' size: the rows' rstd by the prologue, out (M).
template <int M>
void rstd_kernel(const float* x, int64_t k, float eps, float* out) {
  NPR_STATIC_SHARED(float, rstd, [M]);
  npr::skinny::row_rstd<M>(rstd, x, k, eps);
  if (static_cast<int>(threadIdx.x) < M) out[threadIdx.x] = rstd[threadIdx.x];
}

}  // namespace

std::string run_row_rstd(int64_t rows, int64_t in, float eps, const std::vector<float>& x,
                         std::vector<float>* prologue, std::vector<float>* rmsnorm) {
  prologue->assign(static_cast<size_t>(rows), 0.0f);
  rmsnorm->assign(static_cast<size_t>(rows), 0.0f);
  const std::vector<float> ones(static_cast<size_t>(in), 1.0f);
  std::vector<float> y(x.size());
  clear_globals();
  register_global(x.data(), x.size() * 4);
  register_global(ones.data(), ones.size() * 4);
  register_global(y.data(), y.size() * 4, true);
  register_global(prologue->data(), prologue->size() * 4, true);
  register_global(rmsnorm->data(), rmsnorm->size() * 4, true);
  // rmsnorm.cu's forward kernels, launched as rmsnorm_forward_cuda launches them.
  namespace rr = npr::rmsnorm_rows;
  const bool warp_rows = in <= rr::kWarpRowMaxDim;
  const auto grid = static_cast<unsigned>(
      warp_rows ? (rows + rr::kRowsPerBlockWarp - 1) / rr::kRowsPerBlockWarp : rows);
  std::string fault = launch(grid, rr::kThreads, 0, [&] {
    if (warp_rows)
      rr::rmsnorm_forward_warp_kernel<float, float>(y.data(), rmsnorm->data(), x.data(),
                                                    ones.data(), rows, in, eps);
    else
      rr::rmsnorm_forward_block_kernel<float, float>(y.data(), rmsnorm->data(), x.data(),
                                                     ones.data(), rows, in, eps);
  });
  const auto body = [&] {
    (void)npr::skinny::with_rows(rows, true, [&](auto m, auto) {
      rstd_kernel<decltype(m)::value>(x.data(), in, eps, prologue->data());
      return npr::Status::ok();
    });
  };
  if (fault.empty()) fault = launch(1, npr::skinny::kThreads, 0, body);
  clear_globals();
  return fault;
}

std::string run_norm_pair(const NormPair& p, const std::vector<float>& x,
                          const std::vector<float>& nw, const std::vector<uint16_t>& W,
                          std::vector<float>* fused, std::vector<float>* unfused) {
  return status_message(pair(p, x, nw, W, fused, unfused));
}

}  // namespace emu
