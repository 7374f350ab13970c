// Inside .cu files only: thin wrappers over the sm_80+ tensor-core instructions the bf16 kernels
// use (attention, the fallback GEMM): mma.sync m16n8k16 (bf16 inputs, fp32 accumulators),
// ldmatrix (shared memory -> fragments, optionally transposed) and bf16x2 packing.
//
// Fragment layout of mma m16n8k16 (PTX ISA, "Matrix Fragments for mma.m16n8k16"), lane = 4*g + c
// (g = lane / 4 in 0..7, c = lane % 4):
//   A (16x16, row): a[0] = (g, 2c..2c+1), a[1] = (g+8, 2c..), a[2] = (g, 2c+8..), a[3] = (g+8,
//   2c+8..) B (16x8, col):  b[0] = (k 2c..2c+1, n g), b[1] = (k 2c+8.., n g) C (16x8): c[0..1] =
//   (g, 2c..2c+1), c[2..3] = (g+8, 2c..2c+1)
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace npr {

// d = a . b + d on one warp.
__device__ __forceinline__ void mma_bf16_16816(float d[4], const uint32_t a[4],
                                               const uint32_t b[2]) {
#if defined(NPR_EMU)
  emu::ptx::mma_m16n8k16(d, a, b);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  __trap();  // the build's architectures are sm_80 and up; never reached
#endif
}

// Four 8x8 b16 matrices from shared memory: lanes 8i..8i+7 give the row addresses of matrix i.
__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void* smem_row) {
  const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem_row));
#if defined(NPR_EMU)
  emu::ptx::ldmatrix(r, 4, false, addr);
#else
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
#endif
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void* smem_row) {
  const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem_row));
#if defined(NPR_EMU)
  emu::ptx::ldmatrix(r, 4, true, addr);
#else
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
#endif
}
__device__ __forceinline__ void ldmatrix_x2(uint32_t r[2], const void* smem_row) {
  const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem_row));
#if defined(NPR_EMU)
  emu::ptx::ldmatrix(r, 2, false, addr);
#else
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(addr));
#endif
}
__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t r[2], const void* smem_row) {
  const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem_row));
#if defined(NPR_EMU)
  emu::ptx::ldmatrix(r, 2, true, addr);
#else
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(addr));
#endif
}

// Two floats -> one register of two bf16 (lo in the low half), round to nearest even.
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

// 16-byte asynchronous global -> shared copy (cp.async.cg), and its fences.
__device__ __forceinline__ void cp_async_16(void* smem, const void* gmem) {
  const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
#if defined(NPR_EMU)
  emu::ptx::cp_async(addr, gmem, 16, 16);
#else
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(addr), "l"(gmem));
#endif
}
#if defined(NPR_EMU)
__device__ __forceinline__ void cp_async_commit() {
  emu::ptx::cp_async_commit();
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  emu::ptx::cp_async_wait(N);
}
#else
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::);
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
#endif

}  // namespace npr
