// Each sm_90a warpgroup-MMA wrapper (wgmma.cuh) on its own, through wgmma_probe: small integer
// operands (every product and sum exact in fp32), accumulators written out by the fragment
// layout the attention kernels assume, compared bit for bit with a host matmul. A failure here
// names the wrapper (descriptor, transpose, register-A or accumulator layout) that the
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
#endif
#endif

namespace npr::test {

#if defined(NPR_WITH_CUDA) && defined(NPR_HAVE_SM90A)
namespace {

// Integers in [-3, 3] as bf16 bits (exact), and their values.
struct IntMatrix {
  std::vector<float> value;
  std::vector<uint16_t> bits;
};
IntMatrix int_matrix(Rng& rng, int64_t n) {
  IntMatrix m;
  for (int64_t i = 0; i < n; ++i) {
    const float v = static_cast<float>(static_cast<int>(rng.below(7)) - 3);
    uint32_t u;
    std::memcpy(&u, &v, 4);
    m.value.push_back(v);
    m.bits.push_back(static_cast<uint16_t>(u >> 16));  // small integers: the low half is zero
  }
  return m;
}

std::vector<float> run(CudaContext& ctx, WgmmaProbe kind, const IntMatrix& a, const IntMatrix& b,
                       int64_t out) {
  DeviceBuffer da, db, dd;
  CHECK_OK(da.grow(ctx.alloc(), 2 * static_cast<int64_t>(a.bits.size()), "probe a"));
  CHECK_OK(db.grow(ctx.alloc(), 2 * static_cast<int64_t>(b.bits.size()), "probe b"));
  CHECK_OK(dd.grow(ctx.alloc(), 4 * out, "probe d"));
  CHECK_OK(ctx.upload(da.get(), a.bits.data(), 2 * static_cast<int64_t>(a.bits.size()), "a"));
  CHECK_OK(ctx.upload(db.get(), b.bits.data(), 2 * static_cast<int64_t>(b.bits.size()), "b"));
  CHECK_OK(ctx.sync("probe uploads"));
  CHECK_OK(wgmma_probe(kind, da.as<uint16_t>(), db.as<uint16_t>(), dd.as<float>()));
  std::vector<float> d(static_cast<size_t>(out));
  CHECK_OK(ctx.download(d.data(), dd.get(), 4 * out, "probe d"));
  return d;
}

// First mismatch as "(row, col): got vs want", or empty.
std::string first_mismatch(const std::vector<float>& got, const std::vector<float>& want,
                           int64_t cols) {
  for (size_t i = 0; i < want.size(); ++i)
    if (got[i] != want[i])
      return "(" + std::to_string(i / cols) + ", " + std::to_string(i % cols) +
             "): " + std::to_string(got[i]) + " vs " + std::to_string(want[i]);
  return "";
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
  Rng rng(99);
  {  // d (64, 64) = a (64, 128) b (64, 128)^T, both K-major, 8 k-steps over two column blocks.
    const IntMatrix a = int_matrix(rng, 64 * 128), b = int_matrix(rng, 64 * 128);
    std::vector<float> want(64 * 64, 0.0f);
    for (int m = 0; m < 64; ++m)
      for (int n = 0; n < 64; ++n)
        for (int k = 0; k < 128; ++k)
          want[m * 64 + n] += a.value[m * 128 + k] * b.value[n * 128 + k];
    const std::string bad =
        first_mismatch(run(ctx, WgmmaProbe::kSsKMajor, a, b, 64 * 64), want, 64);
    CHECK_MSG(bad.empty(), "m64n64k16, A and B K-major from shared memory: " + bad);
  }
  for (int N : {128, 64}) {  // d (64, N) = a (64, 64) b (64, N): A from registers, B N-major.
    const IntMatrix a = int_matrix(rng, 64 * 64), b = int_matrix(rng, 64 * N);
    std::vector<float> want(64 * N, 0.0f);
    for (int m = 0; m < 64; ++m)
      for (int n = 0; n < N; ++n)
        for (int k = 0; k < 64; ++k) want[m * N + n] += a.value[m * 64 + k] * b.value[k * N + n];
    const WgmmaProbe kind = N == 128 ? WgmmaProbe::kRsN128 : WgmmaProbe::kRsN64;
    const std::string bad = first_mismatch(run(ctx, kind, a, b, 64 * N), want, N);
    CHECK_MSG(bad.empty(), "m64n" + std::to_string(N) + "k16, A from registers, B N-major: " + bad);
  }
  {  // d (64, 64) [m][n] = sum_k a[k][m] b[k][64 + n]: A M-major, B N-major (second block).
    const IntMatrix a = int_matrix(rng, 64 * 64), b = int_matrix(rng, 64 * 128);
    std::vector<float> want(64 * 64, 0.0f);
    for (int m = 0; m < 64; ++m)
      for (int n = 0; n < 64; ++n)
        for (int k = 0; k < 64; ++k)
          want[m * 64 + n] += a.value[k * 64 + m] * b.value[k * 128 + 64 + n];
    const std::string bad =
        first_mismatch(run(ctx, WgmmaProbe::kSsTransposed, a, b, 64 * 64), want, 64);
    CHECK_MSG(bad.empty(), "m64n64k16, A M-major and B N-major from shared memory: " + bad);
  }
#endif
}

}  // namespace npr::test
