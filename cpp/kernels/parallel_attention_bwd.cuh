// Private to parallel_attention_backward.cu: the device view of an uploaded AttentionPlan, the
// tile arithmetic every backward kernel shares, cp.async with zero fill, and the SIMT kernels
// (fp32 at any head_dim <= 256, bf16 at head dims the tensor-core kernels do not take).
//
// The SIMT kernels have the decomposition of the tensor-core ones: dK/dV per (key tile, kv head)
// over the tile's column list and the query heads of its group, dQ per (query tile, head) over
// the row list; every sum in a fixed order, no atomics. A block of 256 threads keeps one 64-row
// tile resident in shared memory (K, V for dK/dV; Q, dO for dQ) as fp32 and streams the other
// side in chunks of kSimtChunk rows. Not here: anything fast (this path serves tests, fp32 runs
// and odd head dims).
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "core/cuda_dtype.cuh"
#include "core/dynamic_shared.cuh"
#include "kernels/parallel_attention.h"

namespace npr::attn_bwd {

constexpr int kTile = kAttnTile;  // 64 tokens per query / key tile
constexpr float kLog2e = 1.4426950408889634f;

// The plan's device arrays (DeviceAttentionPlan) as raw pointers.
struct PlanView {
  const int64_t* seq_start;  // (sequences)
  const int64_t* seq_len;    // (sequences)
  const int64_t* seq_tile0;  // (sequences)
  const int32_t* tile_seq;   // (tiles)
  const int64_t* row_ptr;    // (tiles + 1)
  const int64_t* col_ptr;    // (tiles + 1)
  const AttnTilePair* row_pairs;
  const AttnTilePair* col_pairs;
  const uint64_t* masks;  // (partial tiles, kTile)
  int64_t tiles, tokens;
};

struct Dims {
  int heads, kv_heads, group, dim;  // group = heads / kv_heads
  float scale;                      // softmax scale (P = exp(scale q.k - lse))
  float sl2;                        // scale * log2 e: scores go to the log2 domain
};

// A tile's sequence: first tile, first token, one past the last token.
struct SeqSpan {
  int64_t tile0, start, end;
};
__device__ __forceinline__ SeqSpan seq_of(const PlanView& p, int64_t g) {
  const int32_t s = p.tile_seq[g];
  const int64_t start = p.seq_start[s];
  return SeqSpan{p.seq_tile0[s], start, start + p.seq_len[s]};
}
// First token of local tile `local` of the sequence, and its live length (1..kTile).
__device__ __forceinline__ int64_t tile_start(const SeqSpan& s, int64_t local) {
  return s.start + local * kTile;
}
__device__ __forceinline__ int tile_len(const SeqSpan& s, int64_t start) {
  const int64_t n = s.end - start;
  return static_cast<int>(n < kTile ? n : kTile);
}

// A dQ stage (the query tile's row-list pair `pair`): the mask words of this thread's two query
// rows (0 for rows past nq, all ones for a FULL pair), and the key tile's live length.
__device__ __forceinline__ int dq_stage_masks(const PlanView& p, const SeqSpan& sq,
                                              AttnTilePair pair, const int (&rows)[2], int nq,
                                              uint64_t (&mw)[2]) {
#pragma unroll
  for (int hf = 0; hf < 2; ++hf)
    mw[hf] = rows[hf] >= nq     ? 0u
             : pair.partial < 0 ? ~uint64_t{0}
                                : p.masks[pair.partial + rows[hf]];
  return tile_len(sq, tile_start(sq, pair.other));
}

// 16-byte and 4-byte asynchronous copies; with pred false the destination is zero-filled and
// nothing is read (gmem must still be a valid address).
__device__ __forceinline__ void cp_async_16z(void* smem, const void* gmem, bool pred) {
  const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  const int bytes = pred ? 16 : 0;
#if defined(NPR_EMU)
  emu::ptx::cp_async(addr, gmem, 16, bytes);
#else
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(addr), "l"(gmem),
               "r"(bytes));
#endif
}
__device__ __forceinline__ void cp_async_4z(void* smem, const void* gmem, bool pred) {
  const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  const int bytes = pred ? 4 : 0;
#if defined(NPR_EMU)
  emu::ptx::cp_async(addr, gmem, 4, bytes);
#else
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(addr), "l"(gmem), "r"(bytes));
#endif
}

// The work of a dK / dV CTA (one per key tile and kv head, blockIdx.x = tile * kv_heads + kvh):
// key tile g of sequence sq, its first token and live rows, and its stages (the column list's
// query tiles times the group's query heads) from col_ptr[g] = c0.
struct KeyTile {
  int64_t g;
  int kvh;
  SeqSpan sq;
  int64_t kstart;
  int nk;
  int64_t c0, stages;
};
__device__ __forceinline__ KeyTile key_tile_of(const PlanView& p, const Dims& d) {
  KeyTile t;
  t.g = blockIdx.x / d.kv_heads;
  t.kvh = static_cast<int>(blockIdx.x % d.kv_heads);
  t.sq = seq_of(p, t.g);
  t.kstart = tile_start(t.sq, t.g - t.sq.tile0);
  t.nk = tile_len(t.sq, t.kstart);
  t.c0 = p.col_ptr[t.g];
  t.stages = (p.col_ptr[t.g + 1] - t.c0) * d.group;
  return t;
}

// A dK / dV stage's per-query rows into buffer buf of the (2, 64) shared arrays, by threads
// 0..127 (cp.async; the caller commits): lse2 and delta of head h for the query tile at qstart
// (zeros past nq), and the pair's 64 mask words when it is PARTIAL (partial >= 0).
__device__ __forceinline__ void load_stage_rows(float* lse_s, float* del_s, uint64_t* mask_s,
                                                int buf, const float* stats, const PlanView& p,
                                                const Dims& d, int h, int64_t qstart, int nq,
                                                int32_t partial, int tid) {
  const int r = tid % kTile;
  const bool ok = r < nq;
  const float* src = stats + (tid < kTile ? h : d.heads + h) * p.tokens + qstart + (ok ? r : 0);
  cp_async_4z((tid < kTile ? lse_s : del_s) + buf * kTile + r, src, ok);
  if (partial >= 0 && tid < kTile / 2)
    cp_async_16z(mask_s + buf * kTile + 2 * tid, p.masks + partial + 2 * tid, true);
}

// ---- SIMT kernels -------------------------------------------------------------------------

constexpr int kSimtThreads = 256;  // 4 groups of 64: one row of the resident tile per thread
constexpr int kSimtChunk = 8;      // rows of the streamed side per step

// Dynamic shared memory (bytes) of either SIMT kernel at head_dim D (the dK/dV one, the larger).
inline int64_t simt_smem_bytes(int D) {
  const int64_t s = D + 1;  // odd row stride: conflict-free column walks
  return 4 * (2 * kTile * s + 2 * kSimtChunk * s + 2 * kSimtChunk * kTile);
}

// dst (rows, D + 1) fp32 <- rows [0, n) of src (row stride ld elements); rows >= n zero.
template <typename T>
__device__ __forceinline__ void load_rows_f32(float* dst, const T* src, int64_t ld, int rows, int n,
                                              int D) {
  const int s = D + 1;
  for (int i = threadIdx.x; i < rows * D; i += kSimtThreads) {
    const int r = i / D, c = i - r * D;
    dst[r * s + c] = r < n ? to_f32(src[r * ld + c]) : 0.0f;
  }
}

// One block per (key tile, kv head): dK, dV (tokens, kv_heads, D) rows of the tile.
// stats: lse2 (heads, tokens) = lse * log2 e, then delta (heads, tokens) = rowsum(dO * O).
template <typename T, int kMaxD>
__global__ void __launch_bounds__(kSimtThreads, 1)
    dkdv_simt_kernel(PlanView p, Dims d, T* __restrict__ dk, T* __restrict__ dv,
                     const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                     const T* __restrict__ dout, const float* __restrict__ stats) {
  NPR_DYNAMIC_SHARED_AS(float, smem);
  const int D = d.dim, S = D + 1;
  float* ks = smem;                      // (kTile, D + 1) K of the key tile
  float* vs = ks + kTile * S;            // (kTile, D + 1) V
  float* qs = vs + kTile * S;            // (kSimtChunk, D + 1) Q chunk
  float* dos = qs + kSimtChunk * S;      // (kSimtChunk, D + 1) dO chunk
  float* ps = dos + kSimtChunk * S;      // (kSimtChunk, kTile) P
  float* dss = ps + kSimtChunk * kTile;  // (kSimtChunk, kTile) dS
  const int64_t g = blockIdx.x / d.kv_heads;
  const int kvh = static_cast<int>(blockIdx.x % d.kv_heads);
  const SeqSpan sq = seq_of(p, g);
  const int64_t kstart = tile_start(sq, g - sq.tile0);
  const int nk = tile_len(sq, kstart);
  const int64_t ldk = static_cast<int64_t>(d.kv_heads) * D, ldq = static_cast<int64_t>(d.heads) * D;
  const int64_t HT = static_cast<int64_t>(d.heads) * p.tokens;
  load_rows_f32(ks, k + kstart * ldk + kvh * D, ldk, kTile, nk, D);
  load_rows_f32(vs, v + kstart * ldk + kvh * D, ldk, kTile, nk, D);
  const int key = threadIdx.x % kTile, dg = threadIdx.x / kTile;
  float dka[kMaxD / 4], dva[kMaxD / 4];
#pragma unroll
  for (int i = 0; i < kMaxD / 4; ++i) dka[i] = dva[i] = 0.0f;
  for (int64_t pi = p.col_ptr[g]; pi < p.col_ptr[g + 1]; ++pi) {
    const AttnTilePair pair = p.col_pairs[pi];
    const int64_t qstart = tile_start(sq, pair.other);
    const int nq = tile_len(sq, qstart);
    const uint64_t* mask = pair.partial < 0 ? nullptr : p.masks + pair.partial;
    for (int hh = 0; hh < d.group; ++hh) {
      const int h = kvh * d.group + hh;
      const float* lse2 = stats + h * p.tokens + qstart;
      const float* delta = stats + HT + h * p.tokens + qstart;
      for (int q0 = 0; q0 < nq; q0 += kSimtChunk) {
        __syncthreads();  // the previous chunk's readers are done (and K, V are loaded)
        load_rows_f32(qs, q + (qstart + q0) * ldq + h * D, ldq, kSimtChunk, nq - q0, D);
        load_rows_f32(dos, dout + (qstart + q0) * ldq + h * D, ldq, kSimtChunk, nq - q0, D);
        __syncthreads();
        for (int e = threadIdx.x; e < kSimtChunk * kTile; e += kSimtThreads) {
          const int qi = e / kTile, kk = e % kTile, qr = q0 + qi;
          const bool ok = qr < nq && kk < nk && (!mask || ((mask[qr] >> kk) & 1u));
          float pv = 0.0f, dsv = 0.0f;
          if (ok) {
            float sv = 0.0f, dpv = 0.0f;
            for (int c = 0; c < D; ++c) {
              sv = fmaf(qs[qi * S + c], ks[kk * S + c], sv);
              dpv = fmaf(dos[qi * S + c], vs[kk * S + c], dpv);
            }
            pv = exp2f(fmaf(sv, d.sl2, -lse2[qr]));
            dsv = pv * (dpv - delta[qr]);
          }
          ps[e] = pv;
          dss[e] = dsv;
        }
        __syncthreads();
#pragma unroll 1
        for (int qi = 0; qi < kSimtChunk; ++qi) {
          const float pv = ps[qi * kTile + key], dsv = dss[qi * kTile + key];
#pragma unroll
          for (int i = 0; i < kMaxD / 4; ++i) {
            const int c = dg + 4 * i;
            if (c < D) {
              dva[i] = fmaf(pv, dos[qi * S + c], dva[i]);
              dka[i] = fmaf(dsv, qs[qi * S + c], dka[i]);
            }
          }
        }
      }
    }
  }
  if (key < nk) {
    T* ok = dk + (kstart + key) * ldk + kvh * D;
    T* ov = dv + (kstart + key) * ldk + kvh * D;
#pragma unroll
    for (int i = 0; i < kMaxD / 4; ++i) {
      const int c = dg + 4 * i;
      if (c < D) {
        ok[c] = from_f32<T>(dka[i] * d.scale);
        ov[c] = from_f32<T>(dva[i]);
      }
    }
  }
}

// One block per (query tile, head), longest row lists first: dQ (tokens, heads, D) rows.
template <typename T, int kMaxD>
__global__ void __launch_bounds__(kSimtThreads, 1)
    dq_simt_kernel(PlanView p, Dims d, T* __restrict__ dq, const T* __restrict__ q,
                   const T* __restrict__ k, const T* __restrict__ v, const T* __restrict__ dout,
                   const float* __restrict__ stats) {
  NPR_DYNAMIC_SHARED_AS(float, smem);
  const int D = d.dim, S = D + 1;
  float* qs = smem;                  // (kTile, D + 1) Q of the query tile
  float* dos = qs + kTile * S;       // (kTile, D + 1) dO
  float* ks = dos + kTile * S;       // (kSimtChunk, D + 1) K chunk
  float* vs = ks + kSimtChunk * S;   // (kSimtChunk, D + 1) V chunk
  float* dss = vs + kSimtChunk * S;  // (kSimtChunk, kTile) dS, key major
  const int64_t g = p.tiles - 1 - blockIdx.x / d.heads;
  const int h = static_cast<int>(blockIdx.x % d.heads), kvh = h / d.group;
  const SeqSpan sq = seq_of(p, g);
  const int64_t qstart = tile_start(sq, g - sq.tile0);
  const int nq = tile_len(sq, qstart);
  const int64_t ldk = static_cast<int64_t>(d.kv_heads) * D, ldq = static_cast<int64_t>(d.heads) * D;
  const int64_t HT = static_cast<int64_t>(d.heads) * p.tokens;
  load_rows_f32(qs, q + qstart * ldq + h * D, ldq, kTile, nq, D);
  load_rows_f32(dos, dout + qstart * ldq + h * D, ldq, kTile, nq, D);
  const int row = threadIdx.x % kTile, dg = threadIdx.x / kTile;
  const bool live = row < nq;
  const float lse2 = live ? stats[h * p.tokens + qstart + row] : 0.0f;
  const float delta = live ? stats[HT + h * p.tokens + qstart + row] : 0.0f;
  float dqa[kMaxD / 4];
#pragma unroll
  for (int i = 0; i < kMaxD / 4; ++i) dqa[i] = 0.0f;
  for (int64_t pi = p.row_ptr[g]; pi < p.row_ptr[g + 1]; ++pi) {
    const AttnTilePair pair = p.row_pairs[pi];
    const int64_t kstart = tile_start(sq, pair.other);
    const int nk = tile_len(sq, kstart);
    const uint64_t mw = !live ? 0u : pair.partial < 0 ? ~uint64_t{0} : p.masks[pair.partial + row];
    for (int k0 = 0; k0 < nk; k0 += kSimtChunk) {
      __syncthreads();  // the previous chunk's readers are done (and Q, dO are loaded)
      load_rows_f32(ks, k + (kstart + k0) * ldk + kvh * D, ldk, kSimtChunk, nk - k0, D);
      load_rows_f32(vs, v + (kstart + k0) * ldk + kvh * D, ldk, kSimtChunk, nk - k0, D);
      __syncthreads();
      // e % kTile == row: each thread scores its own query row.
      for (int e = threadIdx.x; e < kSimtChunk * kTile; e += kSimtThreads) {
        const int kj = e / kTile, kk = k0 + kj;
        const bool ok = kk < nk && ((mw >> kk) & 1u);
        float dsv = 0.0f;
        if (ok) {
          float sv = 0.0f, dpv = 0.0f;
          for (int c = 0; c < D; ++c) {
            sv = fmaf(qs[row * S + c], ks[kj * S + c], sv);
            dpv = fmaf(dos[row * S + c], vs[kj * S + c], dpv);
          }
          const float pv = exp2f(fmaf(sv, d.sl2, -lse2));
          dsv = pv * (dpv - delta);
        }
        dss[kj * kTile + row] = dsv;
      }
      __syncthreads();
#pragma unroll 1
      for (int kj = 0; kj < kSimtChunk; ++kj) {
        const float dsv = dss[kj * kTile + row];
#pragma unroll
        for (int i = 0; i < kMaxD / 4; ++i) {
          const int c = dg + 4 * i;
          if (c < D) dqa[i] = fmaf(dsv, ks[kj * S + c], dqa[i]);
        }
      }
    }
  }
  if (live) {
    T* o = dq + (qstart + row) * ldq + h * D;
#pragma unroll
    for (int i = 0; i < kMaxD / 4; ++i) {
      const int c = dg + 4 * i;
      if (c < D) o[c] = from_f32<T>(dqa[i] * d.scale);
    }
  }
}

}  // namespace npr::attn_bwd
