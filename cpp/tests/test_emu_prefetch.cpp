// The L2 prefetch a decode kernel issues for the next kernel's weights (pdl::prefetch_l2_share,
// SkinnyLaunch::ahead) in the kernel emulator: every 128-byte line of the range is prefetched by
// some block and nothing outside the range is touched, for odd sizes, unaligned starts and grids
// larger than the range; and the decoder with prefetch_next_weights gives the same bits (the
// decoder test, test_emu_decoder.cpp).
#include <cstdint>
#include <string>
#include <vector>

#include "tests/harness.h"
#include "tests/test_util.h"
#if defined(NPR_HAVE_EMU)
#include "tests/emu/emu_selftest.h"
#endif

namespace npr::test {

TEST(emu_prefetch_share_covers_the_range_and_nothing_else) {
#if !defined(NPR_HAVE_EMU)
  SKIP("the kernel emulator is not built (no CUDA toolkit headers, or NPR_EMU=off)");
#else
  Rng rng(2026);
  struct Case {
    int64_t offset, bytes;
    int grid, threads;
  };
  std::vector<Case> cases = {{0, 128, 1, 32},   {5, 1, 3, 32},         {127, 2, 2, 64},
                             {0, 0, 4, 32},     {64, 4096, 1, 128},    {3, 10'000, 7, 96},
                             {0, 129, 300, 32}, {100, 65'537, 13, 128}};
  for (int i = 0; i < 12; ++i)
    cases.push_back(
        {static_cast<int64_t>(rng.next() % 300), 1 + static_cast<int64_t>(rng.next() % 50'000),
         1 + static_cast<int>(rng.next() % 40), 32 * (1 + static_cast<int>(rng.next() % 4))});
  for (const Case& c : cases) {
    const std::string what = "offset " + std::to_string(c.offset) + ", " + std::to_string(c.bytes) +
                             " bytes, grid " + std::to_string(c.grid) + " x " +
                             std::to_string(c.threads);
    std::vector<uint64_t> lines;
    const std::string fault = emu::run_prefetch_share(c.offset, c.bytes, c.grid, c.threads, &lines);
    CHECK_MSG(fault.empty(), what + ": " + fault);
    const uint64_t want =
        c.bytes == 0 ? 0 : static_cast<uint64_t>((c.offset % 128 + c.bytes - 1) / 128 + 1);
    std::vector<uint64_t> expect(want);
    for (uint64_t l = 0; l < want; ++l) expect[l] = l;
    CHECK_MSG(lines == expect, what + ": prefetched " + std::to_string(lines.size()) +
                                   " lines, the range has " + std::to_string(want));
  }
#endif
}

}  // namespace npr::test
