// The decode step's tensor-core attention taking each item's query rows, and the step's new keys
// and values, straight from the stacked q|k|v projection: the q/k norm + RoPE + KV write of
// qk_norm_rope_row.cuh inside the attend kernel instead of in a kernel of its own before it
// (decode_attention_cuda's DecodeNewTokens). Each item normalises and rotates its own query rows
// into shared memory (QFromQkv: plain stores while its first key tile is in flight), and the one
// item that ends at a query's new token (item_ends_at_new_token) first writes that token's K,
// normalised and rotated, and its V into the token's slot, fenced to L2 before the item's
// cp.async copies read it. Plans of one-token queries only: there no other item reads a new
// token. The values are the separate kernel's, so the bits are too. Shared by decode_attention.cu
// (attend_new_kernel) and the one-kernel decode step (qwen3_step_kernel.cuh). Inside .cu files
// only.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/dynamic_shared.cuh"
#include "kernels/decode_attention_mma.cuh"
#include "kernels/decode_work.h"
#include "kernels/pdl.cuh"
#include "kernels/qk_norm_rope_row.cuh"

namespace npr::decode_new {

using bf16_t = __nv_bfloat16;
constexpr int kWarps = decode_mma::kThreads / 32;

// An attention item's query rows, normalised and rotated from the stacked projection straight
// into shared memory (attend_item's FillQ): qk_norm_rope_row.cuh's norm_rope, the values the
// separate kernel writes to q and the plain attend kernel copies in. Rows >= R are zeros.
template <int D>
struct QFromQkv {
  static constexpr bool kDirect = true;  // plain stores, while the first key tile is in flight
  const int32_t* q_order;
  const bf16_t* qkv;  // (tokens, heads + 2 kv_heads, D)
  const float *q_norm, *cos, *sin;
  int heads, kv_heads;
  float eps;
  __device__ __forceinline__ void operator()(bf16_t* qs, int stride, float* scratch, int q_begin,
                                             int R, int G, int h) const {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t per_token = heads + 2 * kv_heads;
    float* y = scratch + warp * D;
    for (int r = warp; r < decode_mma::kRows; r += kWarps) {
      bf16_t* dst = qs + r * stride;
      if (r < R) {
        const int64_t t = q_order[q_begin + r / G];
        qk_rope::norm_rope<bf16_t>(dst, qkv + (t * per_token + h * G + r % G) * D, q_norm,
                                   cos + t * (D / 2), sin + t * (D / 2), y, D, eps);
        __syncwarp();  // y is read by every lane before the next row writes it
      } else {
        for (int e = lane; e < D; e += 32) dst[e] = __float2bfloat16_rn(0.0f);
      }
    }
  }
};

// If the item `it` (its DecodeWork::kItemFields ints) ends at the new token of its one query,
// that token's K row for kv head h, normalised and rotated, and its V row go into the token's
// slot (slots: each query's, block x block_tokens + offset) of k_pages / v_pages (blocks,
// block_tokens, kv_heads, D), by warps 0 and 1, fenced to L2 where the item's cp.async copies
// read. y: (D) fp32 of shared memory. Every thread of the CTA calls it; a __syncthreads() must
// come before the item's keys are loaded.
template <int D>
__device__ __forceinline__ void write_new_kv(const int32_t* it, const int32_t* q_order,
                                             const int32_t* indices, const int32_t* slots,
                                             int block_tokens, const bf16_t* qkv, int heads,
                                             int kv_heads, const float* k_norm, const float* cos,
                                             const float* sin, float eps, bf16_t* k_pages,
                                             bf16_t* v_pages, int h, float* y) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (warp > 1 || !item_ends_at_new_token(it, q_order, indices, slots, block_tokens)) return;
  const int64_t t = q_order[it[0]];
  const int64_t slot = slots[t];
  const int64_t per_token = heads + 2 * kv_heads, kvh = kv_heads;
  const bf16_t* row = qkv + (t * per_token + heads + (warp == 0 ? 0 : kvh) + h) * D;
  bf16_t* dst = (warp == 0 ? k_pages : v_pages) + (slot * kvh + h) * D;
  if (warp == 0)
    qk_rope::norm_rope<bf16_t>(dst, row, k_norm, cos + t * (D / 2), sin + t * (D / 2), y, D, eps);
  else
    for (int e = lane; e < D; e += 32) dst[e] = row[e];
  __threadfence();
}

// Whether the first key tile of item `it` holds only keys of earlier steps: every tile of a plan
// of one-token queries but the one with a query's new token, the last tile of the item that ends
// at it (item_ends_at_new_token). That tile may then be copied before the new token's K and V
// are written, and before the q|k|v projection has run.
template <int D>
__device__ __forceinline__ bool first_tile_is_old(const int32_t* it, const int32_t* q_order,
                                                  const int32_t* indices, const int32_t* slots,
                                                  int block_tokens) {
  return decode_mma::item_keys(it, block_tokens) > decode_mma::kKeys ||
         !item_ends_at_new_token(it, q_order, indices, slots, block_tokens);
}

// The item `it`'s keys and values for kv head h (its pages' rows of k_pages / v_pages, (blocks,
// block_tokens, kv_heads, D)) prefetched into L2, 128-byte lines spread over the CTA's threads.
// What a programmatic launch does before its wait: the pages were written by earlier steps (or
// are the new token's slot, written by this kernel itself, which a prefetch does not disturb),
// and the plan went up before the step's first kernel, so neither depends on the kernels this
// one waits for; the q|k|v projection before it streams weights meanwhile, and the item's tiles
// then come from L2.
template <int D>
__device__ __forceinline__ void prefetch_item_kv(const int32_t* it, const int32_t* indices,
                                                 const bf16_t* k_pages, const bf16_t* v_pages,
                                                 int kv_heads, int block_tokens, int h) {
  constexpr int kLines = D * static_cast<int>(sizeof(bf16_t)) / 128;  // of one K or V row
  static_assert(kLines >= 1 && D * sizeof(bf16_t) % 128 == 0, "rows of whole 128-byte lines");
  const int page_begin = it[2], n_keys = decode_mma::item_keys(it, block_tokens);
  for (int j = threadIdx.x; j < n_keys * 2 * kLines; j += blockDim.x) {
    const int key = j / (2 * kLines), line = j % (2 * kLines);
    const int64_t slot =
        static_cast<int64_t>(indices[page_begin + key / block_tokens]) * block_tokens +
        key % block_tokens;
    const bf16_t* row = (line < kLines ? k_pages : v_pages) + (slot * kv_heads + h) * D;
    pdl::prefetch_line_l2(row + (line % kLines) * (128 / sizeof(bf16_t)));
  }
}

// The step's new tokens as the kernel takes them (decode_attention_cuda.h's DecodeNewTokens on
// the device side).
struct NewTokens {
  const bf16_t* qkv;             // (tokens, heads + 2 kv_heads, D)
  const float *q_norm, *k_norm;  // (D) fp32
  const float *cos, *sin;        // (tokens, D / 2) fp32
  const int32_t* slots;          // (tokens)
  bf16_t *k_pages, *v_pages;     // (blocks, block_tokens, kv_heads, D)
  int heads, kv_heads, block_tokens;
  float eps;
};

// grid (launch items, kv_heads), decode_mma::kThreads threads, decode_mma::Smem<D>::kBytes of
// dynamic shared memory: decode_mma::attend_kernel's work and partial states, with its query
// rows and the new tokens' K and V from the projection. Each item's first key tile is copied
// first thing where it holds no new key (first_tile_is_old). PDL: a programmatic dependent
// launch (pdl.cuh), which then waits for the kernels before it, so that the tile's copy overlaps
// the projection; KV_AHEAD (with PDL): before the wait it also prefetches all its item's keys and
// values into L2 (prefetch_item_kv).
template <int D, bool PDL = false, bool KV_AHEAD = false>
__global__ void __launch_bounds__(decode_mma::kThreads)
    attend_new_kernel(const int32_t* header, const int32_t* items, const int32_t* q_order,
                      const int32_t* indices, NewTokens nt, float* part_m, float* part_l,
                      float* part_acc, float scale) {
  static_assert(PDL || !KV_AHEAD, "the K/V prefetch is what a programmatic launch does early");
  NPR_DYNAMIC_SHARED(smem_raw);
  const int item = static_cast<int>(blockIdx.x), h = static_cast<int>(blockIdx.y);
  const int32_t* it = items + DecodeWork::kItemFields * item;
  // The plan, the slots and the pages of earlier tokens are there before the step's first
  // kernel: only q|k|v (and the new token's K and V from it, written below) come from the
  // kernels this one may wait for.
  const bool live = item < header[0];  // else an idle item of a replayed graph
  const bool first_old =
      live && first_tile_is_old<D>(it, q_order, indices, nt.slots, nt.block_tokens);
  if constexpr (PDL) {
    pdl::launch_dependents();
    if (KV_AHEAD && live)
      prefetch_item_kv<D>(it, indices, nt.k_pages, nt.v_pages, nt.kv_heads, nt.block_tokens, h);
  }
  // The first key tile on its way before the wait (it holds no new key), in every launch form
  // alike so that they run the same code.
  if (first_old)
    decode_mma::issue_first_tile<D>(it, indices, nt.k_pages, nt.v_pages, nt.kv_heads,
                                    nt.block_tokens, h, smem_raw);
  if constexpr (PDL) pdl::wait();
  if (!live) return;
  write_new_kv<D>(it, q_order, indices, nt.slots, nt.block_tokens, nt.qkv, nt.heads, nt.kv_heads,
                  nt.k_norm, nt.cos, nt.sin, nt.eps, nt.k_pages, nt.v_pages, h,
                  reinterpret_cast<float*>(smem_raw));
  __syncthreads();  // the new K and V are in L2 before the item's tiles are copied
  const QFromQkv<D> fill{q_order, nt.qkv, nt.q_norm, nt.cos, nt.sin, nt.heads, nt.kv_heads, nt.eps};
  if (first_old)
    decode_mma::attend_item<D, QFromQkv<D>, true>(item, h, items, fill, indices, nt.k_pages,
                                                  nt.v_pages, part_m, part_l, part_acc, nt.heads,
                                                  nt.kv_heads, nt.block_tokens, scale, smem_raw);
  else
    decode_mma::attend_item<D>(item, h, items, fill, indices, nt.k_pages, nt.v_pages, part_m,
                               part_l, part_acc, nt.heads, nt.kv_heads, nt.block_tokens, scale,
                               smem_raw);
}

}  // namespace npr::decode_new
