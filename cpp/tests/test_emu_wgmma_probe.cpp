// The wgmma probe (kernels/wgmma_probe_kernel.cuh), the first thing a GPU session reads when an
// sm_90a attention kernel is wrong, run by the kernel emulator on the cases its GPU test runs
// (test_wgmma_probe_cases.h): so that a probe of its own making (its staging, its A fragments,
// its write-out) cannot send that session after a wrapper that is right.
#include <cstdint>
#include <string>
#include <vector>

#include "tests/harness.h"
#include "tests/test_wgmma_probe_cases.h"
#if defined(NPR_HAVE_EMU)
#include "tests/emu/emu_runtime.h"
#include "tests/emu/emu_wgmma_probe.h"
#endif

namespace npr::test {

TEST(emu_wgmma_probe_matches_a_host_matmul) {
#if !defined(NPR_HAVE_EMU)
  SKIP("the kernel emulator is not built (no CUDA toolkit headers, or NPR_EMU=off)");
#else
  for (const bool eager : {false, true}) {
    emu::set_options(emu::Options{eager, eager, eager ? 0x410u : 0x90u});
    check_wgmma_probe([&](WgmmaProbe kind, const std::vector<uint16_t>& a,
                          const std::vector<uint16_t>& b, int64_t out) {
      std::vector<float> d = poisoned(out);
      const std::string fault = emu::wgmma_probe(static_cast<int>(kind), a.data(), a.size(),
                                                 b.data(), b.size(), d.data(), d.size());
      CHECK_MSG(fault.empty(),
                std::string(eager ? "async at issue" : "async at waits") + ": " + fault);
      return d;
    });
  }
  emu::set_options(emu::Options{});
#endif
}

}  // namespace npr::test
