// emu_attention.h in the emulator build: the plan arrays as the kernels' parameter structs, and
// each kernel through its launcher (the sm_90a ones, compiled here by emu_kernels_*.cpp) or,
// for the mma.sync forwards, its kernel template straight from parallel_attention_fwd*.cuh.
#include "tests/emu/emu_attention.h"

#include "kernels/parallel_attention_bwd.cuh"
#include "kernels/parallel_attention_bwd_mma.cuh"
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
  if (kernel == "wgmma1" || kernel == "wgmma2") {
    const npr::Status st =
        npr::attention_forward_wgmma(nullptr, p, pairs, kernel == "wgmma1" ? 1 : 2);
    return st.is_ok() ? std::string() : st.to_string();
  }
  return "unknown kernel " + kernel;
}

namespace {

struct BwdArgs {
  npr::attn_bwd::PlanView p;
  npr::attn_bwd::Dims d;
};
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

std::string fault_of(const npr::Status& st) {
  return st.is_ok() ? std::string() : st.to_string();
}

}  // namespace

std::string attention_backward_dkdv_wgmma(const PlanArrays& a, const AttnDims& d, uint16_t* dk,
                                          uint16_t* dv, float* dq_acc, const uint16_t* dout,
                                          const uint16_t* q, const uint16_t* k, const uint16_t* v,
                                          const float* stats) {
  const BwdArgs b = bwd_args(a, d);
  return fault_of(
      npr::attention_backward_dkdv_wgmma(nullptr, b.p, b.d, dk, dv, dq_acc, dout, q, k, v, stats));
}

std::string attention_dq_from_acc(uint16_t* dq, const float* acc, int64_t n, float scale) {
  namespace ab = npr::attn_bwd;
  return launch(ab::dq_from_acc_blocks(n), ab::kDqFromAccThreads, 0, [&] {
    ab::dq_from_acc_kernel(reinterpret_cast<__nv_bfloat16*>(dq), acc, n, scale);
  });
}

std::string attention_backward_dq_wgmma(const PlanArrays& a, const AttnDims& d, uint16_t* dq,
                                        const uint16_t* dout, const uint16_t* q, const uint16_t* k,
                                        const uint16_t* v, const float* stats) {
  const BwdArgs b = bwd_args(a, d);
  return fault_of(npr::attention_backward_dq_wgmma(nullptr, b.p, b.d, dq, dout, q, k, v, stats));
}

namespace {

template <int D>
std::string backward_mma(const BwdArgs& b, uint16_t* dq, uint16_t* dk, uint16_t* dv, float* dq_acc,
                         const uint16_t* dout, const uint16_t* q, const uint16_t* k,
                         const uint16_t* v, const float* stats) {
  namespace ab = npr::attn_bwd;
  using bf = __nv_bfloat16;
  const auto* bq = reinterpret_cast<const bf*>(q);
  const auto* bk = reinterpret_cast<const bf*>(k);
  const auto* bv = reinterpret_cast<const bf*>(v);
  const auto* bo = reinterpret_cast<const bf*>(dout);
  auto* gk = reinterpret_cast<bf*>(dk);
  auto* gv = reinterpret_cast<bf*>(dv);
  const auto kv_blocks = static_cast<unsigned>(b.p.tiles * b.d.kv_heads);
  std::string fault = launch(kv_blocks, ab::kTcThreads, ab::dkdv_tc_smem<D>(), [&] {
    if (dq_acc)
      ab::dkdv_tc_kernel<D, true>(b.p, b.d, gk, gv, dq_acc, bq, bk, bv, bo, stats);
    else
      ab::dkdv_tc_kernel<D, false>(b.p, b.d, gk, gv, nullptr, bq, bk, bv, bo, stats);
  });
  if (!fault.empty() || dq_acc) return fault;
  const auto q_blocks = static_cast<unsigned>(b.p.tiles * b.d.heads);
  return launch(q_blocks, ab::kTcThreads, ab::dq_tc_smem<D>(), [&] {
    ab::dq_tc_kernel<D>(b.p, b.d, reinterpret_cast<bf*>(dq), bq, bk, bv, bo, stats);
  });
}

}  // namespace

std::string attention_backward_mma(const PlanArrays& a, const AttnDims& d, uint16_t* dq,
                                   uint16_t* dk, uint16_t* dv, float* dq_acc, const uint16_t* dout,
                                   const uint16_t* q, const uint16_t* k, const uint16_t* v,
                                   const float* stats) {
  const BwdArgs b = bwd_args(a, d);
  if (d.head_dim == 64) return backward_mma<64>(b, dq, dk, dv, dq_acc, dout, q, k, v, stats);
  if (d.head_dim == 128) return backward_mma<128>(b, dq, dk, dv, dq_acc, dout, q, k, v, stats);
  return "head_dim 64 or 128 only";
}

}  // namespace emu
