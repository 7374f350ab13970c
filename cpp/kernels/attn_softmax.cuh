// Inside .cu files only: the online-softmax step that the tensor-core attention kernels share
// (the fused forward, attn_fwd_mma; the paged decode, decode_mma). A warp holds raw scores of its
// m16 tile's rows g8 and g8 + 8 as N n8 fragments (mma accumulator layout: s[n][0..1] row g8,
// s[n][2..3] row g8 + 8); the step folds them into the running max (m0, m1), this thread's part
// of the running sums (l0, l1) and the output accumulators o (ND n8 fragments), and leaves the
// probabilities exp2(s * sl2 - max * sl2) in s. Scores are raw (sl2 = scale * log2 e > 0), so
// the max of the raw scores is the max of the scaled ones; masked scores are -inf. The step in
// two halves (probabilities, then the rescale) serves a kernel whose output accumulators are
// still being written by an asynchronous MMA while it computes the probabilities.
#pragma once

namespace npr {

__device__ __forceinline__ float fast_exp2(float x) {  // ex2.approx: exp2(-inf) = +0
#if defined(NPR_EMU)
  return emu::ptx::ex2_approx_ftz(x);
#else
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
#endif
}

// The first half of a step: the new running max (m0, m1) from the raw scores s, s turned into
// exp2(s * sl2 - max * sl2), their row sums over this thread's elements (rs0, rs1), and the
// factors (a0, a1) by which the old sums and output must be scaled. Apply them with
// online_softmax_rescale.
template <int N>
__device__ __forceinline__ void online_softmax_probs(float (&s)[N][4], float& m0, float& m1,
                                                     float sl2, float& a0, float& a1, float& rs0,
                                                     float& rs1) {
  const float ninf = -__int_as_float(0x7f800000);
  float mx0 = m0, mx1 = m1;
#pragma unroll
  for (int n = 0; n < N; ++n) {
    mx0 = fmaxf(mx0, fmaxf(s[n][0], s[n][1]));
    mx1 = fmaxf(mx1, fmaxf(s[n][2], s[n][3]));
  }
#pragma unroll
  for (int x = 1; x <= 2; x <<= 1) {
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, x));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, x));
  }
  // Nothing visible yet in a row: subtract 0 so exp2(-inf) stays 0 instead of NaN.
  const float b0 = mx0 == ninf ? 0.0f : mx0 * sl2, b1 = mx1 == ninf ? 0.0f : mx1 * sl2;
  a0 = fast_exp2(m0 * sl2 - b0);
  a1 = fast_exp2(m1 * sl2 - b1);
  m0 = mx0;
  m1 = mx1;
  rs0 = 0.0f;
  rs1 = 0.0f;
#pragma unroll
  for (int n = 0; n < N; ++n) {
    s[n][0] = fast_exp2(fmaf(s[n][0], sl2, -b0));
    s[n][1] = fast_exp2(fmaf(s[n][1], sl2, -b0));
    s[n][2] = fast_exp2(fmaf(s[n][2], sl2, -b1));
    s[n][3] = fast_exp2(fmaf(s[n][3], sl2, -b1));
    rs0 += s[n][0] + s[n][1];
    rs1 += s[n][2] + s[n][3];
  }
}

// The second half: the running sums and the output accumulators scaled by (a0, a1), the new
// row sums added. A warp none of whose rows raised its max this step (every factor exactly 1:
// exp2 of exactly 0) skips the multiplications, x * 1 being x: the same bits, and the longer a
// row list the more often so. Every lane of the warp calls it (a warp vote).
template <int ND>
__device__ __forceinline__ void online_softmax_rescale(float (&o)[ND][4], float& l0, float& l1,
                                                       float a0, float a1, float rs0, float rs1) {
  l0 = l0 * a0 + rs0;
  l1 = l1 * a1 + rs1;
  if (__all_sync(0xffffffffu, a0 == 1.0f && a1 == 1.0f)) return;
#pragma unroll
  for (int n = 0; n < ND; ++n) {
    o[n][0] *= a0;
    o[n][1] *= a0;
    o[n][2] *= a1;
    o[n][3] *= a1;
  }
}

template <int N, int ND>
__device__ __forceinline__ void online_softmax_step(float (&s)[N][4], float (&o)[ND][4], float& m0,
                                                    float& m1, float& l0, float& l1, float sl2) {
  float a0, a1, rs0, rs1;
  online_softmax_probs(s, m0, m1, sl2, a0, a1, rs0, rs1);
  online_softmax_rescale(o, l0, l1, a0, a1, rs0, rs1);
}

}  // namespace npr
