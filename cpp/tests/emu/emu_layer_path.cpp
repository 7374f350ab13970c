// emu_step.h's layer path in the emulator build: the launchers Qwen3CudaDecoder::launch_layer /
// launch (qwen3_cuda_decode.cu) call on its default path for bf16 steps of at most 8 rows (fast
// kernels, tensor-core skinny layers with the norms fused, the q/k norm + RoPE + KV write,
// tensor-core attention, staged merge), in its order, on a CudaContext of the emulated device;
// the plan uploaded by DeviceDecodePlan::upload.
#include <cmath>
#include <memory>
#include <numeric>
#include <vector>

#include "core/cuda_context.h"
#include "kernels/decode_attention_cuda.h"
#include "kernels/elementwise_cuda.h"
#include "kernels/embedding_cuda.h"
#include "kernels/qk_norm_rope_cuda.h"
#include "kernels/rmsnorm_cuda.h"
#include "kernels/skinny_linear_cuda.h"
#include "tests/emu/emu_step.h"
#include "tests/emu/emu_step_plan.h"

namespace emu {

namespace {

using npr::DevDType;
using npr::Status;

// The decoder's activations for `rows` one-token rows (device memory: poisoned until written).
struct Activations {
  npr::DeviceBuffer x, last, rstd, qkv, q, attn, act, hn, last_rows;
};

Status allocate(npr::CudaContext& ctx, const StepModel& m, int64_t rows, Activations* a) {
  const int64_t D = m.head_dim, qd = int64_t{m.heads} * D, nqkv = qd + 2LL * m.kv_heads * D;
  auto& al = ctx.alloc();
  NPR_TRY(a->x.grow(al, 4 * rows * m.hidden, "x"));
  NPR_TRY(a->last.grow(al, 4 * rows * m.hidden, "last rows"));
  NPR_TRY(a->rstd.grow(al, 4 * rows, "rstd"));
  NPR_TRY(a->qkv.grow(al, 2 * rows * nqkv, "qkv"));
  NPR_TRY(a->q.grow(al, 2 * rows * qd, "q"));
  NPR_TRY(a->attn.grow(al, 2 * rows * qd, "attn"));
  NPR_TRY(a->act.grow(al, 2 * rows * m.inter, "act"));
  NPR_TRY(a->hn.grow(al, 2 * rows * m.hidden, "hn"));
  NPR_TRY(a->last_rows.grow(al, 4 * rows, "last row ids"));
  std::vector<int32_t> ids(static_cast<size_t>(rows));
  std::iota(ids.begin(), ids.end(), 0);  // one token a row: every row is its sequence's last
  return ctx.upload(a->last_rows.get(), ids.data(), 4 * rows, "last row ids");
}

Status step(npr::CudaContext& ctx, const StepModel& m, const npr::DeviceDecodePlan& plan,
            const StepInputs& in, const npr::SkinnyLaunch& sl, Activations& a, float* logits) {
  const DevDType t = DevDType::kBF16, F32 = DevDType::kF32;
  const int64_t N = in.rows, H = m.hidden, I = m.inter, D = m.head_dim;
  const int64_t qd = int64_t{m.heads} * D, kd = int64_t{m.kv_heads} * D;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  auto* x = a.x.as<float>();
  NPR_TRY(npr::embedding_forward_cuda(ctx, t, x, m.embed, in.ids, N, H));
  for (const StepLayer* L = m.layer; L != m.layer + m.layers; ++L) {
    NPR_TRY(npr::skinny_rmsnorm_linear_cuda(ctx, t, a.qkv.get(), x, L->in_norm, m.eps, L->wqkv, N,
                                            H, qd + 2 * kd, false, sl));
    NPR_TRY(npr::qk_norm_rope_write_cuda(ctx, t, a.q.get(), L->k_pages, L->v_pages, a.qkv.get(),
                                         L->q_norm, L->k_norm, in.cos, in.sin, in.slots, N, m.heads,
                                         m.kv_heads, D, m.eps, sl.pdl));
    const npr::DevicePagedKv pk{L->k_pages, L->v_pages, in.block_tokens, m.kv_heads, D};
    NPR_TRY(npr::decode_attention_cuda(ctx, t, plan, a.attn.get(), nullptr, a.q.get(), m.heads, pk,
                                       scale, 0, npr::DecodeAttnKernel::kAuto,
                                       npr::DecodeMerge::kStaged, sl.pdl));
    NPR_TRY(npr::skinny_linear_cuda(ctx, F32, x, a.attn.get(), L->wo, N, qd, H, true, sl));
    NPR_TRY(npr::skinny_rmsnorm_swiglu_linear_cuda(ctx, a.act.get(), x, L->post_norm, m.eps, L->wgu,
                                                   N, H, I, sl));
    NPR_TRY(npr::skinny_linear_cuda(ctx, F32, x, a.act.get(), L->wdown, N, I, H, true, sl));
  }
  auto* last = a.last.as<float>();
  NPR_TRY(npr::gather_rows_cuda(ctx, last, x, a.last_rows.as<int32_t>(), N, H));
  NPR_TRY(npr::rmsnorm_forward_cuda(ctx, F32, t, a.hn.get(), a.rstd.as<float>(), last, m.final_norm,
                                    N, H, m.eps));
  NPR_TRY(
      npr::skinny_linear_cuda(ctx, F32, logits, a.hn.get(), m.lm_head, N, H, m.vocab, false, sl));
  return ctx.sync("layer path step");
}

}  // namespace

std::string decode_layer_path(const StepModel& m, const StepPlan& plan, const StepInputs& in,
                              bool pdl, float* logits) {
  std::unique_ptr<npr::CudaContext> ctx;
  Status st = npr::CudaContext::create(&ctx);
  npr::DeviceDecodePlan dplan;
  Activations a;
  if (st.is_ok()) st = dplan.upload(*ctx, work_of(plan), table_of(plan), m.heads, m.head_dim);
  if (st.is_ok()) st = allocate(*ctx, m, in.rows, &a);
  if (st.is_ok()) {
    register_step(m, plan, in, logits, false);
    st = step(*ctx, m, dplan, in, npr::SkinnyLaunch{pdl, true}, a, logits);
    clear_globals();
  }
  return st.is_ok() ? std::string() : st.to_string();
}

}  // namespace emu
