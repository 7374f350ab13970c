// The emulator build of kernels/parallel_attention_backward.cu (attention_backward_cuda and
// every backward kernel), and emu_attention.h's drivers of its mma.sync kernels: they must live
// in this translation unit, the one that defines the atomic dQ's last pass (a plain kernel).
#include "kernels/parallel_attention_backward.cu"

#include "tests/emu/emu_attention.h"
#include "tests/emu/emu_attention_args.h"

namespace emu {

std::string attention_dq_from_acc(uint16_t* dq, const float* acc, int64_t n, float scale) {
  namespace ab = npr::attn_bwd;
  return launch(ab::dq_from_acc_blocks(n), ab::kDqFromAccThreads, 0, [&] {
    ab::dq_from_acc_kernel(reinterpret_cast<__nv_bfloat16*>(dq), acc, n, scale);
  });
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
