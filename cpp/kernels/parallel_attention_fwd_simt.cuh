// Inside parallel_attention.cu only: the SIMT forward kernel (attn_fwd_simt: fp32, or bf16 at
// head dims the tensor-core kernels do not take; see parallel_attention_fwd.cuh).
#pragma once

#include "core/dynamic_shared.cuh"
#include "kernels/parallel_attention_fwd.cuh"

namespace npr::attn_fwd {

// ---------------------------------------------------------------------------------------------
// SIMT kernel (any element type, head dim <= DM).

constexpr int kSimtThreads = 256;  // 64 query rows x 4 threads
constexpr int kChunk = 32;         // keys per shared-memory chunk (two per key tile)

// Shared memory, floats: Q (64, D + 1) | K (32, D + 1) | V (32, DM) | P (64, 33).
inline int simt_smem_bytes(int D, int dm) {
  return 4 * (kT * (D + 1) + kChunk * (D + 1) + kChunk * dm + kT * (kChunk + 1));
}

template <typename T, int DM>
__global__ void __launch_bounds__(kSimtThreads) attn_fwd_simt(FwdParams p) {
  NPR_DYNAMIC_SHARED_AS(float, smf);
  const int D = p.head_dim, ld = D + 1;
  float* const qs = smf;               // (64, D + 1)
  float* const ks = qs + kT * ld;      // (32, D + 1)
  float* const vs = ks + kChunk * ld;  // (32, DM), columns >= D stay 0
  float* const ps = vs + kChunk * DM;  // (64, 33)
  constexpr int kPer = DM / 4;         // output dims per thread: d = part + 4 i
  const int tid = threadIdx.x, r = tid >> 2, part = tid & 3;
  const Item it = item_of(p);
  const T* const qg = static_cast<const T*>(p.q) + it.q_start * p.ldq + it.h * D;
  const T* const kg = static_cast<const T*>(p.k) + it.kvh * D;
  const T* const vg = static_cast<const T*>(p.v) + it.kvh * D;

  for (int idx = tid; idx < kT * D; idx += kSimtThreads) {
    const int row = idx / D, d = idx - row * D;
    qs[row * ld + d] = row < it.qn ? to_f32(qg[row * p.ldq + d]) : 0.0f;
  }
  for (int idx = tid; idx < kChunk * DM; idx += kSimtThreads) vs[idx] = 0.0f;

  const float ninf = -__int_as_float(0x7f800000);
  const float sl2 = p.scale_log2;
  float o[kPer];
#pragma unroll
  for (int i = 0; i < kPer; ++i) o[i] = 0.0f;
  float m = ninf, l = 0.0f;  // running max (log2 domain) and this thread's part of the sum

  for (int64_t j = p.row_ptr[it.g]; j < p.row_ptr[it.g + 1]; ++j) {
    const AttnTilePair pair = p.row_pairs[j];
    const int64_t k0 = it.seq_start + static_cast<int64_t>(pair.other) * kT;
    const int kn = static_cast<int>(it.seq_end - k0 < kT ? it.seq_end - k0 : kT);
    const uint64_t word = pair.partial >= 0 ? p.masks[pair.partial + r] : ~0ull;
    for (int c0 = 0; c0 < kn; c0 += kChunk) {
      const int cn = kn - c0 < kChunk ? kn - c0 : kChunk;
      __syncthreads();  // the previous chunk's readers are done (first time: Q, V zeros)
      for (int idx = tid; idx < kChunk * D; idx += kSimtThreads) {
        const int key = idx / D, d = idx - key * D;
        const bool in = key < cn;
        const int64_t off = (k0 + c0 + key) * p.ldk + d;
        ks[key * ld + d] = in ? to_f32(kg[off]) : 0.0f;
        vs[key * DM + d] = in ? to_f32(vg[off]) : 0.0f;
      }
      __syncthreads();
      float sc[kChunk / 4];  // keys part + 4 i of this chunk
#pragma unroll
      for (int i = 0; i < kChunk / 4; ++i) sc[i] = 0.0f;
      for (int d = 0; d < D; ++d) {
        const float qv = qs[r * ld + d];
#pragma unroll
        for (int i = 0; i < kChunk / 4; ++i) sc[i] = fmaf(qv, ks[(part + 4 * i) * ld + d], sc[i]);
      }
      float mx = m;
#pragma unroll
      for (int i = 0; i < kChunk / 4; ++i) {
        const int c = part + 4 * i;
        const bool vis = c < cn && ((word >> (c0 + c)) & 1ull);
        sc[i] = vis ? sc[i] * sl2 : ninf;
        mx = fmaxf(mx, sc[i]);
      }
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float base = mx == ninf ? 0.0f : mx;
      const float alpha = exp2f(m - base);
      m = mx;
      float sum = 0.0f;
#pragma unroll
      for (int i = 0; i < kChunk / 4; ++i) {
        const float pv = exp2f(sc[i] - base);
        ps[r * (kChunk + 1) + part + 4 * i] = pv;
        sum += pv;
      }
      l = l * alpha + sum;
#pragma unroll
      for (int i = 0; i < kPer; ++i) o[i] *= alpha;
      __syncthreads();
      for (int c = 0; c < cn; ++c) {
        const float pv = ps[r * (kChunk + 1) + c];
        const float* vrow = vs + c * DM + part;
#pragma unroll
        for (int i = 0; i < kPer; ++i) o[i] = fmaf(pv, vrow[4 * i], o[i]);
      }
    }
  }

  l += __shfl_xor_sync(0xffffffffu, l, 1);
  l += __shfl_xor_sync(0xffffffffu, l, 2);
  if (r < it.qn) {
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    T* const og = static_cast<T*>(p.out) + (it.q_start + r) * p.ldq + it.h * D;
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const int d = part + 4 * i;
      if (d < D) og[d] = from_f32<T>(o[i] * inv);
    }
    if (part == 0)
      p.lse[(it.q_start + r) * p.heads + it.h] = l > 0.0f ? (m + log2f(l)) * kLn2 : ninf;
  }
}

}  // namespace npr::attn_fwd
