// Private to the Hopper backward kernels with the atomic dQ (parallel_attention_bwd_sm90a.cu, one
// warpgroup; parallel_attention_bwd_wide_sm90a.cu, two): the tile order of their fp32 dQ sums.
// A stage's dQ is a (64 queries, D) block of one (query tile, head); the kernels stage it in
// shared memory in their accumulators' register order and hand the whole block to the copy
// engine as bulk reductions (bulk_reduce.cuh). So dq_acc holds, for query tile g and head h,
// the block at (g heads + h) 64 D floats in that same order (attention_tile_dq_acc_floats), and
// a last pass (attention_backward_dq_from_tile_acc) writes dq in token order.
#pragma once

namespace npr::attn_bwd {

// Register order: dims in column blocks of 64 (`part`, 0 .. D / 64 - 1); in a part, warp w's
// rows 16 w ..; lane l = 4 g + c of the warp, n8 fragment j and half hf hold (row
// 16 w + 8 hf + g, dims 64 part + 8 j + 2 c, + 1). So each warp stores a fragment as 256
// contiguous bytes (row-major, its 8 lanes of one column pair would all hit one bank pair).
// Index of the first of that pair:
__host__ __device__ constexpr int tile_dq_index(int part, int w, int hf, int j, int lane) {
  return ((((part * 4 + w) * 2 + hf) * 8 + j) * 32 + lane) * 2;
}
// ... and of (row r, dim d) (d even).
__host__ __device__ constexpr int tile_dq_index_of(int r, int d) {
  return tile_dq_index(d / 64, r / 16, r % 16 / 8, d % 64 / 8, r % 8 * 4 + d % 8 / 2);
}
static_assert(tile_dq_index_of(63, 126) == 64 * 128 - 2, "a D 128 block's last pair ends it");
static_assert(tile_dq_index_of(63, 62) == 64 * 64 - 2, "a D 64 block's last pair ends it");

}  // namespace npr::attn_bwd
