// The wgmma probe's kernel (wgmma_probe.h): each wgmma wrapper of wgmma.cuh run once by one
// warpgroup (grid 1, 128 threads) on operands staged into sw128 tiles, its accumulators written
// out by the assumed fragment layout. Launched by wgmma_probe_sm90a.cu; here so that the kernel
// emulator (cpp/tests/emu) runs it too. Inside sm_90a .cu files (or the emulator) only.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/dynamic_shared.cuh"
#include "kernels/wgmma.cuh"
#include "kernels/wgmma_probe.h"

namespace npr::wgmma_probe_dev {

constexpr int kRows = 64;

// tile (sw128, 64 rows x cols) <- src (64, cols) row-major bf16 bits, by the warpgroup.
[[maybe_unused]] __device__ void stage(unsigned char* tile, const uint16_t* src, int cols) {
  for (int i = threadIdx.x; i < kRows * cols; i += 128) {
    const int r = i / cols, c = i % cols;
    *reinterpret_cast<uint16_t*>(tile + wgmma::sw128_offset(kRows, r, c)) = src[i];
  }
}

// The A fragment of k-step t from a (64, 64) row-major matrix: mma.sync's A layout per warp.
[[maybe_unused]] __device__ void a_fragment(uint32_t (&a)[4], const uint16_t* src, int t) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int r = warp * 16 + lane / 4, c = 16 * t + 2 * (lane % 4);
  auto pair = [&](int rr, int cc) {
    return static_cast<uint32_t>(src[rr * 64 + cc]) |
           (static_cast<uint32_t>(src[rr * 64 + cc + 1]) << 16);
  };
  a[0] = pair(r, c);
  a[1] = pair(r + 8, c);
  a[2] = pair(r, c + 8);
  a[3] = pair(r + 8, c + 8);
}

// d (64, N) row-major <- accumulators by the assumed layout.
template <int F>
__device__ void write_out(float* d, const float (&acc)[F][4]) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int r = warp * 16 + lane / 4, N = 8 * F;
  for (int j = 0; j < F; ++j)
    for (int e = 0; e < 4; ++e)
      d[(r + (e >> 1) * 8) * N + 8 * j + 2 * (lane % 4) + (e & 1)] = acc[j][e];
}

// Zeroed accumulators, one batch of wgmma issued by `issue`, waited for, written out.
template <int F, typename Issue>
[[maybe_unused]] __device__ void run_and_write(float* d, Issue issue) {
  float acc[F][4];
#pragma unroll
  for (int j = 0; j < F; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
  wgmma::fence_operands(acc);
  wgmma::fence();
  issue(acc);
  wgmma::commit();
  wgmma::wait<0>();
  wgmma::fence_operands(acc);
  write_out(d, acc);
}

__global__ void __launch_bounds__(128)
    probe_kernel(int kind, const uint16_t* a, const uint16_t* b, float* d) {
#if NPR_SM90A_DEVICE_CODE
  NPR_STATIC_SHARED_ALIGNED(1024, unsigned char, ta, [kRows * 128 * 2]);
  NPR_STATIC_SHARED_ALIGNED(1024, unsigned char, tb, [kRows * 128 * 2]);
  const uint32_t sa = static_cast<uint32_t>(__cvta_generic_to_shared(ta));
  const uint32_t sb = static_cast<uint32_t>(__cvta_generic_to_shared(tb));
  if (kind == static_cast<int>(WgmmaProbe::kSsKMajor)) {
    stage(ta, a, 128);
    stage(tb, b, 128);
  } else if (kind == static_cast<int>(WgmmaProbe::kRsN64)) {
    stage(tb, b, 64);
  } else {
    if (kind == static_cast<int>(WgmmaProbe::kSsTransposed)) stage(ta, a, 64);
    stage(tb, b, 128);
  }
  wgmma::fence_proxy_async_shared();
  __syncthreads();
  if (kind == static_cast<int>(WgmmaProbe::kSsKMajor)) {
    const uint64_t ad = wgmma::k_major_desc(sa, kRows, 0), bd = wgmma::k_major_desc(sb, kRows, 0);
    run_and_write<8>(d, [&](float(&acc)[8][4]) {
      wgmma::wgmma_m64n64k16_ss_first(acc, ad, bd);
#pragma unroll
      for (int k = 1; k < 8; ++k) {
        const uint32_t step = wgmma::k_major_step(kRows, 16 * k);
        wgmma::wgmma_m64n64k16_ss(acc, wgmma::desc_plus(ad, step), wgmma::desc_plus(bd, step), 1);
      }
    });
  } else if (kind == static_cast<int>(WgmmaProbe::kSsTransposed)) {
    const uint64_t ad = wgmma::n_major_desc(sa, kRows, 0);
    const uint64_t bd = wgmma::n_major_desc(sb + wgmma::column_block_stride(kRows), kRows, 0);
    run_and_write<8>(d, [&](float(&acc)[8][4]) {
      wgmma::wgmma_m64n64k16_ss_tt_first(acc, ad, bd);
#pragma unroll
      for (int k = 1; k < 4; ++k) {
        const uint32_t step = wgmma::n_major_step(16 * k);
        wgmma::wgmma_m64n64k16_ss_tt(acc, wgmma::desc_plus(ad, step), wgmma::desc_plus(bd, step),
                                     1);
      }
    });
  } else {
    uint32_t af[4][4];
#pragma unroll
    for (int t = 0; t < 4; ++t) a_fragment(af[t], a, t);
    const uint64_t bd = wgmma::n_major_desc(sb, kRows, 0);
    if (kind == static_cast<int>(WgmmaProbe::kRsN128))
      run_and_write<16>(d, [&](float(&acc)[16][4]) {
#pragma unroll
        for (int t = 0; t < 4; ++t)
          wgmma::wgmma_m64n128k16_rs_tb(acc, af[t],
                                        wgmma::desc_plus(bd, wgmma::n_major_step(16 * t)));
      });
    else
      run_and_write<8>(d, [&](float(&acc)[8][4]) {
#pragma unroll
        for (int t = 0; t < 4; ++t)
          wgmma::wgmma_m64n64k16_rs_tb(acc, af[t],
                                       wgmma::desc_plus(bd, wgmma::n_major_step(16 * t)));
      });
  }
#else
  __trap();
#endif
}

}  // namespace npr::wgmma_probe_dev
