// emu_attention.h in the emulator build: the plan arrays as the kernels' parameter structs, and
// each kernel through its launcher (the sm_90a ones, compiled here by emu_kernels_*.cpp) or,
// for the mma.sync forwards, its kernel template straight from parallel_attention_fwd*.cuh. The
// mma.sync backward's are in emu_attention_backward.cpp.
#include "tests/emu/emu_attention.h"

#include "tests/emu/emu_attention_args.h"

#include "kernels/parallel_attention_fwd.cuh"
#include "kernels/parallel_attention_fwd_pair.cuh"
#include "kernels/parallel_attention_wgmma.h"

namespace emu {

namespace {

using npr::AttnTilePair;

npr::attn_fwd::FwdParams fwd_params(const PlanArrays& a, const AttnDims& d, uint16_t* out,
                                    float* lse, const uint16_t* q, const uint16_t* k,
                                    const uint16_t* v) {
  npr::attn_fwd::FwdParams p;
  p.seq_start = a.seq_start;
  p.seq_len = a.seq_len;
  p.seq_tile0 = a.seq_tile0;
  p.tile_seq = a.tile_seq;
  p.row_ptr = a.row_ptr;
  p.row_pairs = reinterpret_cast<const AttnTilePair*>(a.row_pairs);
  p.masks = a.masks;
  p.tiles = a.tiles;
  p.tokens = a.tokens;
  p.heads = d.heads;
  p.group = d.heads / d.kv_heads;
  p.head_dim = d.head_dim;
  p.ldq = static_cast<int64_t>(d.heads) * d.head_dim;
  p.ldk = static_cast<int64_t>(d.kv_heads) * d.head_dim;
  p.scale_log2 = d.scale * 1.4426950408889634f;
  p.out = out;
  p.lse = lse;
  p.q = q;
  p.k = k;
  p.v = v;
  return p;
}

template <typename Kernel>
std::string run(Kernel kernel, int64_t blocks, int threads, int smem,
                const npr::attn_fwd::FwdParams& p) {
  return launch(static_cast<unsigned>(blocks), static_cast<unsigned>(threads), smem,
                [&] { kernel(p); });
}

// A launcher's status, or else the fault its kernels left (asynchronous, as on a GPU: without
// this it would surface at the next launch, in another kernel's name).
std::string fault_of(const npr::Status& st) {
  const std::string pending = cuda::take_launch_fault();
  return st.is_ok() ? pending : st.to_string();
}

}  // namespace

std::string attention_forward(const std::string& kernel, const PlanArrays& plan, const AttnDims& d,
                              uint16_t* out, float* lse, const uint16_t* q, const uint16_t* k,
                              const uint16_t* v) {
  namespace af = npr::attn_fwd;
  const af::FwdParams p = fwd_params(plan, d, out, lse, q, k, v);
  const int64_t blocks = plan.tiles * d.heads, pairs = plan.tiles * (d.heads / 2);
  const bool d64 = d.head_dim == 64;
  if (d.head_dim != 64 && d.head_dim != 128) return "head_dim 64 or 128 only";
  if (kernel == "mma")
    return d64 ? run(af::attn_fwd_mma<64>, blocks, af::kMmaThreads, af::MmaSmem<64>::kBytes, p)
               : run(af::attn_fwd_mma<128>, blocks, af::kMmaThreads, af::MmaSmem<128>::kBytes, p);
  if (d.heads / d.kv_heads % 2 != 0) return kernel + ": needs an even GQA group";
  if (kernel == "mma2")
    return d64 ? run(af::attn_fwd_mma2<64>, pairs, af::kMmaThreads, af::Mma2Smem<64>::kBytes, p)
               : run(af::attn_fwd_mma2<128>, pairs, af::kMmaThreads, af::Mma2Smem<128>::kBytes, p);
  const bool one_digit = kernel.size() == 6 && kernel[5] >= '1' && kernel[5] <= '9';
  const bool two_digits = kernel == "wgmma10" || kernel == "wgmma11";
  if (kernel.rfind("wgmma", 0) == 0 && (one_digit || two_digits)) {
    const int variant = one_digit ? kernel[5] - '0' : 10 + (kernel[6] - '0');
    return fault_of(npr::attention_forward_wgmma(nullptr, p, pairs, variant));
  }
  return "unknown kernel " + kernel;
}

BwdArgs bwd_args(const PlanArrays& a, const AttnDims& d) {
  BwdArgs b;
  npr::attn_bwd::PlanView& p = b.p;
  p.seq_start = a.seq_start;
  p.seq_len = a.seq_len;
  p.seq_tile0 = a.seq_tile0;
  p.tile_seq = a.tile_seq;
  p.row_ptr = a.row_ptr;
  p.col_ptr = a.col_ptr;
  p.row_pairs = reinterpret_cast<const AttnTilePair*>(a.row_pairs);
  p.col_pairs = reinterpret_cast<const AttnTilePair*>(a.col_pairs);
  p.masks = a.masks;
  p.tiles = a.tiles;
  p.tokens = a.tokens;
  b.d.heads = d.heads;
  b.d.kv_heads = d.kv_heads;
  b.d.group = d.heads / d.kv_heads;
  b.d.dim = d.head_dim;
  b.d.scale = d.scale;
  b.d.sl2 = d.scale * npr::attn_bwd::kLog2e;
  return b;
}

std::string attention_backward_dkdv_wgmma(const PlanArrays& a, const AttnDims& d, uint16_t* dk,
                                          uint16_t* dv, float* dq_acc, const uint16_t* dout,
                                          const uint16_t* q, const uint16_t* k, const uint16_t* v,
                                          const float* stats, bool tma) {
  const BwdArgs b = bwd_args(a, d);
  return fault_of(npr::attention_backward_dkdv_wgmma(nullptr, b.p, b.d, dk, dv, dq_acc, dout, q, k,
                                                     v, stats, tma));
}

std::string attention_backward_dkdv_wgmma_wide(const PlanArrays& a, const AttnDims& d, uint16_t* dk,
                                               uint16_t* dv, float* dq_acc, const uint16_t* dout,
                                               const uint16_t* q, const uint16_t* k,
                                               const uint16_t* v, const float* stats) {
  const BwdArgs b = bwd_args(a, d);
  return fault_of(npr::attention_backward_dkdv_wgmma_wide(nullptr, b.p, b.d, dk, dv, dq_acc, dout,
                                                          q, k, v, stats));
}

std::string attention_dq_from_tile_acc(const PlanArrays& a, const AttnDims& d, uint16_t* dq,
                                       const float* acc) {
  const BwdArgs b = bwd_args(a, d);
  return fault_of(npr::attention_backward_dq_from_tile_acc(nullptr, b.p, b.d, dq, acc));
}

std::string attention_backward_dq_wgmma(const PlanArrays& a, const AttnDims& d, uint16_t* dq,
                                        const uint16_t* dout, const uint16_t* q, const uint16_t* k,
                                        const uint16_t* v, const float* stats) {
  const BwdArgs b = bwd_args(a, d);
  return fault_of(npr::attention_backward_dq_wgmma(nullptr, b.p, b.d, dq, dout, q, k, v, stats));
}

std::string attention_backward_dq_wgmma_ws(const PlanArrays& a, const AttnDims& d, uint16_t* dq,
                                           const uint16_t* dout, const uint16_t* q,
                                           const uint16_t* k, const uint16_t* v,
                                           const float* stats) {
  const BwdArgs b = bwd_args(a, d);
  return fault_of(npr::attention_backward_dq_wgmma_ws(nullptr, b.p, b.d, dq, dout, q, k, v, stats));
}

std::string attention_backward_dq_wgmma_wide(const PlanArrays& a, const AttnDims& d, uint16_t* dq,
                                             const uint16_t* dout, const uint16_t* q,
                                             const uint16_t* k, const uint16_t* v,
                                             const float* stats) {
  const BwdArgs b = bwd_args(a, d);
  return fault_of(
      npr::attention_backward_dq_wgmma_wide(nullptr, b.p, b.d, dq, dout, q, k, v, stats));
}

}  // namespace emu
