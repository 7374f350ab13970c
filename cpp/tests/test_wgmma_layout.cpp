// The sw128 tile layout of the Hopper kernels (kernels/wgmma_layout.h), on the host: every
// element of a tile has its own 2-byte slot inside the tile, 8 consecutive columns stay one
// contiguous 16-byte chunk (what one cp.async writes), each 128-byte row of a column block
// holds exactly its own row's 8 chunks (the swizzle permutes chunks within a row), and the
// k-step offsets the descriptors start from point at the element (row 0, k0) for K-major tiles
// and (k0, column 0) for N-major ones, without moving the address bits 7..9 the hardware's
// swizzle reads.
#include <set>
#include <string>

#include "kernels/wgmma_layout.h"
#include "tests/harness.h"

namespace npr::test {

TEST(wgmma_sw128_layout_is_a_chunk_permutation_of_each_row) {
  using wgmma::sw128_offset;
  for (int cols : {64, 128}) {
    const int rows = 64;
    std::set<uint32_t> seen;
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c) {
        const uint32_t off = sw128_offset(rows, r, c);
        CHECK_MSG(
            off < static_cast<uint32_t>(rows * cols * 2) && off % 2 == 0,
            "offset of (" + std::to_string(r) + ", " + std::to_string(c) + ") out of the tile");
        seen.insert(off);
        // Same 16-byte chunk as its chunk's first column, at its place in it.
        CHECK(off == sw128_offset(rows, r, c - c % 8) + (c % 8) * 2);
        CHECK(sw128_offset(rows, r, c - c % 8) % 16 == 0);
        // Inside its row's 128 bytes of its column block.
        const uint32_t row_start = static_cast<uint32_t>((c / 64) * rows * 128 + r * 128);
        CHECK(off >= row_start && off < row_start + 128);
      }
    CHECK_MSG(seen.size() == static_cast<size_t>(rows * cols), "two elements share a slot");
  }
  // Row r's chunk j sits at chunk j ^ (r % 8): rows 0 and 8 unswizzled alike, row 1 swapped.
  CHECK(sw128_offset(64, 0, 8) == 16 && sw128_offset(64, 1, 0) == 128 + 16 &&
        sw128_offset(64, 1, 8) == 128 && sw128_offset(64, 8, 8) == 8 * 128 + 16);
}

TEST(wgmma_k_steps_start_at_their_first_element_and_keep_the_swizzle_phase) {
  using wgmma::k_major_step;
  using wgmma::n_major_step;
  using wgmma::sw128_offset;
  for (int k0 = 0; k0 < 128; k0 += 16) {
    // K-major: row 0 is unswizzled, so its element (0, k0) sits at the step's start.
    CHECK(k_major_step(64, k0) == sw128_offset(64, 0, k0));
    CHECK(((k_major_step(64, k0) >> 7) & 7) == 0);
    if (k0 < 64) {
      // N-major: row k0 of column 0 (k0 % 8 == 0: unswizzled) starts the step.
      CHECK(n_major_step(k0) == sw128_offset(64, k0, 0));
      CHECK(((n_major_step(k0) >> 7) & 7) == 0);
    }
  }
  CHECK(wgmma::column_block_stride(64) == sw128_offset(64, 0, 64));
  CHECK(wgmma::kGroupStride == sw128_offset(64, 8, 0));
}

}  // namespace npr::test
