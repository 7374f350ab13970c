// Inside parallel_attention.cu only: the paired-head tensor-core forward kernel (attn_fwd_mma2,
// see parallel_attention_fwd.cuh for the family and the shared parameters).
#pragma once

#include "kernels/parallel_attention_fwd.cuh"

namespace npr::attn_fwd {

// ---------------------------------------------------------------------------------------------
// Paired-head tensor-core kernel (bf16, D = 64 or 128, even GQA group): one CTA per (global
// query tile, pair of query heads of one kv head). Each warp owns the same 16 query rows of both
// heads, so every K / V fragment read from shared memory feeds two m16 tiles (half the
// shared-memory traffic per mma of attn_fwd_mma) and each K/V tile loaded serves two heads. Q of
// both heads stays in shared memory (A fragments reloaded per k-step: registers go to the two
// accumulators). Same arithmetic per head as attn_fwd_mma (sum orders per row unchanged).

__device__ __forceinline__ void ldsm_x4(uint32_t r[4], uint32_t addr) {
#if defined(NPR_EMU)
  emu::ptx::ldmatrix(r, 4, false, addr);
#else
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
#endif
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t r[4], uint32_t addr) {
#if defined(NPR_EMU)
  emu::ptx::ldmatrix(r, 4, true, addr);
#else
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
#endif
}

// dst (64, D + 8) at shared byte address dst <- rows [0, n) of src (stride ld), zeros past n,
// by cp.async with a zero-fill size (the caller commits). A running source pointer keeps the
// per-thread addressing to a few registers (the kernel's accumulators need the rest).
template <int D>
__device__ __forceinline__ void load_tile_async_lean(uint32_t dst, const __nv_bfloat16* src,
                                                     int64_t ld, int n, int tid) {
  constexpr int kChunks = D / 8;                   // 16-byte chunks per row
  constexpr int kRowStep = kMmaThreads / kChunks;  // rows covered per pass
  const int c = tid % kChunks;
  int r = tid / kChunks;
  const __nv_bfloat16* sp = src + r * ld + c * 8;
  uint32_t dp = dst + (r * (D + 8) + c * 8) * 2;
  const int64_t step = kRowStep * ld;
#pragma unroll 4
  for (int i = 0; i < kT / kRowStep; ++i) {
    const bool ok = r < n;
    const int bytes = ok ? 16 : 0;
#if defined(NPR_EMU)
    emu::ptx::cp_async(dp, ok ? sp : src, 16, bytes);
#else
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dp), "l"(ok ? sp : src),
                 "r"(bytes));
#endif
    sp += step;
    dp += kRowStep * (D + 8) * 2;
    r += kRowStep;
  }
}

template <int D>
struct Mma2Smem {
  static constexpr int kStride = D + 8;
  static constexpr int kTileElems = kT * kStride;
  // Q0 | Q1 | K0 | V0 | K1 | V1, all (64, kStride) bf16.
  static constexpr int kBytes = 6 * kTileElems * 2;
};

template <int D>
__global__ void __launch_bounds__(kMmaThreads, D == 64 ? 3 : 2) attn_fwd_mma2(FwdParams p) {
  using bf16_t = __nv_bfloat16;
  using S = Mma2Smem<D>;
  constexpr int kStride = S::kStride;
  constexpr int KD = D / 16;  // k-steps of Q K^T
  constexpr int ND = D / 8;   // n-tiles of the output
  NPR_DYNAMIC_SHARED(smem_raw);
  bf16_t* const qs = reinterpret_cast<bf16_t*>(smem_raw);  // Q0, then Q1 at + kTileElems

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g8 = lane >> 2, c4 = lane & 3;
  const PairItem it = pair_item_of(p);
  const int h0 = it.h0, qn = it.qn;
  const int64_t q_start = it.q_start;
  const PairInputs in = pair_inputs_of<D>(p, it);
  const bf16_t* const qg = in.q;
  const bf16_t* const kg = in.k;
  const bf16_t* const vg = in.v;
  const int64_t seq_n = in.seq_n;
  const AttnTilePair* const rp = in.pairs;
  const int npairs = in.npairs;
  const uint32_t sbase = static_cast<uint32_t>(__cvta_generic_to_shared(qs));

  const auto load_kv = [&](int j, int b) {
    const int64_t ks = static_cast<int64_t>(rp[j].other) * kT;
    const int64_t kn64 = seq_n - ks;
    const int kn = static_cast<int>(kn64 < kT ? kn64 : kT);
    const uint32_t kdst = sbase + (2 + 2 * b) * S::kTileElems * 2;
    load_tile_async_lean<D>(kdst, kg + ks * p.ldk, p.ldk, kn, tid);
    load_tile_async_lean<D>(kdst + S::kTileElems * 2, vg + ks * p.ldk, p.ldk, kn, tid);
  };

  load_tile_async_lean<D>(sbase, qg, p.ldq, qn, tid);
  load_tile_async_lean<D>(sbase + S::kTileElems * 2, qg + D, p.ldq, qn, tid);
  cp_async_commit();
  if (npairs > 0) load_kv(0, 0);
  cp_async_commit();

  float o[2][ND][4];  // per head: rows (g8, g8 + 8) x dims (8 n + 2 c4, + 1)
#pragma unroll
  for (int hh = 0; hh < 2; ++hh)
#pragma unroll
    for (int n = 0; n < ND; ++n) o[hh][n][0] = o[hh][n][1] = o[hh][n][2] = o[hh][n][3] = 0.0f;
  const float ninf = -__int_as_float(0x7f800000);
  float m[2][2] = {{ninf, ninf}, {ninf, ninf}};  // [head][row half] running max (raw scores)
  float l[2][2] = {{0.0f, 0.0f}, {0.0f, 0.0f}};  // this thread's part of the running sums
  const float sl2 = p.scale_log2;
  const int r0 = warp * 16 + g8;
  // 32-bit shared addresses (bytes) of this lane's ldmatrix rows.
  const uint32_t qa_base =
      sbase + ((warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * kStride + (lane >> 4) * 8) * 2;
  const uint32_t kb_off = (((lane & 7) + (lane >> 4) * 8) * kStride + ((lane >> 3) & 1) * 8) * 2;
  const uint32_t vb_off = (((lane & 7) + ((lane >> 3) & 1) * 8) * kStride + (lane >> 4) * 8) * 2;

  for (int j = 0; j < npairs; ++j) {
    const int b = j & 1;
    if (j + 1 < npairs) load_kv(j + 1, b ^ 1);
    cp_async_commit();
    cp_async_wait<1>();  // tile j (and Q, on the first pass) landed
    __syncthreads();

    const int32_t partial = rp[j].partial;
    uint64_t w0 = ~0ull, w1 = ~0ull;
    if (partial >= 0) {
      w0 = p.masks[partial + r0];
      w1 = p.masks[partial + r0 + 8];
    }
    // The key tile in two halves of 32 keys, each a step of the online softmax: half the score
    // registers (the two heads' output accumulators hold 128 of them at D 128).
#pragma unroll 1
    for (int half = 0; half < 2; ++half) {
      float s[2][4][4];
#pragma unroll
      for (int hh = 0; hh < 2; ++hh)
#pragma unroll
        for (int n = 0; n < 4; ++n) s[hh][n][0] = s[hh][n][1] = s[hh][n][2] = s[hh][n][3] = 0.0f;
      {
        const uint32_t kb =
            sbase + (2 + 2 * b) * S::kTileElems * 2 + kb_off + half * 32 * kStride * 2;
#pragma unroll
        for (int kk = 0; kk < KD; ++kk) {
          uint32_t qa0[4], qa1[4];
          ldsm_x4(qa0, qa_base + kk * 32);
          ldsm_x4(qa1, qa_base + S::kTileElems * 2 + kk * 32);
#pragma unroll
          for (int np = 0; np < 2; ++np) {
            uint32_t kf[4];
            ldsm_x4(kf, kb + (np * 16 * kStride + kk * 16) * 2);
            mma_bf16_16816(s[0][2 * np], qa0, kf);
            mma_bf16_16816(s[0][2 * np + 1], qa0, kf + 2);
            mma_bf16_16816(s[1][2 * np], qa1, kf);
            mma_bf16_16816(s[1][2 * np + 1], qa1, kf + 2);
          }
        }
      }
      if (partial >= 0) {
#pragma unroll
        for (int n = 0; n < 4; ++n)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int col = half * 32 + n * 8 + 2 * c4 + e;
            if (!((w0 >> col) & 1ull)) s[0][n][e] = s[1][n][e] = ninf;
            if (!((w1 >> col) & 1ull)) s[0][n][2 + e] = s[1][n][2 + e] = ninf;
          }
      }

      uint32_t pa[2][2][4];  // P (bf16) as A fragments: [head][k-step of 16 keys]
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        float mx0 = m[hh][0], mx1 = m[hh][1];
#pragma unroll
        for (int n = 0; n < 4; ++n) {
          mx0 = fmaxf(mx0, fmaxf(s[hh][n][0], s[hh][n][1]));
          mx1 = fmaxf(mx1, fmaxf(s[hh][n][2], s[hh][n][3]));
        }
#pragma unroll
        for (int xo = 1; xo <= 2; xo <<= 1) {
          mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, xo));
          mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, xo));
        }
        const float b0 = mx0 == ninf ? 0.0f : mx0 * sl2, b1 = mx1 == ninf ? 0.0f : mx1 * sl2;
        // The rescale is skipped (bit-exactly: the factor would be exp2(0) = 1) while no row
        // of the warp raised its max.
        const bool grow = mx0 != m[hh][0] || mx1 != m[hh][1];
        if (__any_sync(0xffffffffu, grow)) {
          const float a0 = fast_exp2(m[hh][0] * sl2 - b0), a1 = fast_exp2(m[hh][1] * sl2 - b1);
          l[hh][0] *= a0;
          l[hh][1] *= a1;
#pragma unroll
          for (int n = 0; n < ND; ++n) {
            o[hh][n][0] *= a0;
            o[hh][n][1] *= a0;
            o[hh][n][2] *= a1;
            o[hh][n][3] *= a1;
          }
        }
        m[hh][0] = mx0;
        m[hh][1] = mx1;
        float rs0 = 0.0f, rs1 = 0.0f;
#pragma unroll
        for (int n = 0; n < 4; ++n) {
          s[hh][n][0] = fast_exp2(fmaf(s[hh][n][0], sl2, -b0));
          s[hh][n][1] = fast_exp2(fmaf(s[hh][n][1], sl2, -b0));
          s[hh][n][2] = fast_exp2(fmaf(s[hh][n][2], sl2, -b1));
          s[hh][n][3] = fast_exp2(fmaf(s[hh][n][3], sl2, -b1));
          rs0 += s[hh][n][0] + s[hh][n][1];
          rs1 += s[hh][n][2] + s[hh][n][3];
        }
        l[hh][0] += rs0;
        l[hh][1] += rs1;
#pragma unroll
        for (int kk = 0; kk < 2; ++kk) {
          pa[hh][kk][0] = pack_bf16x2(s[hh][2 * kk][0], s[hh][2 * kk][1]);
          pa[hh][kk][1] = pack_bf16x2(s[hh][2 * kk][2], s[hh][2 * kk][3]);
          pa[hh][kk][2] = pack_bf16x2(s[hh][2 * kk + 1][0], s[hh][2 * kk + 1][1]);
          pa[hh][kk][3] = pack_bf16x2(s[hh][2 * kk + 1][2], s[hh][2 * kk + 1][3]);
        }
      }

      // O += P V for both heads: every V fragment feeds four mma.
      const uint32_t vb =
          sbase + (3 + 2 * b) * S::kTileElems * 2 + vb_off + half * 32 * kStride * 2;
#pragma unroll
      for (int kk = 0; kk < 2; ++kk)
#pragma unroll
        for (int dp = 0; dp < D / 16; ++dp) {
          uint32_t vf[4];
          ldsm_x4_t(vf, vb + (kk * 16 * kStride + dp * 16) * 2);
          mma_bf16_16816(o[0][2 * dp], pa[0][kk], vf);
          mma_bf16_16816(o[0][2 * dp + 1], pa[0][kk], vf + 2);
          mma_bf16_16816(o[1][2 * dp], pa[1][kk], vf);
          mma_bf16_16816(o[1][2 * dp + 1], pa[1][kk], vf + 2);
        }
    }
    __syncthreads();  // buffer b is refilled by the next iteration's prefetch
  }
  cp_async_wait<0>();

#pragma unroll
  for (int hh = 0; hh < 2; ++hh)
    store_head_rows<D>(p, o[hh], m[hh][0], m[hh][1], l[hh][0], l[hh][1], q_start, h0 + hh, r0, qn,
                       c4);
}

}  // namespace npr::attn_fwd
