// Decode-sized linear layers on the device (see skinny_linear_cuda.h). CTA = 4 warps; a warp owns
// two weight rows (two output columns, or the gate and up rows of one SwiGLU column) and all the
// batch's rows: each lane walks k in 16-byte chunks (8 bf16) of both weight rows, reads the
// same chunk of every x row (from L1: x is tiny and shared by the whole grid), and accumulates
// rows x 2 dot products in fp32; a butterfly sums the lanes. Weight loads bypass L1 allocation
// (streamed once); the loop is unrolled so that each lane has several chunks in flight.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <string>

#include "core/cuda_check.cuh"
#include "core/cuda_dtype.cuh"
#include "kernels/skinny_linear_cuda.h"

namespace npr {

namespace {

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;

__device__ __forceinline__ uint4 load_stream(const uint4* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

__device__ __forceinline__ float bf16_lo(uint32_t v) {
  return __uint_as_float(v << 16);
}
__device__ __forceinline__ float bf16_hi(uint32_t v) {
  return __uint_as_float(v & 0xffff0000u);
}
__device__ __forceinline__ float bf16_bits(uint16_t v) {
  return __uint_as_float(static_cast<uint32_t>(v) << 16);
}

// acc += dot of the 8 bf16 in w with the 8 in x.
__device__ __forceinline__ float dot8(float acc, const uint4& w, const uint4& x) {
  acc = fmaf(bf16_lo(w.x), bf16_lo(x.x), acc);
  acc = fmaf(bf16_hi(w.x), bf16_hi(x.x), acc);
  acc = fmaf(bf16_lo(w.y), bf16_lo(x.y), acc);
  acc = fmaf(bf16_hi(w.y), bf16_hi(x.y), acc);
  acc = fmaf(bf16_lo(w.z), bf16_lo(x.z), acc);
  acc = fmaf(bf16_hi(w.z), bf16_hi(x.z), acc);
  acc = fmaf(bf16_lo(w.w), bf16_lo(x.w), acc);
  acc = fmaf(bf16_hi(w.w), bf16_hi(x.w), acc);
  return acc;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float round_bf16(float v) {
  return __bfloat162float(__float2bfloat16_rn(v));
}

// a0[r], a1[r] = x row r . W rows w0, w1 (length k), summed over the warp (every lane holds them).
template <int M, bool VEC>
__device__ __forceinline__ void dot_rows(float (&a0)[M], float (&a1)[M], const uint16_t* x,
                                         const uint16_t* w0, const uint16_t* w1, int64_t k,
                                         int lane) {
#pragma unroll
  for (int r = 0; r < M; ++r) a0[r] = a1[r] = 0.0f;
  if (VEC) {
    const int64_t chunks = k / 8;
    const uint4* p0 = reinterpret_cast<const uint4*>(w0);
    const uint4* p1 = reinterpret_cast<const uint4*>(w1);
    const uint4* px = reinterpret_cast<const uint4*>(x);
#pragma unroll 4
    for (int64_t c = lane; c < chunks; c += 32) {
      const uint4 u0 = load_stream(p0 + c), u1 = load_stream(p1 + c);
#pragma unroll
      for (int r = 0; r < M; ++r) {
        const uint4 xv = __ldg(px + r * chunks + c);
        a0[r] = dot8(a0[r], u0, xv);
        a1[r] = dot8(a1[r], u1, xv);
      }
    }
  } else {
    for (int64_t e = lane; e < k; e += 32) {
      const float u0 = bf16_bits(w0[e]), u1 = bf16_bits(w1[e]);
#pragma unroll
      for (int r = 0; r < M; ++r) {
        const float xv = bf16_bits(x[r * k + e]);
        a0[r] = fmaf(u0, xv, a0[r]);
        a1[r] = fmaf(u1, xv, a1[r]);
      }
    }
  }
#pragma unroll
  for (int r = 0; r < M; ++r) {
    a0[r] = warp_sum(a0[r]);
    a1[r] = warp_sum(a1[r]);
  }
}

// Warp w of block b: output columns 2 (4 b + w) and 2 (4 b + w) + 1.
template <int M, bool VEC, typename CT>
__global__ void __launch_bounds__(kThreads)
    skinny_linear_kernel(CT* __restrict__ y, const uint16_t* __restrict__ x,
                         const uint16_t* __restrict__ W, int64_t k, int64_t n, bool accumulate) {
  const int lane = threadIdx.x & 31;
  const int64_t j0 = 2 * (static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5));
  if (j0 >= n) return;  // whole warps leave together
  const bool two = j0 + 1 < n;
  float a0[M], a1[M];
  dot_rows<M, VEC>(a0, a1, x, W + j0 * k, W + (two ? j0 + 1 : j0) * k, k, lane);
  if (lane != 0) return;
#pragma unroll
  for (int r = 0; r < M; ++r) {
    CT* yr = y + r * n + j0;
    yr[0] = from_f32<CT>(accumulate ? to_f32(yr[0]) + a0[r] : a0[r]);
    if (two) yr[1] = from_f32<CT>(accumulate ? to_f32(yr[1]) + a1[r] : a1[r]);
  }
}

// Warp w of block b: SwiGLU column j = 4 b + w from gate row j and up row inter + j.
template <int M, bool VEC>
__global__ void __launch_bounds__(kThreads)
    skinny_swiglu_kernel(__nv_bfloat16* __restrict__ act, const uint16_t* __restrict__ x,
                         const uint16_t* __restrict__ W, int64_t k, int64_t inter) {
  const int lane = threadIdx.x & 31;
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (j >= inter) return;
  float g[M], u[M];
  dot_rows<M, VEC>(g, u, x, W + j * k, W + (inter + j) * k, k, lane);
  if (lane != 0) return;
#pragma unroll
  for (int r = 0; r < M; ++r) {
    const float gr = round_bf16(g[r]), ur = round_bf16(u[r]);
    act[r * inter + j] = __float2bfloat16_rn(gr / (1.0f + expf(-gr)) * ur);
  }
}

Status check_call(const char* op, const void* y, const void* x, const void* W, int64_t rows,
                  int64_t in, int64_t out) {
  if (rows < 1 || rows > kSkinnyMaxRows || in <= 0 || out <= 0)
    return Status::invalid(std::string(op) +
                           ": expected 1 <= rows <= " + std::to_string(kSkinnyMaxRows) +
                           " and in, out > 0 (got rows=" + std::to_string(rows) +
                           " in=" + std::to_string(in) + " out=" + std::to_string(out) + ")");
  if (!y || !x || !W) return Status::invalid(std::string(op) + ": null device pointer");
  return Status::ok();
}

bool vector_ok(const void* x, const void* W, int64_t in) {
  return in % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(W) % 16 == 0;
}

// Calls f(std::integral_constant<int, M>, std::bool_constant<VEC>) for the runtime rows, vec.
template <typename F>
Status with_rows(int64_t rows, bool vec, F&& f) {
  auto v = [&](auto m) { return vec ? f(m, std::true_type{}) : f(m, std::false_type{}); };
  switch (rows) {
    case 1: return v(std::integral_constant<int, 1>{});
    case 2: return v(std::integral_constant<int, 2>{});
    case 3: return v(std::integral_constant<int, 3>{});
    case 4: return v(std::integral_constant<int, 4>{});
    case 5: return v(std::integral_constant<int, 5>{});
    case 6: return v(std::integral_constant<int, 6>{});
    case 7: return v(std::integral_constant<int, 7>{});
    default: return v(std::integral_constant<int, 8>{});
  }
}

}  // namespace

Status skinny_linear_cuda(CudaContext& ctx, DevDType out_t, void* y, const void* x, const void* W,
                          int64_t rows, int64_t in, int64_t out, bool accumulate) {
  NPR_TRY(check_call("skinny_linear_cuda", y, x, W, rows, in, out));
  cudaStream_t st = static_cast<cudaStream_t>(ctx.stream());
  const unsigned grid = static_cast<unsigned>((out + 2 * kWarps - 1) / (2 * kWarps));
  const auto* xs = static_cast<const uint16_t*>(x);
  const auto* ws = static_cast<const uint16_t*>(W);
  return with_rows(rows, vector_ok(x, W, in), [&](auto m, auto vec) {
    constexpr int M = decltype(m)::value;
    constexpr bool V = decltype(vec)::value;
    if (out_t == DevDType::kF32)
      skinny_linear_kernel<M, V, float>
          <<<grid, kThreads, 0, st>>>(static_cast<float*>(y), xs, ws, in, out, accumulate);
    else
      skinny_linear_kernel<M, V, __nv_bfloat16>
          <<<grid, kThreads, 0, st>>>(static_cast<__nv_bfloat16*>(y), xs, ws, in, out, accumulate);
    return cuda_launch_status("skinny_linear_cuda");
  });
}

Status skinny_swiglu_linear_cuda(CudaContext& ctx, void* act, const void* x, const void* W,
                                 int64_t rows, int64_t in, int64_t inter) {
  NPR_TRY(check_call("skinny_swiglu_linear_cuda", act, x, W, rows, in, inter));
  cudaStream_t st = static_cast<cudaStream_t>(ctx.stream());
  const unsigned grid = static_cast<unsigned>((inter + kWarps - 1) / kWarps);
  return with_rows(rows, vector_ok(x, W, in), [&](auto m, auto vec) {
    constexpr int M = decltype(m)::value;
    constexpr bool V = decltype(vec)::value;
    skinny_swiglu_kernel<M, V><<<grid, kThreads, 0, st>>>(
        static_cast<__nv_bfloat16*>(act), static_cast<const uint16_t*>(x),
        static_cast<const uint16_t*>(W), in, inter);
    return cuda_launch_status("skinny_swiglu_linear_cuda");
  });
}

}  // namespace npr
