// Private to parallel_attention_backward.cu: the fragment plumbing of its tensor-core kernels
// (bf16, mma.sync m16n8k16, 4 warps of 16 rows): the padded shared tile and its cp.async loader,
// the ldmatrix lane addresses of A and B operands, paired mma, accumulators to A fragments and
// to global rows, and the 8-byte reduction of the atomic dQ.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/mma_bf16.cuh"
#include "kernels/parallel_attention_bwd.cuh"

namespace npr::attn_bwd {

using bf16_t = __nv_bfloat16;

constexpr int kTcThreads = 128;  // 4 warps x 16 rows = one 64-row tile

template <int D>
struct Tc {
  static constexpr int kStride = D + 8;         // bf16 per shared row (16 bytes of padding)
  static constexpr int kMat = kTile * kStride;  // one (64, D) tile in shared memory
  static constexpr int kMatBytes = kMat * 2;
};

// dst (64, D) shared <- rows [0, n) of src (row stride ld elements), zero past n; cp.async.
template <int D>
__device__ __forceinline__ void load_tile_async(bf16_t* dst, const bf16_t* src, int64_t ld, int n) {
  constexpr int kPerRow = D / 8;  // 16-byte chunks per row
#pragma unroll
  for (int i = threadIdx.x; i < kTile * kPerRow; i += kTcThreads) {
    const int r = i / kPerRow, c = (i % kPerRow) * 8;
    const bool ok = r < n;
    cp_async_16z(dst + r * Tc<D>::kStride + c, src + (ok ? r : 0) * ld + c, ok);
  }
}

// Shared-memory addresses each lane hands ldmatrix (lane = 8 * matrix + row in matrix):
// A (16 x 16 at row r0, col k0, row-major): matrices (r0, k0), (r0+8, k0), (r0, k0+8), (r0+8,
// k0+8).
__device__ __forceinline__ int a_off(int lane, int r0, int k0, int stride) {
  return (r0 + (lane & 7) + ((lane >> 3) & 1) * 8) * stride + k0 + (lane >> 4) * 8;
}
// B of two n8 tiles from storage [n][k] (non-trans): {r0, r1} = tile n0, {r2, r3} = tile n0+8.
__device__ __forceinline__ int bn_off(int lane, int n0, int k0, int stride) {
  return (n0 + (lane & 7) + (lane >> 4) * 8) * stride + k0 + ((lane >> 3) & 1) * 8;
}
// B of two n8 tiles from storage [k][n] (ldmatrix .trans): same register order as bn_off.
__device__ __forceinline__ int bt_off(int lane, int k0, int n0, int stride) {
  return (k0 + (lane & 7) + ((lane >> 3) & 1) * 8) * stride + n0 + (lane >> 4) * 8;
}

__device__ __forceinline__ void mma2(float c0[4], float c1[4], const uint32_t a[4],
                                     const uint32_t b[4]) {
  const uint32_t b0[2] = {b[0], b[1]}, b1[2] = {b[2], b[3]};
  mma_bf16_16816(c0, a, b0);
  mma_bf16_16816(c1, a, b1);
}

// *p += x, *(p + 1) += y with reductions (no return value): one 8-byte red on sm_90.
__device__ __forceinline__ void red_add2(float* p, float x, float y) {
#if defined(NPR_EMU)
  emu::ptx::red_add_f32x2(p, x, y);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("red.global.add.v2.f32 [%0], {%1, %2};\n" ::"l"(p), "f"(x), "f"(y) : "memory");
#else
  atomicAdd(p, x);
  atomicAdd(p + 1, y);
#endif
}

// A fragment (16 x 16) from the accumulators of two adjacent n8 tiles (cols 0..7, 8..15).
__device__ __forceinline__ void acc_to_a(uint32_t a[4], const float c0[4], const float c1[4]) {
  a[0] = pack_bf16x2(c0[0], c0[1]);
  a[1] = pack_bf16x2(c0[2], c0[3]);
  a[2] = pack_bf16x2(c1[0], c1[1]);
  a[3] = pack_bf16x2(c1[2], c1[3]);
}

// Rows of a warp's (16, D) accumulators -> global rows (stride ld), times f; rows >= n skipped.
template <int D>
__device__ __forceinline__ void store_acc(bf16_t* out, int64_t ld, const float (*acc)[4], int r0,
                                          int n, float f) {
  const int lane = threadIdx.x % 32, gr = lane >> 2, gc = (lane & 3) * 2;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int r = r0 + gr + half * 8;
    if (r >= n) continue;
    bf16_t* o = out + r * ld;
#pragma unroll
    for (int j = 0; j < D / 8; ++j)
      *reinterpret_cast<uint32_t*>(o + j * 8 + gc) =
          pack_bf16x2(acc[j][2 * half] * f, acc[j][2 * half + 1] * f);
  }
}

}  // namespace npr::attn_bwd
