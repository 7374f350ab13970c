// gemm_cuda (see gemm_cuda.h): one row-major GEMM entry for the CUDA training path.
//
// Dispatch: cuBLAS (cublasGemmEx, fp32 compute) when the build links it and ctx.use_cublas();
// otherwise fp32 goes to the SIMT kernel of gemm.cu and bf16 to the tensor-core kernel here.
//
// Row-major on column-major cuBLAS: a row-major (r, c) matrix with leading dimension ld is the
// column-major (c, r) matrix with the same ld, i.e. its transpose. So the row-major C = op(A)
// op(B) is computed as the column-major C^T (n, m) = op(B)^T (n, k) . op(A)^T (k, m): cuBLAS's
// first operand is our B (op from tb), its second our A (op from ta), and m and n swap.
//
// The tensor-core kernel: CTA tile BM x BN (128 x 128, or 64 x 64 when the big tiles would not
// fill the device), 32-deep k steps, 8 warps in a 2 x 4 grid, mma.sync m16n8k16 with fp32
// accumulators, fragments from shared memory by ldmatrix. Each operand tile is staged in the
// layout it has in global memory (k-contiguous: [rows][k]; otherwise [k][rows], read back with
// ldmatrix.trans), so all four transpose pairs stream with 16-byte cp.async copies through a
// 3-stage pipeline. A 16-byte chunk that is not fully inside the matrix, or an operand whose
// pointer or leading dimension is not 16-byte aligned, is loaded element by element with
// guards and zero fill: any m, n, k works. Not here: split-k, swizzled layouts, epilogue fusion.
#include <cuda_runtime.h>
#if defined(NPR_HAVE_CUBLAS)
#include <cublas_v2.h>
#endif

#include <climits>
#include <cstdint>
#include <string>

#include "core/cuda_check.cuh"
#include "core/cuda_launch.cuh"
#include "core/dynamic_shared.cuh"
#include "kernels/gemm_cuda.h"
#include "kernels/mma_bf16.cuh"

namespace npr {

namespace {

constexpr int kBK = 32;        // k depth of one pipeline stage
constexpr int kStages = 3;     // cp.async pipeline depth
constexpr int kThreads = 256;  // 8 warps: 2 (m) x 4 (n)
constexpr int kPad = 8;        // bf16 elements of padding per shared row (no ldmatrix conflicts)

struct TcShape {
  long long m, n, k, lda, ldb, ldc;
  float alpha, beta;
};

// Shared-memory tile of one operand: MN rows of the output side by kBK of k. K-contiguous
// operands are stored [MN][kBK + pad], the others [kBK][MN + pad] (as they lie in memory).
template <int MN, bool KC>
struct Tile {
  static constexpr int kRows = KC ? MN : kBK;
  static constexpr int kCols = KC ? kBK : MN;
  static constexpr int kStride = kCols + kPad;  // elements
  static constexpr int kElems = kRows * kStride;
};

// One (ROWS x COLS) tile of a row-major bf16 matrix g (leading dimension ld), origin (row0,
// col0), into shared memory: 16-byte cp.async where allowed, else guarded loads, zero outside.
template <int ROWS, int COLS, int STRIDE>
__device__ __forceinline__ void load_tile(uint16_t* sm, const uint16_t* __restrict__ g,
                                          long long ld, long long row0, long long row_lim,
                                          long long col0, long long col_lim, bool vec) {
  constexpr int kChunksPerRow = COLS / 8;
  constexpr int kChunks = ROWS * kChunksPerRow;
#pragma unroll
  for (int c = threadIdx.x; c < kChunks; c += kThreads) {
    const int r = c / kChunksPerRow, cc = (c % kChunksPerRow) * 8;
    const long long gr = row0 + r, gc = col0 + cc;
    uint16_t* dst = sm + r * STRIDE + cc;
    if (vec && gr < row_lim && gc + 8 <= col_lim) {
      cp_async_16(dst, g + gr * ld + gc);
    } else {
      uint32_t w[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const uint32_t lo = (gr < row_lim && gc + 2 * e < col_lim) ? g[gr * ld + gc + 2 * e] : 0u;
        const uint32_t hi =
            (gr < row_lim && gc + 2 * e + 1 < col_lim) ? g[gr * ld + gc + 2 * e + 1] : 0u;
        w[e] = lo | (hi << 16);
      }
      *reinterpret_cast<uint4*>(dst) = make_uint4(w[0], w[1], w[2], w[3]);
    }
  }
}

template <typename CT>
__device__ __forceinline__ float load_c(const CT* p);
template <>
__device__ __forceinline__ float load_c<float>(const float* p) {
  return *p;
}
template <>
__device__ __forceinline__ float load_c<__nv_bfloat16>(const __nv_bfloat16* p) {
  return __bfloat162float(*p);
}
__device__ __forceinline__ void store_c(float* p, float v) {
  *p = v;
}
__device__ __forceinline__ void store_c(__nv_bfloat16* p, float v) {
  *p = __float2bfloat16_rn(v);
}

// C (m, n) CT = alpha * op(A) . op(B) + beta * C, A and B bf16 (as raw bits). AKC: op(A) is
// k-contiguous in memory (ta == kN); BKC: op(B) is k-contiguous (tb == kT).
template <int BM, int BN, bool AKC, bool BKC, typename CT>
__global__ void __launch_bounds__(kThreads)
    gemm_bf16_tc_kernel(TcShape s, const uint16_t* __restrict__ A, const uint16_t* __restrict__ B,
                        CT* __restrict__ C, bool vec_a, bool vec_b) {
  constexpr int WM = BM / 2, WN = BN / 4;   // warp tile
  constexpr int MT = WM / 16, NT = WN / 8;  // mma tiles per warp
  static_assert(NT % 2 == 0, "B fragments are loaded two n8 tiles at a time");
  using TA = Tile<BM, AKC>;
  using TB = Tile<BN, BKC>;
  NPR_DYNAMIC_SHARED(smem_raw);
  uint16_t* sa = reinterpret_cast<uint16_t*>(smem_raw);  // (kStages, TA::kElems)
  uint16_t* sb = sa + kStages * TA::kElems;              // (kStages, TB::kElems)

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wm0 = (warp / 4) * WM, wn0 = (warp % 4) * WN;
  const long long bm0 = static_cast<long long>(blockIdx.y) * BM;
  const long long bn0 = static_cast<long long>(blockIdx.x) * BN;
  const int ktiles = static_cast<int>((s.k + kBK - 1) / kBK);

  auto load_stage = [&](int stage, int kt) {
    const long long k0 = static_cast<long long>(kt) * kBK;
    uint16_t* a = sa + stage * TA::kElems;
    uint16_t* b = sb + stage * TB::kElems;
    if (AKC)  // A (m, k) row-major
      load_tile<TA::kRows, TA::kCols, TA::kStride>(a, A, s.lda, bm0, s.m, k0, s.k, vec_a);
    else  // A stored (k, m)
      load_tile<TA::kRows, TA::kCols, TA::kStride>(a, A, s.lda, k0, s.k, bm0, s.m, vec_a);
    if (BKC)  // B stored (n, k)
      load_tile<TB::kRows, TB::kCols, TB::kStride>(b, B, s.ldb, bn0, s.n, k0, s.k, vec_b);
    else  // B (k, n) row-major
      load_tile<TB::kRows, TB::kCols, TB::kStride>(b, B, s.ldb, k0, s.k, bn0, s.n, vec_b);
  };

  float acc[MT][NT][4];
#pragma unroll
  for (int i = 0; i < MT; ++i)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;

#pragma unroll
  for (int st = 0; st < kStages - 1; ++st) {
    if (st < ktiles) load_stage(st, st);
    cp_async_commit();
  }

  for (int kt = 0; kt < ktiles; ++kt) {
    // Groups committed so far: kStages - 1 + kt; this leaves only the newest kStages - 2 in
    // flight, so stage kt has landed. The barrier also frees the stage computed at kt - 1.
    cp_async_wait<kStages - 2>();
    __syncthreads();
    {
      const int nk = kt + kStages - 1;
      if (nk < ktiles) load_stage(nk % kStages, nk);
      cp_async_commit();
    }
    const uint16_t* a_s = sa + (kt % kStages) * TA::kElems;
    const uint16_t* b_s = sb + (kt % kStages) * TB::kElems;
#pragma unroll
    for (int kk = 0; kk < kBK; kk += 16) {
      uint32_t af[MT][4], bfr[NT][2];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        const int m0 = wm0 + mt * 16;
        if (AKC) {  // [m][k]: matrices (m 0-7, k 0-7), (m 8-15, k 0-7), (m 0-7, k 8-15), ...
          const int row = m0 + (lane % 8) + ((lane / 8) % 2) * 8, col = kk + (lane / 16) * 8;
          ldmatrix_x4(af[mt], a_s + row * TA::kStride + col);
        } else {  // [k][m], transposed on load; same matrix order as above
          const int row = kk + (lane % 8) + (lane / 16) * 8, col = m0 + ((lane / 8) % 2) * 8;
          ldmatrix_x4_trans(af[mt], a_s + row * TA::kStride + col);
        }
      }
#pragma unroll
      for (int p = 0; p < NT / 2; ++p) {
        const int n0 = wn0 + p * 16;
        uint32_t r[4];  // (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15)
        if (BKC) {      // [n][k]
          const int row = n0 + (lane % 8) + (lane / 16) * 8, col = kk + ((lane / 8) % 2) * 8;
          ldmatrix_x4(r, b_s + row * TB::kStride + col);
        } else {  // [k][n], transposed on load
          const int row = kk + (lane % 8) + ((lane / 8) % 2) * 8, col = n0 + (lane / 16) * 8;
          ldmatrix_x4_trans(r, b_s + row * TB::kStride + col);
        }
        bfr[2 * p][0] = r[0];
        bfr[2 * p][1] = r[1];
        bfr[2 * p + 1][0] = r[2];
        bfr[2 * p + 1][1] = r[3];
      }
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) mma_bf16_16816(acc[mt][nt], af[mt], bfr[nt]);
    }
  }
  cp_async_wait<0>();  // only empty groups remain; drain them before exit

  const int g = lane / 4, c2 = (lane % 4) * 2;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const long long row = bm0 + wm0 + mt * 16 + g + h * 8;
      if (row >= s.m) continue;
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const long long col = bn0 + wn0 + nt * 8 + c2 + e;
          if (col >= s.n) continue;
          CT* out = C + row * s.ldc + col;
          float v = s.alpha == 0.0f ? 0.0f : s.alpha * acc[mt][nt][2 * h + e];
          if (s.beta != 0.0f) v += s.beta * load_c(out);
          store_c(out, v);
        }
    }
}

template <int BM, int BN, bool AKC, bool BKC, typename CT>
Status launch_tc(const TcShape& d, const void* A, const void* B, void* C, bool vec_a, bool vec_b,
                 cudaStream_t stream) {
  constexpr int smem = kStages * (Tile<BM, AKC>::kElems + Tile<BN, BKC>::kElems) * 2;
  auto kernel = gemm_bf16_tc_kernel<BM, BN, AKC, BKC, CT>;
  // Above 48 KiB dynamic shared memory must be opted into, once per kernel.
  static const cudaError_t attr =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  NPR_TRY(cuda_status(attr, "gemm (cuda, bf16): cudaFuncSetAttribute"));
  const long long gx = (d.n + BN - 1) / BN, gy = (d.m + BM - 1) / BM;
  if (gy > 65535)
    return Status::out_of_range("gemm (cuda, bf16): m = " + std::to_string(d.m) +
                                " needs more than 65535 row tiles; split the call");
  dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy));
  NPR_LAUNCH(grid, kThreads, smem, stream, kernel)
  (d, static_cast<const uint16_t*>(A), static_cast<const uint16_t*>(B), static_cast<CT*>(C), vec_a,
   vec_b);
  return cuda_launch_status("gemm (cuda, bf16): kernel launch");
}

template <int BM, int BN, typename CT>
Status dispatch_layout(const GemmShape& s, const TcShape& d, const void* A, const void* B, void* C,
                       bool vec_a, bool vec_b, cudaStream_t st) {
  const bool akc = s.ta == Trans::kN, bkc = s.tb == Trans::kT;
  if (akc && bkc) return launch_tc<BM, BN, true, true, CT>(d, A, B, C, vec_a, vec_b, st);
  if (akc) return launch_tc<BM, BN, true, false, CT>(d, A, B, C, vec_a, vec_b, st);
  if (bkc) return launch_tc<BM, BN, false, true, CT>(d, A, B, C, vec_a, vec_b, st);
  return launch_tc<BM, BN, false, false, CT>(d, A, B, C, vec_a, vec_b, st);
}

int device_sm_count() {
  static const int count = [] {
    int dev = 0, n = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) {
      cudaGetLastError();
      return 1;
    }
    return n;
  }();
  return count;
}

Status gemm_bf16_tc(const GemmShape& s, DevDType c, const void* A, const void* B, void* C,
                    cudaStream_t stream) {
  const TcShape d{s.m, s.n, s.k, s.lda, s.ldb, s.ldc, s.alpha, s.beta};
  auto aligned = [](const void* p, int64_t ld) {
    return reinterpret_cast<uintptr_t>(p) % 16 == 0 && ld % 8 == 0;
  };
  const bool vec_a = aligned(A, s.lda), vec_b = aligned(B, s.ldb);
  const long long big_tiles = ((s.m + 127) / 128) * ((s.n + 127) / 128);
  const bool big = big_tiles >= device_sm_count();
  if (c == DevDType::kF32)
    return big ? dispatch_layout<128, 128, float>(s, d, A, B, C, vec_a, vec_b, stream)
               : dispatch_layout<64, 64, float>(s, d, A, B, C, vec_a, vec_b, stream);
  return big ? dispatch_layout<128, 128, __nv_bfloat16>(s, d, A, B, C, vec_a, vec_b, stream)
             : dispatch_layout<64, 64, __nv_bfloat16>(s, d, A, B, C, vec_a, vec_b, stream);
}

std::string shape_text(const GemmShape& s) {
  return "m=" + std::to_string(s.m) + " n=" + std::to_string(s.n) + " k=" + std::to_string(s.k) +
         " ta=" + (s.ta == Trans::kT ? "T" : "N") + " tb=" + (s.tb == Trans::kT ? "T" : "N") +
         " lda=" + std::to_string(s.lda) + " ldb=" + std::to_string(s.ldb) +
         " ldc=" + std::to_string(s.ldc);
}

#if defined(NPR_HAVE_CUBLAS)
cudaDataType_t cublas_type(DevDType t) {
  return t == DevDType::kF32 ? CUDA_R_32F : CUDA_R_16BF;
}

Status gemm_cublas(CudaContext& ctx, const GemmShape& s, DevDType ab, DevDType c, const void* A,
                   const void* B, void* C) {
  for (int64_t v : {s.m, s.n, s.k, s.lda, s.ldb, s.ldc})
    if (v > INT_MAX)
      return Status::out_of_range(
          "gemm (cublas): sizes and leading dimensions must fit in int32 (" + shape_text(s) + ")");
  cublasHandle_t h = static_cast<cublasHandle_t>(ctx.blas());
  // Column-major C^T (n, m) = op(B)^T (n, k) . op(A)^T (k, m); see the header comment.
  // B row-major (k, n) [tb = N] is column-major (n, k) = op(B)^T as is: CUBLAS_OP_N; B stored
  // (n, k) [tb = T] is column-major (k, n): transpose it. Likewise for A.
  const cublasOperation_t op_first = s.tb == Trans::kT ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_second = s.ta == Trans::kT ? CUBLAS_OP_T : CUBLAS_OP_N;
  const float alpha = s.alpha, beta = s.beta;  // host scalars (the default pointer mode)
  const cublasStatus_t st =
      cublasGemmEx(h, op_first, op_second, static_cast<int>(s.n), static_cast<int>(s.m),
                   static_cast<int>(s.k), &alpha, B, cublas_type(ab), static_cast<int>(s.ldb), A,
                   cublas_type(ab), static_cast<int>(s.lda), &beta, C, cublas_type(c),
                   static_cast<int>(s.ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  if (st != CUBLAS_STATUS_SUCCESS)
    return Status(StatusCode::kCuda, std::string("gemm (cublas): cublasGemmEx failed: ") +
                                         cublasGetStatusName(st) + " (" + dev_dtype_name(ab) +
                                         " x " + dev_dtype_name(ab) + " -> " + dev_dtype_name(c) +
                                         ", " + shape_text(s) + ")");
  return Status::ok();
}
#endif

}  // namespace

Status gemm_cuda(CudaContext& ctx, const GemmShape& s, DevDType ab, DevDType c, const void* dA,
                 const void* dB, void* dC) {
  NPR_TRY(gemm_check_shape(s));
  if (ab == DevDType::kF32 && c != DevDType::kF32)
    return Status::invalid(
        "gemm (cuda): A/B fp32 with C bf16 is not supported; the (A/B, C) element types are "
        "(fp32, fp32), (bf16, bf16) and (bf16, fp32)");
  if (s.m == 0 || s.n == 0) return Status::ok();
  if (!dC || (s.k > 0 && (!dA || !dB)))
    return Status::invalid("gemm (cuda): null device pointer (" + shape_text(s) + ")");
  if (ctx.gemm_path == CudaGemmPath::kCublas && !ctx.has_cublas())
    return Status::unavailable(
        "gemm (cuda): gemm_path is kCublas but this build has no cuBLAS; use kAuto or kKernel");
#if defined(NPR_HAVE_CUBLAS)
  // k == 0 (C = beta * C) goes to the kernels, which need no special case for it.
  if (ctx.use_cublas() && s.k > 0) return gemm_cublas(ctx, s, ab, c, dA, dB, dC);
#endif
  cudaStream_t stream = static_cast<cudaStream_t>(ctx.stream());
  if (ab == DevDType::kF32)
    return gemm_f32_cuda(s, static_cast<const float*>(dA), static_cast<const float*>(dB),
                         static_cast<float*>(dC), stream);
  return gemm_bf16_tc(s, c, dA, dB, dC, stream);
}

}  // namespace npr
