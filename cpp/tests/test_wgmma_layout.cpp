// The sw128 tile layout of the Hopper kernels (kernels/wgmma_layout.h), on the host: every
// element of a tile has its own 2-byte slot inside the tile, 8 consecutive columns stay one
// contiguous 16-byte chunk (what one cp.async writes), each 128-byte row of a column block
// holds exactly its own row's 8 chunks (the swizzle permutes chunks within a row), and the
// k-step offsets the descriptors start from point at the element (row 0, k0) for K-major tiles
// and (k0, column 0) for N-major ones, without moving the address bits 7..9 the hardware's
// swizzle reads; and the descriptors the kernels build address every element of their tiles
// where the PTX ISA's canonical layouts (and the swizzle) say the hardware reads it.
#include <set>
#include <string>

#include "kernels/wgmma_layout.h"
#include "tests/emu/wgmma_canonical.h"
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

TEST(wgmma_descriptors_address_the_sw128_tiles_as_the_ptx_layouts_say) {
  const uint32_t tile = 5 * 1024;  // any 1024-byte aligned shared address
  for (int D : {64, 128}) {
    for (int k0 = 0; k0 < D; k0 += 16) {
      // Q / K tiles (64 rows, D columns) as K-major operands of S = Q K^T.
      const uint64_t kd = wgmma::k_major_desc(tile, 64, k0);
      CHECK((kd >> 62) == 1);  // 128-byte swizzle
      CHECK(kd == wgmma::desc_plus(wgmma::k_major_desc(tile, 64, 0), wgmma::k_major_step(64, k0)));
      for (int mn = 0; mn < 64; ++mn)
        for (int k = 0; k < 16; ++k)
          CHECK_MSG(emu::wgmma_sw128_address(kd, true, mn, k) ==
                        tile + wgmma::sw128_offset(64, mn, k0 + k),
                    "K-major D " + std::to_string(D) + " k0 " + std::to_string(k0) + " row " +
                        std::to_string(mn) + " col " + std::to_string(k));
    }
    for (int k0 = 0; k0 < 64; k0 += 16) {
      // V tiles (64 keys, D columns) as the N-major operand of O += P V (and dO, Q of the
      // backward's dV += P^T dO, dK += dS^T Q).
      const uint64_t vd = wgmma::n_major_desc(tile, 64, k0);
      CHECK((vd >> 62) == 1);
      CHECK(vd == wgmma::desc_plus(wgmma::n_major_desc(tile, 64, 0), wgmma::n_major_step(k0)));
      for (int n = 0; n < D; ++n)
        for (int k = 0; k < 16; ++k)
          CHECK_MSG(emu::wgmma_sw128_address(vd, false, n, k) ==
                        tile + wgmma::sw128_offset(64, k0 + k, n),
                    "N-major D " + std::to_string(D) + " k0 " + std::to_string(k0) + " key " +
                        std::to_string(k) + " col " + std::to_string(n));
    }
    for (int k0 = 0; k0 < 64; k0 += 16)
      for (int hf = 0; hf < D / 64; ++hf) {
        // The backward's dQ = dS K: K (64 keys, D) N-major in halves of 64 dims; dS^T stored
        // (64 keys, 64 queries) and read M-major (the same MN-major layout).
        const uint64_t kd = wgmma::n_major_desc(tile + hf * wgmma::column_block_stride(64), 64, k0);
        for (int n = 0; n < 64; ++n)
          for (int k = 0; k < 16; ++k)
            CHECK(emu::wgmma_sw128_address(kd, false, n, k) ==
                  tile + wgmma::sw128_offset(64, k0 + k, hf * 64 + n));
      }
  }
}

}  // namespace npr::test
