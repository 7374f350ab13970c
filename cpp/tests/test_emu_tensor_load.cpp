// The emulator's 2-D tensor-map copy (emu_ptx.h tensor_load_2d, what kernels/tma_load.cuh runs
// under the emulator): a box lands 128-byte swizzled as wgmma_layout.h's sw128 tiles expect, the
// elements outside the matrix as zeros, and its bytes complete the mbarrier's phase; a reference
// placement written here from the layout's formula, not from the emulator's code.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "tests/harness.h"
#if defined(NPR_HAVE_EMU)
#include "kernels/wgmma_layout.h"
#include "tests/emu/emu_ptx.h"
#include "tests/emu/emu_runtime.h"
#endif

namespace npr::test {

TEST(emu_tensor_map_copies_land_swizzled_with_zeros_outside) {
#if !defined(NPR_HAVE_EMU)
  SKIP("the kernel emulator is not built (no CUDA toolkit headers, or NPR_EMU=off)");
#else
  // A (70, 72) bf16 matrix, rows 80 elements apart; element (r, c) = r * 1000 + c + 1 (never 0).
  constexpr int kRows = 70, kInner = 72, kLd = 80, kBoxRows = 64;
  std::vector<uint16_t> m(static_cast<size_t>(kRows) * kLd, 0);
  for (int r = 0; r < kRows; ++r)
    for (int c = 0; c < kInner; ++c)
      m[static_cast<size_t>(r) * kLd + c] = static_cast<uint16_t>(r * 1000 + c + 1);
  emu::ptx::TensorMap2d map{};
  map.magic = emu::ptx::TensorMap2d::kMagic;
  map.elem_bytes = 2;
  map.base = m.data();
  map.inner = kInner;
  map.rows = kRows;
  map.row_bytes = kLd * 2;
  map.box_inner = 64;
  map.box_rows = kBoxRows;
  // Boxes at (0, 0) (all inside), (64, 40) (8 columns and 30 rows inside) and (8, 6).
  const int boxes[3][2] = {{0, 0}, {64, 40}, {8, 6}};
  for (const bool eager : {false, true}) {
    emu::set_options(emu::Options{eager, eager, 0x90});
    emu::register_global(m.data(), m.size() * 2);
    std::vector<uint16_t> got(3 * kBoxRows * 64, 0xffff);
    const std::string fault = emu::launch(1, 128, 3 * 8192 + 1024 + 64, [&] {
      const uint32_t base = (emu::shared_address(emu::dynamic_shared()) + 1023u) & ~1023u;
      const uint32_t bar = base + 3 * 8192;
      if (emu::thread_idx().x == 0) {
        emu::ptx::mbarrier_init(bar, 1);
        emu::ptx::mbarrier_arrive_expect_tx(bar, 3 * 8192);
        for (int b = 0; b < 3; ++b)
          emu::ptx::tensor_load_2d(base + 8192u * b, &map, boxes[b][0], boxes[b][1], bar);
      }
      emu::sync_threads();
      emu::ptx::mbarrier_wait_parity(bar, 0);
      if (emu::thread_idx().x == 0)
        std::memcpy(got.data(), emu::shared_bytes(base, 3 * 8192, "test"), 3 * 8192);
    });
    emu::clear_globals();
    const std::string mode = eager ? " (at issue)" : " (at the wait)";
    CHECK_MSG(fault.empty(), "tensor load" + mode + ": " + fault);
    int wrong = 0;
    for (int b = 0; b < 3; ++b)
      for (int r = 0; r < kBoxRows; ++r)
        for (int c = 0; c < 64; ++c) {
          const int gr = boxes[b][1] + r, gc = boxes[b][0] + c;
          const uint16_t want =
              gr < kRows && gc < kInner ? m[static_cast<size_t>(gr) * kLd + gc] : uint16_t{0};
          const uint32_t at = 8192u * b + wgmma::sw128_offset(kBoxRows, r, c);
          wrong += got[at / 2] != want;
        }
    CHECK_MSG(wrong == 0,
              "tensor load" + mode + ": " + std::to_string(wrong) + " elements misplaced");
  }
  emu::set_options(emu::Options{});
#endif
}

}  // namespace npr::test
