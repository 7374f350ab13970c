// The one-kernel decode step's per-head readiness (model/qwen3_step_heads.h) against what each
// kv head's attention unit reads of the stacked q|k|v rows (kernels/decode_attend_new_tokens.cuh):
// its query rows from heads h G + g (QFromQkv), the new token's key from head heads + h and its
// value from heads + kv_heads + h (write_new_kv). Every column tile must count for exactly the kv
// head that reads it, and each head's count must be what its attention waits for. The emulator
// cannot catch a wrong map whose counts still add up: its blocks finish all their tiles before they
// wait.
#include <cstdint>
#include <string>
#include <vector>

#include "model/qwen3_step_heads.h"
#include "tests/harness.h"

namespace npr::test {

TEST(step_kernel_qkv_tiles_count_for_the_kv_head_that_reads_them) {
  struct Heads {
    int heads, kv_heads, head_dim;
  };
  const int64_t tile_cols = 8;
  for (const Heads& c : {Heads{4, 2, 128}, Heads{16, 8, 128}, Heads{32, 8, 128}, Heads{8, 1, 64},
                         Heads{6, 6, 128}, Heads{64, 4, 128}}) {
    const int G = c.heads / c.kv_heads, stacked = c.heads + 2 * c.kv_heads;
    // Each stacked head's reader, from the attention's own index formulas.
    std::vector<int> reader(static_cast<size_t>(stacked), -1);
    for (int h = 0; h < c.kv_heads; ++h) {
      for (int g = 0; g < G; ++g) reader[h * G + g] = h;
      reader[c.heads + h] = h;
      reader[c.heads + c.kv_heads + h] = h;
    }
    const std::string what = std::to_string(c.heads) + "/" + std::to_string(c.kv_heads) +
                             " heads, dim " + std::to_string(c.head_dim);
    std::vector<int64_t> count(static_cast<size_t>(c.kv_heads), 0);
    const int64_t tiles = int64_t{stacked} * c.head_dim / tile_cols;
    for (int64_t b = 0; b < tiles; ++b) {
      const int got = qkv_tile_kv_head(b, tile_cols, c.heads, c.kv_heads, c.head_dim);
      for (int64_t j = b * tile_cols; j < (b + 1) * tile_cols; ++j)
        CHECK_MSG(got == reader[j / c.head_dim],
                  what + ": tile " + std::to_string(b) + " counts for kv head " +
                      std::to_string(got) + ", but column " + std::to_string(j) +
                      " is read by kv head " + std::to_string(reader[j / c.head_dim]));
      if (got >= 0 && got < c.kv_heads) ++count[got];
    }
    for (int h = 0; h < c.kv_heads; ++h)
      CHECK_MSG(
          count[h] == qkv_tiles_per_kv_head(tile_cols, c.heads, c.kv_heads, c.head_dim),
          what + ": kv head " + std::to_string(h) + " has " + std::to_string(count[h]) +
              " tiles, its attention waits for " +
              std::to_string(qkv_tiles_per_kv_head(tile_cols, c.heads, c.kv_heads, c.head_dim)));
  }
}

}  // namespace npr::test
