// GEMM driver: shape checks, the reference loop, and the fast path.
//
// Fast path, two regimes:
// - skinny (M <= kernels.skinny_max_m, the decode case): A is copied once into contiguous rows
//   with alpha applied, and B (the weights) is streamed exactly once, split by columns across
//   threads, with no packing: dot products when B is stored (N, K), broadcast-FMA rows when it
//   is stored (K, N).
// - packed (everything else): the BLIS loop nest jc / pc / ic / jr / ir with B packed into
//   (kc, nr) panels and A into (kc, mr) panels, the ISA's register micro-kernel at the core.
//   Threads take independent slabs of C (split along N, or along M when M is the larger
//   side) and pack their own panels, so no synchronisation is needed inside a call.
#include "kernels/gemm.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "kernels/gemm_internal.h"

namespace npr {

namespace gi = gemm_internal;

namespace {

const gi::IsaKernels& kernels_for(SimdLevel level) {
#if defined(NPR_HAVE_X86_KERNELS)
  if (level == SimdLevel::kAvx512) return gi::kAvx512Kernels;
  if (level == SimdLevel::kAvx2) return gi::kAvx2Kernels;
#endif
  (void)level;
  return gi::kPortableKernels;
}

// A growable 64-byte aligned scratch buffer, one per thread and role.
struct Scratch {
  float* data = nullptr;
  size_t capacity = 0;
  ~Scratch() { std::free(data); }
  float* get(size_t n) {
    if (n > capacity) {
      std::free(data);
      size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
      data = static_cast<float*>(std::aligned_alloc(64, bytes));
      capacity = data ? n : 0;
    }
    return data;
  }
};

thread_local Scratch t_pack_a;
thread_local Scratch t_pack_b;

inline float load_a(const GemmShape& s, const float* A, int64_t i, int64_t p) {
  return s.ta == Trans::kN ? A[i * s.lda + p] : A[p * s.lda + i];
}
inline float load_b(const GemmShape& s, const float* B, int64_t p, int64_t j) {
  return s.tb == Trans::kN ? B[p * s.ldb + j] : B[j * s.ldb + p];
}

// The packed loop nest over the slab C[i_begin:i_end, j_begin:j_end).
Status packed_slab(const gi::IsaKernels& kn, const GemmShape& s, const float* A, const float* B,
                   float* C, int64_t i_begin, int64_t i_end, int64_t j_begin, int64_t j_end) {
  const int mr = kn.mr, nr = kn.nr;
  const int64_t nc_max = std::min<int64_t>(kn.nc, ((j_end - j_begin + nr - 1) / nr) * nr);
  // K is cut into equal blocks of at most kn.kc (rounded up to 16 so the transposing packs run
  // whole blocks): K = 1024 with kc = 768 gives 2 x 512 rather than 768 + 256.
  const int64_t k_blocks = (s.k + kn.kc - 1) / kn.kc;
  const int64_t kc_max = std::min<int64_t>(s.k, ((s.k + k_blocks - 1) / k_blocks + 15) / 16 * 16);
  float* bbuf = t_pack_b.get(static_cast<size_t>(kc_max * nc_max));
  float* abuf = t_pack_a.get(static_cast<size_t>(kc_max * kn.mc));
  if (!bbuf || !abuf) return Status::oom("gemm: packing buffers could not be allocated");
  for (int64_t jc = j_begin; jc < j_end; jc += kn.nc) {
    const int64_t ncur = std::min<int64_t>(kn.nc, j_end - jc);
    for (int64_t pc = 0; pc < s.k; pc += kc_max) {
      const int64_t kcur = std::min<int64_t>(kc_max, s.k - pc);
      const float beta = pc == 0 ? s.beta : 1.0f;
      kn.pack_b(B, s.ldb, s.tb == Trans::kT, jc, ncur, pc, kcur, bbuf);
      for (int64_t ic = i_begin; ic < i_end; ic += kn.mc) {
        const int64_t mcur = std::min<int64_t>(kn.mc, i_end - ic);
        kn.pack_a(A, s.lda, s.ta == Trans::kT, s.alpha, ic, mcur, pc, kcur, abuf);
        for (int64_t jr = 0; jr < ncur; jr += nr) {
          const int n = static_cast<int>(std::min<int64_t>(nr, ncur - jr));
          const float* bp = bbuf + (jr / nr) * kcur * nr;
          for (int64_t ir = 0; ir < mcur; ir += mr) {
            const int m = static_cast<int>(std::min<int64_t>(mr, mcur - ir));
            kn.micro(kcur, abuf + (ir / mr) * kcur * mr, bp, C + (ic + ir) * s.ldc + jc + jr, s.ldc,
                     m, n, beta);
          }
        }
      }
    }
  }
  return Status::ok();
}

// Splits [0, total) into `parts` ranges whose boundaries are multiples of `unit`.
void split_range(int64_t total, int parts, int64_t unit, int part, int64_t* begin, int64_t* end) {
  const int64_t units = (total + unit - 1) / unit;
  const int64_t per = units / parts, extra = units % parts;
  const int64_t u0 = part * per + std::min<int64_t>(part, extra);
  const int64_t u1 = u0 + per + (part < extra ? 1 : 0);
  *begin = std::min(total, u0 * unit);
  *end = std::min(total, u1 * unit);
}

int threads_of(const CpuContext& ctx) {
  return ctx.pool ? ctx.pool->size() : 1;
}

template <typename F>
void for_each_part(const CpuContext& ctx, int parts, F&& fn) {
  if (parts <= 1 || !ctx.pool) {
    for (int p = 0; p < parts; ++p) fn(p);
    return;
  }
  ctx.pool->parallel_for(parts, [&](int64_t p, int) { fn(static_cast<int>(p)); });
}

Status gemm_skinny(const CpuContext& ctx, const gi::IsaKernels& kn, const GemmShape& s,
                   const float* A, const float* B, float* C) {
  // The kernels want A as rows (m, k) with alpha applied. A decode step's activations already
  // are (A untransposed, alpha 1) and a single row is used in place. Several rows are copied
  // kSkew floats further apart than k: rows of 1024 or 3072 floats sit a multiple of 4 KiB
  // apart, all in the same L1 sets, and 8 of them with the weight rows streaming past overflow
  // those sets' ways: the NT kernel then reloads A from L2 (measured: an 8-row decode GEMM
  // 1.5x the time of a 1-row one instead of ~1.2x).
  constexpr int64_t kSkew = 16;
  const bool nt = s.tb == Trans::kT;
  const bool in_place = s.ta == Trans::kN && s.alpha == 1.0f && (nt ? s.m == 1 : s.lda == s.k);
  const float* a_rows = A;
  const int64_t lda = in_place ? s.lda : (nt ? s.k + kSkew : s.k);
  if (!in_place) {
    float* packed = t_pack_a.get(static_cast<size_t>(s.m * lda));
    if (!packed) return Status::oom("gemm: could not allocate the packed rows of A");
    for (int64_t i = 0; i < s.m; ++i)
      for (int64_t p = 0; p < s.k; ++p) packed[i * lda + p] = s.alpha * load_a(s, A, i, p);
    a_rows = packed;
  }
  const int64_t cols_per_thread_min = 4 * kn.skinny_cols;
  const int parts = static_cast<int>(
      std::max<int64_t>(1, std::min<int64_t>(threads_of(ctx), s.n / cols_per_thread_min)));
  for_each_part(ctx, parts, [&](int p) {
    int64_t j0, j1;
    split_range(s.n, parts, kn.skinny_cols, p, &j0, &j1);
    if (j1 <= j0) return;
    if (nt)
      kn.dot_nt(a_rows, lda, s.m, s.k, B, s.ldb, j0, j1, C, s.ldc, s.beta);
    else
      kn.axpy_nn(a_rows, s.m, s.k, B, s.ldb, j0, j1, C, s.ldc, s.beta);
  });
  return Status::ok();
}

Status gemm_packed(const CpuContext& ctx, const gi::IsaKernels& kn, const GemmShape& s,
                   const float* A, const float* B, float* C) {
  const double flops = 2.0 * static_cast<double>(s.m) * s.n * s.k;
  int parts = flops < 2.0e6 ? 1 : threads_of(ctx);
  const bool split_n = s.n >= s.m;
  const int64_t unit = split_n ? kn.nr : kn.mr;
  const int64_t extent = split_n ? s.n : s.m;
  parts = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(parts, extent / unit)));
  std::vector<Status> statuses(static_cast<size_t>(parts));
  for_each_part(ctx, parts, [&](int p) {
    int64_t b, e;
    split_range(extent, parts, unit, p, &b, &e);
    if (e <= b) return;
    statuses[p] = split_n ? packed_slab(kn, s, A, B, C, 0, s.m, b, e)
                          : packed_slab(kn, s, A, B, C, b, e, 0, s.n);
  });
  for (auto& st : statuses) NPR_TRY(st);
  return Status::ok();
}

// C = beta * C for the cases where the product contributes nothing (k == 0 or alpha == 0).
void scale_c(const GemmShape& s, float* C) {
  for (int64_t i = 0; i < s.m; ++i) {
    float* row = C + i * s.ldc;
    for (int64_t j = 0; j < s.n; ++j) row[j] = s.beta == 0.0f ? 0.0f : s.beta * row[j];
  }
}

}  // namespace

Status gemm_f32(const CpuContext& ctx, const GemmShape& s, const float* A, const float* B,
                float* C) {
  NPR_TRY(gemm_check_shape(s));
  NPR_TRY(check_simd(ctx.simd));
  if (s.m == 0 || s.n == 0) return Status::ok();
  if (s.k == 0 || s.alpha == 0.0f) {
    scale_c(s, C);
    return Status::ok();
  }
  const gi::IsaKernels& kn = kernels_for(ctx.simd);
  if (s.m <= kn.skinny_max_m) return gemm_skinny(ctx, kn, s, A, B, C);
  return gemm_packed(ctx, kn, s, A, B, C);
}

Status gemm_f32_reference(const GemmShape& s, const float* A, const float* B, float* C) {
  NPR_TRY(gemm_check_shape(s));
  for (int64_t i = 0; i < s.m; ++i) {
    for (int64_t j = 0; j < s.n; ++j) {
      double acc = 0.0;
      for (int64_t p = 0; s.alpha != 0.0f && p < s.k; ++p)
        acc += static_cast<double>(load_a(s, A, i, p)) * static_cast<double>(load_b(s, B, p, j));
      float* out = C + i * s.ldc + j;
      const double prior = s.beta == 0.0f ? 0.0 : static_cast<double>(s.beta) * *out;
      *out = static_cast<float>(static_cast<double>(s.alpha) * acc + prior);
    }
  }
  return Status::ok();
}

}  // namespace npr
