// Hopper (sm_90a) warpgroup MMA primitives for .cu files compiled for sm_90a only (the
// *_sm90a.cu sources, see CMakeLists.txt): shared-memory matrix descriptors for 128-byte
// swizzled tiles, the wgmma fences, and the bf16 -> fp32 shapes the attention kernels use. A
// warpgroup is 4 consecutive warps; warp w of it holds rows 16 w .. 16 w + 15 of every m64 operand
// in exactly mma.sync m16n8k16's per-warp layouts (A: 4 bf16x2; C: an n8 fragment
// {(g, 2c), (g, 2c + 1), (g + 8, 2c), (g + 8, 2c + 1)}, g = lane / 4, c = lane % 4, per 8
// columns), so code written for mma.sync fragments (online softmax, P packing) carries over.
// The tile layout ("sw128") and the k-step offsets are wgmma_layout.h's.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/wgmma_layout.h"

// Whether this compilation carries the sm_90a kernels' bodies: the sm_90a device pass, or the
// emulator build (cpp/tests/emu), where the instructions below are emu::ptx calls.
#if (defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)) || defined(NPR_EMU)
#define NPR_SM90A_DEVICE_CODE 1
#else
#define NPR_SM90A_DEVICE_CODE 0
#endif

namespace npr::wgmma {

// dst (sw128 tile of Rows rows x D bf16, a 32-bit shared address) <- rows [0, n) of src (row
// stride ld elements), zeros past n, by cp.async.cg with a zero-fill size from the Threads
// threads of the CTA (tid = threadIdx.x; the caller commits the group).
template <int Rows, int D, int Threads>
__device__ __forceinline__ void load_tile_sw128(uint32_t dst, const __nv_bfloat16* src, int64_t ld,
                                                int n, int tid) {
  constexpr int kChunks = D / 8;  // 16-byte chunks a row
  static_assert(Rows * kChunks % Threads == 0, "every thread copies the same number of chunks");
#pragma unroll
  for (int it = 0; it < Rows * kChunks / Threads; ++it) {
    const int i = tid + it * Threads, r = i / kChunks, c = i % kChunks;
    const bool ok = r < n;
    const uint32_t addr = dst + sw128_offset(Rows, r, c * 8);
#if defined(NPR_EMU)
    emu::ptx::cp_async(addr, src + (ok ? r : 0) * ld + c * 8, 16, ok ? 16 : 0);
#else
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(addr),
                 "l"(src + (ok ? r : 0) * ld + c * 8), "r"(ok ? 16 : 0));
#endif
  }
}

// Before the first wgmma of a batch whose accumulator or A registers other code wrote.
#if defined(NPR_EMU)
__device__ __forceinline__ void fence() {
  emu::ptx::wgmma_fence();
}
__device__ __forceinline__ void commit() {
  emu::ptx::wgmma_commit();
}
template <int N>
__device__ __forceinline__ void wait() {
  emu::ptx::wgmma_wait(N);
}
__device__ __forceinline__ void fence_proxy_async_shared() {
  emu::ptx::fence_proxy_async();
}
template <int N>
__device__ __forceinline__ void fence_operands(float (&)[N][4]) {}
template <int N>
__device__ __forceinline__ void fence_operands(uint32_t (&)[N][4]) {}
#else
__device__ __forceinline__ void fence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int N>
__device__ __forceinline__ void wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Shared-memory writes of the generic proxy (st.shared, cp.async) made visible to the async
// proxy wgmma reads through; each writing thread runs it before the barrier that publishes.
__device__ __forceinline__ void fence_proxy_async_shared() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
// Pins register values around asynchronous MMAs: the compiler may not move their reads or
// writes across this point.
template <int N>
__device__ __forceinline__ void fence_operands(float (&d)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(d[i][e])::"memory");
}
// The same for A operands in registers (bf16 pairs), which an in-flight wgmma also reads: pinned
// before the fence that precedes it and after the wait that ends it, or ptxas serialises.
template <int N>
__device__ __forceinline__ void fence_operands(uint32_t (&a)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+r"(a[i][e])::"memory");
}
#endif

// The accumulator operands of the wrappers: `d` as 8 or 16 n8 fragments, each element through
// the constraint macro M ("+f" read-write, "=f" write-only), and the matching PTX register
// lists %0..%31 / %0..%63.
#define NPR_WGMMA_ACC8(M)                                                                         \
  M(d[0][0]), M(d[0][1]), M(d[0][2]), M(d[0][3]), M(d[1][0]), M(d[1][1]), M(d[1][2]), M(d[1][3]), \
      M(d[2][0]), M(d[2][1]), M(d[2][2]), M(d[2][3]), M(d[3][0]), M(d[3][1]), M(d[3][2]),         \
      M(d[3][3]), M(d[4][0]), M(d[4][1]), M(d[4][2]), M(d[4][3]), M(d[5][0]), M(d[5][1]),         \
      M(d[5][2]), M(d[5][3]), M(d[6][0]), M(d[6][1]), M(d[6][2]), M(d[6][3]), M(d[7][0]),         \
      M(d[7][1]), M(d[7][2]), M(d[7][3])
#define NPR_WGMMA_ACC16(M)                                                                        \
  M(d[0][0]), M(d[0][1]), M(d[0][2]), M(d[0][3]), M(d[1][0]), M(d[1][1]), M(d[1][2]), M(d[1][3]), \
      M(d[2][0]), M(d[2][1]), M(d[2][2]), M(d[2][3]), M(d[3][0]), M(d[3][1]), M(d[3][2]),         \
      M(d[3][3]), M(d[4][0]), M(d[4][1]), M(d[4][2]), M(d[4][3]), M(d[5][0]), M(d[5][1]),         \
      M(d[5][2]), M(d[5][3]), M(d[6][0]), M(d[6][1]), M(d[6][2]), M(d[6][3]), M(d[7][0]),         \
      M(d[7][1]), M(d[7][2]), M(d[7][3]), M(d[8][0]), M(d[8][1]), M(d[8][2]), M(d[8][3]),         \
      M(d[9][0]), M(d[9][1]), M(d[9][2]), M(d[9][3]), M(d[10][0]), M(d[10][1]), M(d[10][2]),      \
      M(d[10][3]), M(d[11][0]), M(d[11][1]), M(d[11][2]), M(d[11][3]), M(d[12][0]), M(d[12][1]),  \
      M(d[12][2]), M(d[12][3]), M(d[13][0]), M(d[13][1]), M(d[13][2]), M(d[13][3]), M(d[14][0]),  \
      M(d[14][1]), M(d[14][2]), M(d[14][3]), M(d[15][0]), M(d[15][1]), M(d[15][2]), M(d[15][3])
#define NPR_WGMMA_RW(x) "+f"(x)
#define NPR_WGMMA_W(x) "=f"(x)
#define NPR_WGMMA_REGS32                                                                        \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, " \
  "%20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define NPR_WGMMA_REGS64                                                                        \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, " \
  "%20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, "  \
  "%38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, "  \
  "%56, %57, %58, %59, %60, %61, %62, %63}"

// D (64 x 64) (+)= A B, A and B from shared memory (K-major, transpose flags 0; accumulate 0:
// D = A B). d holds this thread's 32 accumulators as 8 n8 fragments (mma.sync's C layout).
__device__ __forceinline__ void wgmma_m64n64k16_ss(float (&d)[8][4], uint64_t a_desc,
                                                   uint64_t b_desc, int accumulate) {
#if defined(NPR_EMU)
  emu::ptx::wgmma(64, &d[0][0], nullptr, a_desc, b_desc, accumulate != 0, false, false);
#else
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " NPR_WGMMA_REGS32
      ", %32, %33, p, 1, 1, 0, 0;\n}\n"
      : NPR_WGMMA_ACC8(NPR_WGMMA_RW)
      : "l"(a_desc), "l"(b_desc), "r"(accumulate));
#endif
}

// The same, first k-step: D = A B, D's old values neither read nor kept alive.
__device__ __forceinline__ void wgmma_m64n64k16_ss_first(float (&d)[8][4], uint64_t a_desc,
                                                         uint64_t b_desc) {
#if defined(NPR_EMU)
  emu::ptx::wgmma(64, &d[0][0], nullptr, a_desc, b_desc, false, false, false);
#else
  asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " NPR_WGMMA_REGS32
               ", %32, %33, 0, 1, 1, 0, 0;\n"
               : NPR_WGMMA_ACC8(NPR_WGMMA_W)
               : "l"(a_desc), "l"(b_desc));
#endif
}

// D (64 x 64) (+)= A B, A M-major and B N-major from shared memory (transpose flags 1, 1).
__device__ __forceinline__ void wgmma_m64n64k16_ss_tt(float (&d)[8][4], uint64_t a_desc,
                                                      uint64_t b_desc, int accumulate) {
#if defined(NPR_EMU)
  emu::ptx::wgmma(64, &d[0][0], nullptr, a_desc, b_desc, accumulate != 0, true, true);
#else
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " NPR_WGMMA_REGS32
      ", %32, %33, p, 1, 1, 1, 1;\n}\n"
      : NPR_WGMMA_ACC8(NPR_WGMMA_RW)
      : "l"(a_desc), "l"(b_desc), "r"(accumulate));
#endif
}

// The same, first k-step (D = A B, write-only).
__device__ __forceinline__ void wgmma_m64n64k16_ss_tt_first(float (&d)[8][4], uint64_t a_desc,
                                                            uint64_t b_desc) {
#if defined(NPR_EMU)
  emu::ptx::wgmma(64, &d[0][0], nullptr, a_desc, b_desc, false, true, true);
#else
  asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " NPR_WGMMA_REGS32
               ", %32, %33, 0, 1, 1, 1, 1;\n"
               : NPR_WGMMA_ACC8(NPR_WGMMA_W)
               : "l"(a_desc), "l"(b_desc));
#endif
}

// D (64 x 64) += A B, A from registers (four bf16x2 a warp's 16 rows hold, mma.sync's A
// layout), B from shared memory N-major (transpose flag 1).
__device__ __forceinline__ void wgmma_m64n64k16_rs_tb(float (&d)[8][4], const uint32_t (&a)[4],
                                                      uint64_t b_desc) {
#if defined(NPR_EMU)
  emu::ptx::wgmma(64, &d[0][0], a, 0, b_desc, true, false, true);
#else
  asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " NPR_WGMMA_REGS32
               ", {%32, %33, %34, %35}, %36, 1, 1, 1, 1;\n"
               : NPR_WGMMA_ACC8(NPR_WGMMA_RW)
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b_desc));
#endif
}

// D (64 x 64) (+)= A B, A from registers (mma.sync's A layout), B from shared memory K-major
// (transpose flag 0): the forward's S = Q K^T with Q held in registers. _first: D = A B.
__device__ __forceinline__ void wgmma_m64n64k16_rs(float (&d)[8][4], const uint32_t (&a)[4],
                                                   uint64_t b_desc) {
#if defined(NPR_EMU)
  emu::ptx::wgmma(64, &d[0][0], a, 0, b_desc, true, false, false);
#else
  asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " NPR_WGMMA_REGS32
               ", {%32, %33, %34, %35}, %36, 1, 1, 1, 0;\n"
               : NPR_WGMMA_ACC8(NPR_WGMMA_RW)
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b_desc));
#endif
}
__device__ __forceinline__ void wgmma_m64n64k16_rs_first(float (&d)[8][4], const uint32_t (&a)[4],
                                                         uint64_t b_desc) {
#if defined(NPR_EMU)
  emu::ptx::wgmma(64, &d[0][0], a, 0, b_desc, false, false, false);
#else
  asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " NPR_WGMMA_REGS32
               ", {%32, %33, %34, %35}, %36, 0, 1, 1, 0;\n"
               : NPR_WGMMA_ACC8(NPR_WGMMA_W)
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b_desc));
#endif
}

// D (64 x 128) += A B, A from registers, B from shared memory N-major.
__device__ __forceinline__ void wgmma_m64n128k16_rs_tb(float (&d)[16][4], const uint32_t (&a)[4],
                                                       uint64_t b_desc) {
#if defined(NPR_EMU)
  emu::ptx::wgmma(128, &d[0][0], a, 0, b_desc, true, false, true);
#else
  asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " NPR_WGMMA_REGS64
               ", {%64, %65, %66, %67}, %68, 1, 1, 1, 1;\n"
               : NPR_WGMMA_ACC16(NPR_WGMMA_RW)
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b_desc));
#endif
}

// D (64 x 128) (+)= A B, A and B from shared memory K-major (the forward's S = Q K^T over 128
// keys); _first: D = A B, D's old values neither read nor kept alive.
__device__ __forceinline__ void wgmma_m64n128k16_ss(float (&d)[16][4], uint64_t a_desc,
                                                    uint64_t b_desc) {
#if defined(NPR_EMU)
  emu::ptx::wgmma(128, &d[0][0], nullptr, a_desc, b_desc, true, false, false);
#else
  asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " NPR_WGMMA_REGS64
               ", %64, %65, 1, 1, 1, 0, 0;\n"
               : NPR_WGMMA_ACC16(NPR_WGMMA_RW)
               : "l"(a_desc), "l"(b_desc));
#endif
}
__device__ __forceinline__ void wgmma_m64n128k16_ss_first(float (&d)[16][4], uint64_t a_desc,
                                                          uint64_t b_desc) {
#if defined(NPR_EMU)
  emu::ptx::wgmma(128, &d[0][0], nullptr, a_desc, b_desc, false, false, false);
#else
  asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " NPR_WGMMA_REGS64
               ", %64, %65, 0, 1, 1, 0, 0;\n"
               : NPR_WGMMA_ACC16(NPR_WGMMA_W)
               : "l"(a_desc), "l"(b_desc));
#endif
}

// C = A B^T (64 x 64, K = D), both operands K-major sw128 tiles of 64 rows given by their
// k-step-0 descriptors. The caller fences before, commits and waits after.
template <int D>
__device__ __forceinline__ void k_major_product(float (&c)[8][4], uint64_t a, uint64_t b) {
  wgmma_m64n64k16_ss_first(c, a, b);
#pragma unroll
  for (int kk = 1; kk < D / 16; ++kk) {
    const uint32_t step = k_major_step(64, 16 * kk);
    wgmma_m64n64k16_ss(c, desc_plus(a, step), desc_plus(b, step), 1);
  }
}

// C0 = A0 B0^T and C1 = A1 B1^T (each 64 x 64, K = D), every operand a K-major sw128 tile of 64
// rows given by its k-step-0 descriptor, the two products' k-steps interleaved (the backward's
// S and dP). The caller fences before, commits and waits after.
template <int D>
__device__ __forceinline__ void two_k_major_products(float (&c0)[8][4], uint64_t a0, uint64_t b0,
                                                     float (&c1)[8][4], uint64_t a1, uint64_t b1) {
  wgmma_m64n64k16_ss_first(c0, a0, b0);
  wgmma_m64n64k16_ss_first(c1, a1, b1);
#pragma unroll
  for (int kk = 1; kk < D / 16; ++kk) {
    const uint32_t step = k_major_step(64, 16 * kk);
    wgmma_m64n64k16_ss(c0, desc_plus(a0, step), desc_plus(b0, step), 1);
    wgmma_m64n64k16_ss(c1, desc_plus(a1, step), desc_plus(b1, step), 1);
  }
}

}  // namespace npr::wgmma
