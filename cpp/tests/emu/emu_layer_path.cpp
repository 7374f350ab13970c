// emu_step.h's layer path in the emulator build: the decoder's kernels, in the order and with the
// launch shapes of Qwen3CudaDecoder::launch_layer / launch (qwen3_cuda_decode.cu) on its default
// path for bf16 steps of at most 8 rows (fast kernels, tensor-core skinny layers with the norms
// fused, tensor-core attention, staged merge, no PDL).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/decode_attention_mma.cuh"
#include "kernels/decode_merge_staged.cuh"
#include "kernels/qk_norm_rope_row.cuh"
#include "kernels/rmsnorm_rows.cuh"
#include "kernels/skinny_linear_kernels.cuh"
#include "tests/emu/emu_step.h"

namespace emu {

namespace {

using bf16 = __nv_bfloat16;
namespace sk = npr::skinny_kernels;
namespace tc = npr::skinny_tc;

// The step's buffers (the decoder's activations), poisoned where a kernel writes before any reads.
struct Buffers {
  std::vector<float> x, rstd, part_m, part_l, part_acc;
  std::vector<uint16_t> qkv, q, attn, act, hn;
  std::vector<int32_t> header;
};

template <int M>
struct Layers {
  const StepModel& m;
  const StepPlan& plan;
  const StepInputs& in;
  unsigned fused_grid;
  Buffers& b;
  float* logits;

  unsigned fused(int64_t tiles) const {
    return static_cast<unsigned>(std::min<int64_t>(tiles, fused_grid));
  }

  // y (M, n) of type CT (+)= x (M, k) . W^T: skinny_linear_cuda's tensor-core launch.
  template <typename CT>
  std::string linear(CT* y, const uint16_t* x, const uint16_t* W, int64_t k, int64_t n,
                     bool acc) const {
    const int64_t tiles = npr::skinny::tiles(n, tc::kLinearTileCols);
    const auto grid = static_cast<unsigned>(tiles);
    if (tc::slices_for(tiles) == tc::kSlicesNarrow)
      return launch(grid, 32 * tc::kSlicesNarrow, 0, [&] {
        sk::tc_linear_kernel<M, CT, false, tc::kSlicesNarrow>(y, x, W, k, n, acc);
      });
    return launch(grid, 32 * tc::kSlicesWide, 0,
                  [&] { sk::tc_linear_kernel<M, CT, false, tc::kSlicesWide>(y, x, W, k, n, acc); });
  }

  // y (M, n) bf16 = rmsnorm(x) . W^T: skinny_rmsnorm_linear_cuda's tensor-core launch.
  std::string norm_linear(bf16* y, const float* nw, const uint16_t* W, int64_t n) const {
    const int64_t tiles = npr::skinny::tiles(n, tc::kLinearTileCols), H = m.hidden;
    const int smem = static_cast<int>(2 * M * H);
    if (tc::slices_for(tiles) == tc::kSlicesNarrow)
      return launch(fused(tiles), npr::skinny::kThreads, smem, [&] {
        sk::skinny_rmsnorm_linear_kernel<M, true, bf16, false, tc::kSlicesNarrow>(
            y, b.x.data(), nw, m.eps, W, H, n, false);
      });
    return launch(fused(tiles), npr::skinny::kThreads, smem, [&] {
      sk::skinny_rmsnorm_linear_kernel<M, true, bf16, false, tc::kSlicesWide>(
          y, b.x.data(), nw, m.eps, W, H, n, false);
    });
  }

  // act (M, inter) = swiglu(rmsnorm(x) . W^T): skinny_rmsnorm_swiglu_linear_cuda's launch.
  std::string norm_swiglu(const float* nw, const uint16_t* W) const {
    const int64_t tiles = npr::skinny::tiles(m.inter, tc::kSwigluTileCols), H = m.hidden;
    const int smem = static_cast<int>(2 * M * H);
    auto* act = reinterpret_cast<bf16*>(b.act.data());
    if (tc::slices_for(tiles) == tc::kSlicesNarrow)
      return launch(fused(tiles), npr::skinny::kThreads, smem, [&] {
        sk::skinny_rmsnorm_swiglu_kernel<M, true, false, tc::kSlicesNarrow>(act, b.x.data(), nw,
                                                                            m.eps, W, H, m.inter);
      });
    return launch(fused(tiles), npr::skinny::kThreads, smem, [&] {
      sk::skinny_rmsnorm_swiglu_kernel<M, true, false, tc::kSlicesWide>(act, b.x.data(), nw, m.eps,
                                                                        W, H, m.inter);
    });
  }

  std::string layer(const StepLayer& L) const {
    const int64_t D = m.head_dim, qd = int64_t{m.heads} * D, nqkv = qd + 2LL * m.kv_heads * D;
    auto* qkv = reinterpret_cast<bf16*>(b.qkv.data());
    auto* q = reinterpret_cast<bf16*>(b.q.data());
    auto* kp = reinterpret_cast<bf16*>(L.k_pages);
    auto* vp = reinterpret_cast<bf16*>(L.v_pages);
    auto* attn = reinterpret_cast<bf16*>(b.attn.data());
    std::string f = norm_linear(qkv, L.in_norm, L.wqkv, nqkv);
    if (!f.empty()) return "qkv: " + f;
    // qk_norm_rope_write_cuda
    const int64_t rows = int64_t{M} * (m.heads + 2 * m.kv_heads);
    f = launch(static_cast<unsigned>((rows + npr::qk_rope::kWarps - 1) / npr::qk_rope::kWarps),
               npr::qk_rope::kThreads, static_cast<int>(4 * npr::qk_rope::kWarps * D), [&] {
                 npr::qk_rope::write_kernel<bf16, false>(q, kp, vp, qkv, L.q_norm, L.k_norm, in.cos,
                                                         in.sin, in.slots, M, m.heads, m.kv_heads,
                                                         static_cast<int>(D), m.eps);
               });
    if (!f.empty()) return "q/k norm + rope + KV write: " + f;
    // decode_attention_cuda: the tensor-core attend kernel, then the staged merge.
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
    const Dim3 grid{static_cast<unsigned>(b.header[0]), static_cast<unsigned>(m.kv_heads), 1};
    f = launch(grid, npr::decode_mma::kThreads, npr::decode_mma::Smem<128>::kBytes, [&] {
      npr::decode_mma::attend_kernel<128, false>(
          b.header.data(), plan.items.data(), plan.q_order.data(), plan.indices.data(), q, kp, vp,
          b.part_m.data(), b.part_l.data(), b.part_acc.data(), m.heads, m.kv_heads, in.block_tokens,
          scale);
    });
    if (!f.empty()) return "attend: " + f;
    f = launch(Dim3{static_cast<unsigned>(M), static_cast<unsigned>(m.heads), 1}, 128, 0, [&] {
      npr::decode_merge::staged_kernel<bf16, 1, false>(
          plan.merge_ptr.data(), plan.merge_rows.data(), b.part_m.data(), b.part_l.data(),
          b.part_acc.data(), attn, nullptr, m.heads, static_cast<int>(D));
    });
    if (!f.empty()) return "merge: " + f;
    f = linear(b.x.data(), b.attn.data(), L.wo, qd, m.hidden, true);
    if (!f.empty()) return "o-proj: " + f;
    f = norm_swiglu(L.post_norm, L.wgu);
    if (!f.empty()) return "gate|up + swiglu: " + f;
    f = linear(b.x.data(), b.act.data(), L.wdown, m.inter, m.hidden, true);
    return f.empty() ? f : "down: " + f;
  }

  std::string step() const {
    for (int l = 0; l < m.layers; ++l) {
      const std::string f = layer(m.layer[l]);
      if (!f.empty()) return "layer " + std::to_string(l) + " " + f;
    }
    // The final norm of the last rows (every row: one token each) into bf16, then the head.
    namespace rr = npr::rmsnorm_rows;
    auto* hn = reinterpret_cast<bf16*>(b.hn.data());
    const float* x = b.x.data();
    const int64_t H = m.hidden;
    std::string f =
        H <= rr::kWarpRowMaxDim
            ? launch(static_cast<unsigned>((M + rr::kRowsPerBlockWarp - 1) / rr::kRowsPerBlockWarp),
                     rr::kThreads, 0,
                     [&] {
                       rr::rmsnorm_forward_warp_kernel<float, bf16>(hn, b.rstd.data(), x,
                                                                    m.final_norm, M, H, m.eps);
                     })
            : launch(static_cast<unsigned>(M), rr::kThreads, 0, [&] {
                rr::rmsnorm_forward_block_kernel<float, bf16>(hn, b.rstd.data(), x, m.final_norm, M,
                                                              H, m.eps);
              });
    if (!f.empty()) return "final norm: " + f;
    f = linear(logits, b.hn.data(), m.lm_head, H, m.vocab, false);
    return f.empty() ? f : "head: " + f;
  }
};

std::string run(const StepModel& m, const StepPlan& plan, const StepInputs& in, unsigned fused_grid,
                Buffers& b, float* logits) {
  const auto with = [&](auto rows) {
    return Layers<decltype(rows)::value>{m, plan, in, fused_grid, b, logits}.step();
  };
  switch (in.rows) {
    case 1: return with(std::integral_constant<int, 1>{});
    case 2: return with(std::integral_constant<int, 2>{});
    case 3: return with(std::integral_constant<int, 3>{});
    case 4: return with(std::integral_constant<int, 4>{});
    case 5: return with(std::integral_constant<int, 5>{});
    case 6: return with(std::integral_constant<int, 6>{});
    case 7: return with(std::integral_constant<int, 7>{});
    case 8: return with(std::integral_constant<int, 8>{});
    default: return "the layer path's skinny layers take 1..8 rows, not " + std::to_string(in.rows);
  }
}

}  // namespace

std::string decode_layer_path(const StepModel& m, const StepPlan& plan, const StepInputs& in,
                              unsigned fused_grid, float* logits) {
  if (m.head_dim != 128) return "the layer path is emulated at head dim 128 only";
  const int64_t rows = in.rows, D = m.head_dim, heads = m.heads;
  const int64_t nqkv = (heads + 2LL * m.kv_heads) * D;
  register_step(m, plan, in, logits, false);
  Buffers b;
  b.header = {static_cast<int32_t>(plan.items.size() / 6)};
  register_global(b.header.data(), 4);
  add(b.x, rows * m.hidden, std::nanf(""), false);
  add(b.rstd, rows, std::nanf(""), false);
  add(b.qkv, rows * nqkv, uint16_t{0xffff}, false);
  add(b.q, rows * heads * D, uint16_t{0xffff}, false);
  add(b.attn, rows * heads * D, uint16_t{0xffff}, false);
  add(b.act, rows * m.inter, uint16_t{0xffff}, false);
  add(b.hn, rows * m.hidden, uint16_t{0xffff}, false);
  add(b.part_m, plan.partials * heads, std::nanf(""), false);
  add(b.part_l, plan.partials * heads, std::nanf(""), false);
  add(b.part_acc, plan.partials * heads * D, std::nanf(""), false);
  // embedding_forward_cuda: the token's bf16 row as fp32 (exact).
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t h = 0; h < m.hidden; ++h) {
      const uint32_t bits = uint32_t{m.embed[int64_t{in.ids[r]} * m.hidden + h]} << 16;
      std::memcpy(&b.x[r * m.hidden + h], &bits, 4);
    }
  const std::string fault = run(m, plan, in, fused_grid, b, logits);
  clear_globals();
  return fault;
}

}  // namespace emu
