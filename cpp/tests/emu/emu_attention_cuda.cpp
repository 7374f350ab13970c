// emu_attention.h's attention_cuda in the emulator build: the plan arrays back into an
// AttentionPlan, then the device entry points on a CudaContext, every tensor in device memory.
#include <memory>
#include <vector>

#include "core/cuda_context.h"
#include "kernels/parallel_attention_cuda.h"
#include "kernels/parallel_attention_wgmma.h"
#include "tests/emu/emu_attention.h"

namespace emu {

namespace {

template <typename T>
std::vector<T> vec(const T* p, int64_t n) {
  return std::vector<T>(p, p + n);
}

npr::AttentionPlan plan_of(const PlanArrays& a) {
  npr::AttentionPlan p;
  p.tokens = a.tokens;
  p.tiles = a.tiles;
  p.seq_start = vec(a.seq_start, a.sequences);
  p.seq_len = vec(a.seq_len, a.sequences);
  p.seq_tile0 = vec(a.seq_tile0, a.sequences);
  p.tile_seq = vec(a.tile_seq, a.tiles);
  p.row_ptr = vec(a.row_ptr, a.tiles + 1);
  p.col_ptr = vec(a.col_ptr, a.tiles + 1);
  const auto pairs = [](const int32_t* w, int64_t n) {
    std::vector<npr::AttnTilePair> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[i] = npr::AttnTilePair{w[2 * i], w[2 * i + 1]};
    return v;
  };
  p.row_pairs = pairs(a.row_pairs, a.row_ptr[a.tiles]);
  p.col_pairs = pairs(a.col_pairs, a.col_ptr[a.tiles]);
  p.masks = vec(a.masks, a.partial_tiles * npr::kAttnTile);
  return p;
}

// A device buffer of n elements of T, uploaded from `from` (else left as allocated: poisoned).
template <typename T>
npr::Status device(npr::CudaContext& ctx, npr::DeviceBuffer* b, int64_t n, const T* from,
                   const char* what) {
  NPR_TRY(b->grow(ctx.alloc(), n * static_cast<int64_t>(sizeof(T)), what));
  return from ? ctx.upload(b->get(), from, n * static_cast<int64_t>(sizeof(T)), what)
              : npr::Status::ok();
}

npr::Status run(npr::CudaContext& ctx, const PlanArrays& a, const AttnDims& d, const uint16_t* q,
                const uint16_t* k, const uint16_t* v, const uint16_t* dout, uint16_t* out,
                float* lse, uint16_t* dq, uint16_t* dk, uint16_t* dv, bool* fwd_wgmma) {
  const int64_t T = a.tokens, nq = T * d.heads * d.head_dim, nk = T * d.kv_heads * d.head_dim;
  const npr::AttentionShape sh{d.heads, d.kv_heads, d.head_dim, d.scale};
  const auto t = npr::DevDType::kBF16;
  npr::DeviceAttentionPlan plan;
  NPR_TRY(plan.upload(ctx, plan_of(a)));
  npr::DeviceBuffer bq, bk, bv, bo, bout, blse, bdq, bdk, bdv;
  NPR_TRY(device(ctx, &bq, nq, q, "q"));
  NPR_TRY(device(ctx, &bk, nk, k, "k"));
  NPR_TRY(device(ctx, &bv, nk, v, "v"));
  NPR_TRY(device(ctx, &bo, nq, dout, "dout"));
  NPR_TRY(device<uint16_t>(ctx, &bout, nq, nullptr, "out"));
  NPR_TRY(device<float>(ctx, &blse, T * d.heads, nullptr, "lse"));
  NPR_TRY(device<uint16_t>(ctx, &bdq, nq, nullptr, "dq"));
  NPR_TRY(device<uint16_t>(ctx, &bdk, nk, nullptr, "dk"));
  NPR_TRY(device<uint16_t>(ctx, &bdv, nk, nullptr, "dv"));
  *fwd_wgmma = npr::attention_forward_uses_wgmma(ctx, t, sh);
  // Each call's outputs registered as buffers it writes (read-only loads of them are faults).
  register_global(bout.get(), static_cast<size_t>(bout.bytes()), true);
  register_global(blse.get(), static_cast<size_t>(blse.bytes()), true);
  npr::Status st = npr::attention_forward_cuda(ctx, t, plan, bout.get(), blse.as<float>(), bq.get(),
                                               bk.get(), bv.get(), sh);
  clear_globals();
  NPR_TRY(st);
  for (const npr::DeviceBuffer* b : {&bdq, &bdk, &bdv})
    register_global(b->get(), static_cast<size_t>(b->bytes()), true);
  st = npr::attention_backward_cuda(ctx, t, plan, bdq.get(), bdk.get(), bdv.get(), bo.get(),
                                    bq.get(), bk.get(), bv.get(), bout.get(), blse.as<float>(), sh);
  clear_globals();
  NPR_TRY(st);
  NPR_TRY(ctx.download(out, bout.get(), 2 * nq, "out"));
  NPR_TRY(ctx.download(lse, blse.get(), 4 * T * d.heads, "lse"));
  NPR_TRY(ctx.download(dq, bdq.get(), 2 * nq, "dq"));
  NPR_TRY(ctx.download(dk, bdk.get(), 2 * nk, "dk"));
  return ctx.download(dv, bdv.get(), 2 * nk, "dv");
}

}  // namespace

std::string attention_cuda(const AttentionCall& call, const PlanArrays& plan, const AttnDims& d,
                           const uint16_t* q, const uint16_t* k, const uint16_t* v,
                           const uint16_t* dout, uint16_t* out, float* lse, uint16_t* dq,
                           uint16_t* dk, uint16_t* dv, bool* fwd_wgmma, bool* bwd_wgmma) {
  std::unique_ptr<npr::CudaContext> ctx;
  npr::Status st = npr::CudaContext::create(&ctx);
  if (st.is_ok()) {
    ctx->attention_wgmma = call.wgmma;
    ctx->deterministic = call.deterministic;
    ctx->attention_wgmma_keys = call.wgmma_keys;
    *bwd_wgmma = call.wgmma != 0 && npr::attention_wgmma_available();
    st = run(*ctx, plan, d, q, k, v, dout, out, lse, dq, dk, dv, fwd_wgmma);
  }
  return st.is_ok() ? std::string() : st.to_string();
}

}  // namespace emu
