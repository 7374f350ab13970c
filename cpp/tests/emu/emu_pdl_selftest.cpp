// emu_selftest.h's run_pdl_selftest: a producer kernel and a programmatic consumer on the
// emulated device, in deferred mode, each way the consumer may read or write around its wait.
#include <memory>
#include <string>
#include <vector>

#include "core/cuda_check.cuh"
#include "core/cuda_context.h"
#include "kernels/pdl.cuh"
#include "tests/emu/emu_selftest.h"
#include "tests/emu/emu_status_message.h"

namespace emu {

namespace {

constexpr int kFloats = 96;  // 3 blocks of 32

// x[i] = v. A programmatic launch (pdl) lets its dependents launch before its wait, or after it
// (late).
__global__ void produce_kernel(float* x, float v, bool pdl, bool late) {
  if (pdl && !late) npr::pdl::launch_dependents();
  if (pdl) npr::pdl::wait();
  if (pdl && late) npr::pdl::launch_dependents();
  x[blockIdx.x * blockDim.x + threadIdx.x] = v;
}

// out[i] = x[i], read before the wait (early) or after it; write_early: x[i] = -1 before it;
// no_wait: no thread waits.
__global__ void consume_kernel(float* out, float* x, bool early, bool write_early, bool no_wait) {
  npr::pdl::launch_dependents();
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  float got = early ? x[i] : 0.0f;
  if (write_early) x[i] = -1.0f;
  if (!no_wait) npr::pdl::wait();
  if (!early) got = x[i];
  out[i] = got;
}

#define EMU_TRY(expr)                                       \
  do {                                                      \
    const ::npr::Status emu_try_s_ = (expr);                \
    if (!emu_try_s_.is_ok()) return emu_try_s_.to_string(); \
  } while (0)

std::string run(const std::string& kind, npr::CudaContext& ctx, float* seen) {
  npr::DeviceBuffer x, y, out;
  EMU_TRY(x.grow(ctx.alloc(), 4 * kFloats, "selftest x"));
  EMU_TRY(y.grow(ctx.alloc(), 4 * kFloats, "selftest y"));
  EMU_TRY(out.grow(ctx.alloc(), 4 * kFloats, "selftest out"));
  const std::vector<float> ones(kFloats, 1.0f);
  EMU_TRY(ctx.upload(x.get(), ones.data(), 4 * kFloats, "selftest x"));
  EMU_TRY(ctx.upload(y.get(), ones.data(), 4 * kFloats, "selftest y"));
  const auto st = static_cast<cudaStream_t>(ctx.stream());
  const bool chain = kind.rfind("chain", 0) == 0;
  const bool no_wait = kind.rfind("no_wait", 0) == 0;
  const bool early = kind != "read_after_wait" && !no_wait, write = kind == "write_before_wait";
  const bool consumer_pdl = kind != "not_programmatic";
  // x = 2, the producer letting its dependents launch first thing (but for the "untriggered"
  // kinds); in a chain, a programmatic kernel between writes y = 3 (its dependents launching
  // before its wait, or after it: "chain_late"); then the consumer reads x.
  const bool triggers = kind.find("untriggered") == std::string::npos;
  EMU_TRY(npr::cuda_status(npr::pdl::launch(false, produce_kernel, dim3(3), dim3(32), 0, st,
                                            x.as<float>(), 2.0f, triggers, false),
                           "selftest producer"));
  if (chain)
    EMU_TRY(npr::cuda_status(npr::pdl::launch(true, produce_kernel, dim3(3), dim3(32), 0, st,
                                              y.as<float>(), 3.0f, true, kind == "chain_late"),
                             "selftest chain"));
  EMU_TRY(npr::cuda_status(npr::pdl::launch(consumer_pdl, consume_kernel, dim3(3), dim3(32), 0, st,
                                            out.as<float>(), x.as<float>(), early, write, no_wait),
                           "selftest consumer"));
  std::vector<float> got(kFloats);
  EMU_TRY(ctx.download(got.data(), out.get(), 4 * kFloats, "selftest out"));
  std::vector<float> after(kFloats);
  EMU_TRY(ctx.download(after.data(), x.get(), 4 * kFloats, "selftest x"));
  for (int i = 0; i < kFloats; ++i) {
    if (got[i] != got[0]) return "threads read different values";
    if (!write && after[i] != 2.0f) return "x is not what the producer wrote";
  }
  *seen = got[0];
  return {};
}

}  // namespace

std::string run_pdl_selftest(const std::string& kind, float* seen) {
  const bool was_deferred = deferred(), was_checking = pdl_check::enabled();
  set_deferred(true);
  pdl_check::set_enabled(kind != "unchecked");
  std::string out;
  {
    std::unique_ptr<npr::CudaContext> ctx;
    out = status_message(npr::CudaContext::create(&ctx));
    if (out.empty()) out = run(kind == "unchecked" ? "read_before_wait" : kind, *ctx, seen);
  }
  cudaDeviceReset();  // a fault's sticky error ends here
  pdl_check::set_enabled(was_checking);
  set_deferred(was_deferred);
  return out;
}

}  // namespace emu
