// Internal to the attention kernels: the per-ISA kernel table that parallel_attention.cpp (the
// fused prefill/training attention) and decode_attention.cpp (the shared-prefix decode) drive.
//
// Each ISA variant (parallel_attention_avx512.cpp, _avx2.cpp, _portable.cpp) fills one
// AttnIsa from the templates in parallel_attention_simd.inc and decode_attention_simd.inc with
// its own vector type. Score tiles are (rows, kAttnTile) row-major with stride kAttnTile and hold
// log2-domain scores; the decode tiles keep theirs transposed, (keys, query columns).
#pragma once

#include <cstdint>

#include "core/cpu_info.h"

namespace npr::attn_internal {

constexpr int kTile = 64;  // == kAttnTile (parallel_attention.h), restated to keep headers out
// Scores live in the log2 domain (q pre-scaled by scale * log2 e); lse goes back by ln 2.
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

struct AttnIsa {
  const char* name;
  // C (m, n) = A (m, kk) . B (kk, n), row-major with leading dimensions; then, when row_scale,
  // C += row_scale[i] * C_old for row i (C_old must be finite), else when accumulate C += C_old.
  void (*nn)(int64_t m, int64_t n, int64_t kk, const float* a, int64_t lda, const float* b,
             int64_t ldb, float* c, int64_t ldc, const float* row_scale, bool accumulate);
  // The same with A stored transposed: A (kk, m) with row stride lda, C = A^T . B.
  void (*nn_t)(int64_t m, int64_t n, int64_t kk, const float* a, int64_t lda, const float* b,
               int64_t ldb, float* c, int64_t ldc, const float* row_scale, bool accumulate);
  // Forward online softmax of one tile: s (rows, kAttnTile) becomes p in place. Row r is query
  // r % nq of the tile; its visible keys are the bits of masks[r % nq] (masks null: keys
  // [0, nk)). Updates the running max m and sum l (rows) and writes alpha (rows), the factor
  // the old output row must be scaled by. Invisible entries become exactly 0.
  void (*softmax)(float* s, int64_t rows, int nq, int nk, const uint64_t* masks, float* m, float* l,
                  float* alpha);
  // Backward: s (rows, kAttnTile) becomes p = exp2(s - lse2[r]) (0 where invisible) and
  // dp (rows, kAttnTile) becomes ds = p * (dp - delta[r]).
  void (*grad_probs)(float* s, float* dp, int64_t rows, int nq, int nk, const uint64_t* masks,
                     const float* lse2, const float* delta);

  // Decode tiles (decode_attention_simd.inc). Query columns come in nv vectors of dec_lanes,
  // 1 <= nv <= dec_max_vecs; rp = nv * dec_lanes.
  int dec_lanes, dec_max_vecs;
  // st (n, rp) = k . qt: qt (D, rp) query columns, k (n, D) keys with rows ldk apart.
  void (*dec_scores)(int nv, const float* qt, const float* k, int64_t ldk, int n, int64_t D,
                     float* st);
  // Online softmax of st (n, rp) in place over its n keys, log2 domain; m, l, alpha (rp) as in
  // softmax above (alpha: the factor each column's old output must be scaled by).
  void (*dec_softmax)(int nv, float* st, int n, float* m, float* l, float* alpha);
  // o (R, D) = alpha[r] * o + sum_i p[i * rp + r] * v[i], R <= rp; v (n, D) values with rows
  // ldv apart.
  void (*dec_values)(float* o, int64_t R, int64_t D, const float* p, int64_t rp, const float* v,
                     int64_t ldv, int n, const float* alpha);
};

// The table for a SIMD level (portable where the build has no x86 kernels).
const AttnIsa& isa_for(SimdLevel level);

extern const AttnIsa kAttnPortable;
#if defined(NPR_HAVE_X86_KERNELS)
extern const AttnIsa kAttnAvx2;
extern const AttnIsa kAttnAvx512;
#endif

}  // namespace npr::attn_internal
