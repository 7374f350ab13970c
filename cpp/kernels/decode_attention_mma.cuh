// Inside decode_attention.cu only: the tensor-core attend kernel of the paged decode attention
// (bf16, head dim 64 or 128, at most 16 query rows per item: FlashInfer's "tensor cores for
// GQA decode" idea). One CTA per (work item, kv head): the item's query rows (members x heads
// of this kv head, zero-padded to one m16 tile) against its run of pages in key tiles of 64.
// Each of the 4 warps takes 16 keys of every tile and keeps its own online-softmax state
// (FlashDecoding inside the CTA), so no warp waits for another until the end, where the four
// states are merged through shared memory into the item's partial rows: the same (max, sum,
// unnormalised output) triple as the SIMT kernel, in natural-log units of the scaled scores.
//
// K/V rows of a tile are gathered through the page table with 16-byte cp.async copies into
// padded shared memory, double-buffered; keys past the item's end are zero-filled and masked.
// Q.K^T and P.V are mma.sync m16n8k16 with fp32 accumulators; P is rounded to bf16 for P.V (as
// in the fused forward); the sums l use the fp32 probabilities.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/dynamic_shared.cuh"
#include "kernels/attn_softmax.cuh"
#include "kernels/decode_attention_cuda.h"
#include "kernels/mma_bf16.cuh"
#include "kernels/pdl.cuh"

namespace npr::decode_mma {

constexpr int kThreads = 128;  // 4 warps
constexpr int kKeys = 64;      // keys per tile: 16 per warp
constexpr int kRows = 16;      // query rows of an item (one m16 tile)

template <int D>
struct Smem {
  static constexpr int kStride = D + 8;  // bf16 per row; the 16-byte pad spreads ldmatrix rows
  static constexpr int kQElems = kRows * kStride;
  static constexpr int kTileElems = kKeys * kStride;
  // Q (16, kStride) | K0 | V0 | K1 | V1 (64, kStride) bf16. At the end the K/V area holds the
  // four warps' states: m, l (4, 16) and o (4, 16, D) fp32.
  static constexpr int kBytes = 2 * (kQElems + 4 * kTileElems);
  static_assert(4 * (2 * 4 * kRows + 4 * kRows * D) <= 2 * 4 * kTileElems,
                "the merge scratch must fit in the K/V buffers");
};

// The item's query rows from q (queries, heads, D), rotated: row r < R is query
// q_order[q_begin + r / G], head h G + r % G, copied into qs (kRows, stride) with cp.async (the
// caller commits the group); rows >= R are zeros.
template <int D>
struct QFromGlobal {
  static constexpr bool kDirect = false;  // cp.async copies: the caller's group
  const int32_t* q_order;
  const __nv_bfloat16* q;
  int heads;
  __device__ __forceinline__ void operator()(__nv_bfloat16* qs, int stride, float* /*scratch*/,
                                             int q_begin, int R, int G, int h) const {
    constexpr int kChunks = D / 8;  // 16-byte chunks per row
    for (int c = threadIdx.x; c < kRows * kChunks; c += kThreads) {
      const int r = c / kChunks, cc = (c % kChunks) * 8;
      __nv_bfloat16* dst = qs + r * stride + cc;
      if (r < R) {
        const int64_t row = q_order[q_begin + r / G];
        cp_async_16(dst, q + (row * heads + h * G + r % G) * D + cc);
      } else {
        *reinterpret_cast<uint4*>(dst) = make_uint4(0u, 0u, 0u, 0u);
      }
    }
  }
};

// Key tile t (keys t kKeys .. + kKeys - 1 of the item's n_keys, through its pages
// indices[page_begin ..], B tokens each) for kv head h: its K and V rows of kp / vp (blocks, B,
// kv_heads, D) into kd / vd (kKeys, Smem<D>::kStride) by cp.async (the caller commits the
// group), rows past n_keys zeroed. Every thread of the CTA (kThreads) calls it.
template <int D>
__device__ __forceinline__ void load_key_tile(int t, __nv_bfloat16* kd, __nv_bfloat16* vd,
                                              const int32_t* indices, int page_begin, int n_keys,
                                              int B, const __nv_bfloat16* kp,
                                              const __nv_bfloat16* vp, int kv_heads, int h) {
  constexpr int kStride = Smem<D>::kStride;
  constexpr int kChunks = D / 8;  // 16-byte chunks per row
  const int64_t row_stride = static_cast<int64_t>(kv_heads) * D;
  for (int c = threadIdx.x; c < kKeys * kChunks; c += kThreads) {
    const int j = c / kChunks, cc = (c % kChunks) * 8, key = t * kKeys + j;
    const int off = j * kStride + cc;
    if (key < n_keys) {
      const int64_t slot = static_cast<int64_t>(indices[page_begin + key / B]) * B + key % B;
      const int64_t src = slot * row_stride + static_cast<int64_t>(h) * D + cc;
      cp_async_16(kd + off, kp + src);
      cp_async_16(vd + off, vp + src);
    } else {
      *reinterpret_cast<uint4*>(kd + off) = make_uint4(0u, 0u, 0u, 0u);
      *reinterpret_cast<uint4*>(vd + off) = make_uint4(0u, 0u, 0u, 0u);
    }
  }
}

// The number of keys of item `it` (its DecodeWork::kItemFields ints), pages of B tokens.
__device__ __forceinline__ int item_keys(const int32_t* it, int B) {
  return (it[3] - 1) * B + it[4];
}

// Its first key tile, K and V for kv head h, into the buffers attend_item reads it from in
// smem_raw, as one committed cp.async group: what a caller may issue before attend_item
// (attend_item<..., true>), e.g. before a programmatic launch's wait where the tile holds no key
// an earlier kernel writes.
template <int D>
__device__ __forceinline__ void issue_first_tile(const int32_t* it, const int32_t* indices,
                                                 const __nv_bfloat16* kp, const __nv_bfloat16* vp,
                                                 int kv_heads, int B, int h,
                                                 unsigned char* smem_raw) {
  using S = Smem<D>;
  auto* const kd = reinterpret_cast<__nv_bfloat16*>(smem_raw) + S::kQElems;
  load_key_tile<D>(0, kd, kd + S::kTileElems, indices, it[2], item_keys(it, B), B, kp, vp, kv_heads,
                   h);
  cp_async_commit();
}

// Work item `item` of the plan for kv head h, by the calling CTA (kThreads threads; every
// thread must call it) in smem_raw (Smem<D>::kBytes, 16-byte aligned). FIRST_ISSUED (a fill that
// stores its rows itself only): the caller has issued the first key tile (issue_first_tile).
// fill_q(qs, stride, scratch, q_begin, R, G, h) puts the item's query rows into qs (QFromGlobal's
// contract), with cp.async copies, or with plain stores when FillQ::kDirect (then it may use
// scratch: (kKeys, stride) bf16 of shared memory, free until the loop's first prefetch). The CTA
// may run another item afterwards once every thread is past a __syncthreads().
template <int D, typename FillQ, bool FIRST_ISSUED = false>
__device__ __forceinline__ void attend_item(int item, int h, const int32_t* items,
                                            const FillQ& fill_q, const int32_t* indices,
                                            const __nv_bfloat16* kp, const __nv_bfloat16* vp,
                                            float* part_m, float* part_l, float* part_acc,
                                            int heads, int kv_heads, int B, float scale,
                                            unsigned char* smem_raw) {
  using bf16_t = __nv_bfloat16;
  using S = Smem<D>;
  constexpr int kStride = S::kStride;
  constexpr int KD = D / 16;  // k-steps of Q.K^T
  constexpr int ND = D / 8;   // n-tiles of the output
  static_assert(FillQ::kDirect || !FIRST_ISSUED, "an early first tile needs a direct Q fill");
  bf16_t* const qs = reinterpret_cast<bf16_t*>(smem_raw);
  const auto k_buf = [&](int b) { return qs + S::kQElems + (2 * b) * S::kTileElems; };
  const auto v_buf = [&](int b) { return qs + S::kQElems + (2 * b + 1) * S::kTileElems; };

  const int G = heads / kv_heads, tid = threadIdx.x;
  const int lane = tid & 31, warp = tid >> 5, g8 = lane >> 2, c4 = lane & 3;
  const int32_t* it = items + DecodeWork::kItemFields * item;
  const int q_begin = it[0], qc = it[1], page_begin = it[2], part_begin = it[5];
  const int R = qc * G;
  const int n_keys = item_keys(it, B);
  const int tiles = (n_keys + kKeys - 1) / kKeys;

  // Key tile t's K and V rows into buffer b, gathered through the page table.
  const auto load_kv = [&](int t, int b) {
    load_key_tile<D>(t, k_buf(b), v_buf(b), indices, page_begin, n_keys, B, kp, vp, kv_heads, h);
  };
  // Q rows r < R: query q_order[q_begin + r / G], head h * G + r % G; rows >= R are zero. The
  // second K buffer is free until the loop's first prefetch. A fill that stores its rows itself
  // (FillQ::kDirect) runs while the first key tile is in flight; its empty group keeps the
  // count the loop's waits expect.
  float* const scratch = reinterpret_cast<float*>(k_buf(1));
  if constexpr (FillQ::kDirect) {
    if constexpr (!FIRST_ISSUED) {
      load_kv(0, 0);
      cp_async_commit();
    }
    fill_q(qs, kStride, scratch, q_begin, R, G, h);
    cp_async_commit();
  } else {
    fill_q(qs, kStride, scratch, q_begin, R, G, h);
    cp_async_commit();
    load_kv(0, 0);
    cp_async_commit();
  }
  cp_async_wait<1>();  // Q landed (kDirect: and the first tile)
  __syncthreads();

  uint32_t qf[KD][4];  // Q fragments (A operand), the same 16 rows in every warp
  {
    const bf16_t* base = qs + ((lane & 7) + ((lane >> 3) & 1) * 8) * kStride + (lane >> 4) * 8;
#pragma unroll
    for (int kk = 0; kk < KD; ++kk) ldmatrix_x4(qf[kk], base + kk * 16);
  }

  float o[ND][4];  // rows (g8, g8 + 8) x dims (8 n + 2 c4, + 1)
#pragma unroll
  for (int n = 0; n < ND; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  const float ninf = -__int_as_float(0x7f800000);
  const float sl2 = scale * 1.4426950408889634f;  // scale * log2 e
  float m0 = ninf, m1 = ninf;  // running max of the raw scores, rows g8 and g8 + 8
  float l0 = 0.0f, l1 = 0.0f;  // this thread's part of the running sums

  for (int t = 0; t < tiles; ++t) {
    const int b = t & 1;
    if (t + 1 < tiles) load_kv(t + 1, b ^ 1);
    cp_async_commit();   // possibly empty: keeps the group count uniform
    cp_async_wait<1>();  // tile t landed
    __syncthreads();

    // S (16 rows x this warp's 16 keys) = Q K^T, raw scores; keys past the end masked.
    float s[2][4];
#pragma unroll
    for (int n = 0; n < 2; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
    {
      const bf16_t* kb =
          k_buf(b) + (warp * 16 + (lane & 7) + (lane >> 4) * 8) * kStride + ((lane >> 3) & 1) * 8;
#pragma unroll
      for (int kk = 0; kk < KD; ++kk) {
        uint32_t kf[4];
        ldmatrix_x4(kf, kb + kk * 16);
        mma_bf16_16816(s[0], qf[kk], kf);
        mma_bf16_16816(s[1], qf[kk], kf + 2);
      }
    }
    const int key0 = t * kKeys + warp * 16;
#pragma unroll
    for (int n = 0; n < 2; ++n)
#pragma unroll
      for (int e = 0; e < 2; ++e)
        if (key0 + n * 8 + 2 * c4 + e >= n_keys) s[n][e] = s[n][2 + e] = ninf;

    online_softmax_step(s, o, m0, m1, l0, l1, sl2);

    // O += P V over this warp's 16 keys: P (bf16) from the S fragments, V by ldmatrix.trans.
    {
      uint32_t a[4];
      a[0] = pack_bf16x2(s[0][0], s[0][1]);
      a[1] = pack_bf16x2(s[0][2], s[0][3]);
      a[2] = pack_bf16x2(s[1][0], s[1][1]);
      a[3] = pack_bf16x2(s[1][2], s[1][3]);
      const bf16_t* vb =
          v_buf(b) + (warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * kStride + (lane >> 4) * 8;
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        uint32_t vf[4];
        ldmatrix_x4_trans(vf, vb + dp * 16);
        mma_bf16_16816(o[2 * dp], a, vf);
        mma_bf16_16816(o[2 * dp + 1], a, vf + 2);
      }
    }
    __syncthreads();  // buffer b is refilled by the next iteration's prefetch
  }
  cp_async_wait<0>();
  __syncthreads();  // every warp is done with the K/V buffers: they become the merge scratch

  // The four warps' states into shared memory: m and the quad-summed l per row, o per element.
#pragma unroll
  for (int x = 1; x <= 2; x <<= 1) {
    l0 += __shfl_xor_sync(0xffffffffu, l0, x);
    l1 += __shfl_xor_sync(0xffffffffu, l1, x);
  }
  float* const wm = reinterpret_cast<float*>(qs + S::kQElems);  // (4, 16)
  float* const wl = wm + 4 * kRows;                             // (4, 16)
  float* const wo = wl + 4 * kRows;                             // (4, 16, D)
  if (c4 == 0) {
    wm[warp * kRows + g8] = m0;
    wm[warp * kRows + g8 + 8] = m1;
    wl[warp * kRows + g8] = l0;
    wl[warp * kRows + g8 + 8] = l1;
  }
#pragma unroll
  for (int n = 0; n < ND; ++n) {
    float* r0 = wo + (warp * kRows + g8) * D + n * 8 + 2 * c4;
    float* r1 = r0 + 8 * D;
    r0[0] = o[n][0];
    r0[1] = o[n][1];
    r1[0] = o[n][2];
    r1[1] = o[n][3];
  }
  __syncthreads();

  // Merged partial rows: max M (raw) over the warps, each warp's state rescaled to it; stored
  // as the SIMT kernel stores them (m in units of the scaled score, l and acc relative to it).
  for (int idx = tid; idx < R * D; idx += kThreads) {
    const int r = idx / D, d = idx % D;
    float M = ninf;
#pragma unroll
    for (int w = 0; w < 4; ++w) M = fmaxf(M, wm[w * kRows + r]);
    float L = 0.0f, acc = 0.0f;
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      const float mw = wm[w * kRows + r];
      const float f = mw == ninf ? 0.0f : fast_exp2((mw - M) * sl2);
      L += wl[w * kRows + r] * f;
      acc += wo[(w * kRows + r) * D + d] * f;
    }
    const int64_t p = part_begin + r / G, head = h * G + r % G;
    part_acc[(p * heads + head) * D + d] = acc;
    if (d == 0) {
      part_m[p * heads + head] = M * scale;
      part_l[p * heads + head] = L;
    }
  }
}

// grid (launch items, kv_heads), kThreads threads, Smem<D>::kBytes dynamic shared memory.
// PDL: launched as a programmatic dependent launch (pdl.cuh): it lets the next kernel launch and
// waits for the kernels before it first thing.
template <int D, bool PDL = false>
__global__ void __launch_bounds__(kThreads)
    attend_kernel(const int32_t* header, const int32_t* items, const int32_t* q_order,
                  const int32_t* indices, const __nv_bfloat16* q, const __nv_bfloat16* kp,
                  const __nv_bfloat16* vp, float* part_m, float* part_l, float* part_acc, int heads,
                  int kv_heads, int B, float scale) {
  NPR_DYNAMIC_SHARED(smem_raw);
  if constexpr (PDL) {
    pdl::launch_dependents();
    pdl::wait();
  }
  if (static_cast<int>(blockIdx.x) >= header[0]) return;  // idle item of a replayed graph
  attend_item<D>(blockIdx.x, blockIdx.y, items, QFromGlobal<D>{q_order, q, heads}, indices, kp, vp,
                 part_m, part_l, part_acc, heads, kv_heads, B, scale, smem_raw);
}

}  // namespace npr::decode_mma
