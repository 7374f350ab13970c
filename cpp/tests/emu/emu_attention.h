// The fused attention kernels under the emulator (emu_runtime.h), for test_emu_attention.cpp:
// plain host arrays in, the kernels' own launchers (or, for the mma.sync forwards that live in
// headers, their kernels) run on the CPU, "" or the fault out. Compiled twice: into the emulator
// build (emu_attention.cpp, where namespace npr is npr_emu) and into the test, which sees only
// these plain types.
#pragma once

#include <cstdint>
#include <string>

namespace emu {

// An AttentionPlan's arrays (kernels/parallel_attention.h), borrowed.
struct PlanArrays {
  const int64_t *seq_start, *seq_len, *seq_tile0;  // (sequences)
  const int32_t* tile_seq;                         // (tiles)
  const int64_t *row_ptr, *col_ptr;                // (tiles + 1)
  const int32_t *row_pairs, *col_pairs;            // (pairs, 2): AttnTilePair {other, partial}
  const uint64_t* masks;                           // (partial tiles, 64)
  int64_t tiles, tokens;
  int64_t sequences, partial_tiles;
};

struct AttnDims {
  int heads, kv_heads, head_dim;
  float scale;
};

// Forward kernels: "mma" (attn_fwd_mma), "mma2" (attn_fwd_mma2), "wgmma1" (the pipelined sm_90a
// kernel), "wgmma2" (the two-CTA one), "wgmma3" (the pipelined one loading two tiles ahead),
// "wgmma4" (that with Q in registers), "wgmma5" and "wgmma6" (wgmma1 and wgmma4 with the
// warpgroups ping-ponging), "wgmma7" and "wgmma8" (the warp-specialised TMA kernel, without and
// with the ping-pong), "wgmma9" (wgmma5 with tensor-map copies from thread 0). out
// (T, heads, D) bf16 bits, lse (T, heads); q (T, heads, D), k, v (T, kv_heads, D) bf16 bits.
std::string attention_forward(const std::string& kernel, const PlanArrays& plan, const AttnDims& d,
                              uint16_t* out, float* lse, const uint16_t* q, const uint16_t* k,
                              const uint16_t* v);

// The sm_90a dK / dV kernel: dk, dv (T, kv_heads, D) bf16 bits; dq_acc null, or the atomic dQ's
// fp32 sums (unscaled) in tile order (attention_tile_dq_acc_floats), for
// attention_dq_from_tile_acc; stats (2, heads, T): lse * log2 e, then delta.
// tma: Q and dO by tensor-map copies (dq_acc null only).
std::string attention_backward_dkdv_wgmma(const PlanArrays& plan, const AttnDims& d, uint16_t* dk,
                                          uint16_t* dv, float* dq_acc, const uint16_t* dout,
                                          const uint16_t* q, const uint16_t* k, const uint16_t* v,
                                          const float* stats, bool tma = false);

// The same on the two-warpgroup, 128-key sm_90a dK / dV kernel (head_dim 128 only), dq_acc in
// the same tile order.
std::string attention_backward_dkdv_wgmma_wide(const PlanArrays& plan, const AttnDims& d,
                                               uint16_t* dk, uint16_t* dv, float* dq_acc,
                                               const uint16_t* dout, const uint16_t* q,
                                               const uint16_t* k, const uint16_t* v,
                                               const float* stats);

// The mma.sync backward (parallel_attention_bwd_mma.cuh): the dK / dV kernel, then with dq_acc
// null the deterministic dQ kernel into dq (T, heads, D) bf16 bits (scaled); else the dK / dV
// kernel's atomic dQ into dq_acc as above and dq untouched.
std::string attention_backward_mma(const PlanArrays& plan, const AttnDims& d, uint16_t* dq,
                                   uint16_t* dk, uint16_t* dv, float* dq_acc, const uint16_t* dout,
                                   const uint16_t* q, const uint16_t* k, const uint16_t* v,
                                   const float* stats);

// The atomic dQ's last pass (dq_from_acc_kernel, on its launcher's grid): dq (n) bf16 bits =
// bf16(acc * scale), acc the dK / dV kernel's fp32 sums.
std::string attention_dq_from_acc(uint16_t* dq, const float* acc, int64_t n, float scale);

// The wgmma kernels' last pass (attention_backward_dq_from_tile_acc): dq (T, heads, D) bf16 bits
// = bf16(acc * scale), acc in tile order.
std::string attention_dq_from_tile_acc(const PlanArrays& plan, const AttnDims& d, uint16_t* dq,
                                       const float* acc);

// The sm_90a deterministic dQ kernel: dq (T, heads, D) bf16 bits, over the same stats.
std::string attention_backward_dq_wgmma(const PlanArrays& plan, const AttnDims& d, uint16_t* dq,
                                        const uint16_t* dout, const uint16_t* q, const uint16_t* k,
                                        const uint16_t* v, const float* stats);

// The same on the warp-specialised sm_90a dQ kernel (two heads a CTA; even GQA groups).
std::string attention_backward_dq_wgmma_ws(const PlanArrays& plan, const AttnDims& d, uint16_t* dq,
                                           const uint16_t* dout, const uint16_t* q,
                                           const uint16_t* k, const uint16_t* v,
                                           const float* stats);

// The same on the two-warpgroup, 128-query sm_90a dQ kernel (head_dim 128 only).
std::string attention_backward_dq_wgmma_wide(const PlanArrays& plan, const AttnDims& d,
                                             uint16_t* dq, const uint16_t* dout, const uint16_t* q,
                                             const uint16_t* k, const uint16_t* v,
                                             const float* stats);

// The attention's device entry points, attention_forward_cuda and then attention_backward_cuda
// (kernels/parallel_attention_cuda.h), as the model calls them: a CudaContext on the emulated
// device (emu_cuda_api.h) with its attention_wgmma and deterministic switches set as given, the
// plan uploaded by DeviceAttentionPlan::upload, the inputs uploaded into device memory (poisoned
// where nothing wrote), bf16; attention_wgmma_keys as given too. Outputs: out, dq (T, heads, D) and
// dk, dv (T, kv_heads, D) bf16 bits, lse (T, heads); *fwd_wgmma: whether the forward took the wgmma
// kernel (attention_forward_uses_wgmma), *bwd_wgmma: whether the backward could (the device and
// build can run it and the switch is on). "" or the first error or fault.
struct AttentionCall {
  int wgmma = 0;  // CudaContext::attention_wgmma
  bool deterministic = true;
  int wgmma_keys = 64;  // CudaContext::attention_wgmma_keys
};
std::string attention_cuda(const AttentionCall& call, const PlanArrays& plan, const AttnDims& d,
                           const uint16_t* q, const uint16_t* k, const uint16_t* v,
                           const uint16_t* dout, uint16_t* out, float* lse, uint16_t* dq,
                           uint16_t* dk, uint16_t* dv, bool* fwd_wgmma, bool* bwd_wgmma);

}  // namespace emu
