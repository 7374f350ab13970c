// Each sm_90a warpgroup-MMA wrapper (wgmma.cuh) on its own, through wgmma_probe: small integer
// operands (every product and sum exact in fp32), accumulators written out by the fragment
// layout the attention kernels assume, compared bit for bit with a host matmul
// (test_wgmma_probe_cases.h; the emulator runs the same cases, test_emu_wgmma_probe.cpp). A failure
// here names the wrapper (descriptor, transpose, register-A or accumulator layout) that the
// attention tests would only show as wrong attention. Skips unless the build has the sm_90a
// kernels and the device is an sm_90 one.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "tests/harness.h"
#include "tests/test_util.h"
#if defined(NPR_WITH_CUDA)
#include "kernels/parallel_attention_wgmma.h"
#include "tests/test_cuda_util.h"
#if defined(NPR_HAVE_SM90A)
#include "kernels/wgmma_probe.h"
#include "tests/test_wgmma_probe_cases.h"
#endif
#endif

namespace npr::test {

#if defined(NPR_WITH_CUDA) && defined(NPR_HAVE_SM90A)
namespace {

std::vector<float> run(CudaContext& ctx, WgmmaProbe kind, const std::vector<uint16_t>& a,
                       const std::vector<uint16_t>& b, int64_t out) {
  DeviceBuffer da, db, dd;
  CHECK_OK(da.grow(ctx.alloc(), 2 * static_cast<int64_t>(a.size()), "probe a"));
  CHECK_OK(db.grow(ctx.alloc(), 2 * static_cast<int64_t>(b.size()), "probe b"));
  CHECK_OK(dd.grow(ctx.alloc(), 4 * out, "probe d"));
  CHECK_OK(ctx.upload(da.get(), a.data(), 2 * static_cast<int64_t>(a.size()), "a"));
  CHECK_OK(ctx.upload(db.get(), b.data(), 2 * static_cast<int64_t>(b.size()), "b"));
  CHECK_OK(ctx.sync("probe uploads"));
  CHECK_OK(wgmma_probe(kind, da.as<uint16_t>(), db.as<uint16_t>(), dd.as<float>()));
  std::vector<float> d(static_cast<size_t>(out));
  CHECK_OK(ctx.download(d.data(), dd.get(), 4 * out, "probe d"));
  return d;
}

}  // namespace
#endif

TEST(cuda_wgmma_wrappers_match_a_host_matmul) {
#if !defined(NPR_WITH_CUDA)
  SKIP("CUDA not compiled into this build");
#elif !defined(NPR_HAVE_SM90A)
  SKIP("this build has no sm_90a kernels");
#else
  CudaContext& ctx = cuda_test_context();
  if (!attention_wgmma_available()) SKIP("the wgmma kernels need an sm_90 device");
  check_wgmma_probe([&](WgmmaProbe kind, const std::vector<uint16_t>& a,
                        const std::vector<uint16_t>& b,
                        int64_t out) { return run(ctx, kind, a, b, out); });
#endif
}

}  // namespace npr::test
