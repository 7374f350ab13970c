#include "model/qwen3_decode.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/embedding.h"
#include "kernels/linear.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"

namespace npr {

Status qwen3_decode_step(const CpuContext& ctx, Qwen3Model& model, KvPages& pages,
                         const Qwen3DecodeBatch& b, bool cascade, float* logits) {
  const Qwen3Config& c = model.config();
  const int64_t S = b.sequences, H = c.hidden, I = c.intermediate, D = c.head_dim;
  const int64_t qd = c.heads * D, kd = c.kv_heads * D;
  const int32_t B = pages.block_tokens();
  if (S <= 0) return Status::invalid("decode: no sequences");
  if (pages.kv_heads() != c.kv_heads || pages.head_dim() != D)
    return Status::invalid("decode: the KV pages were made for another model shape");
  NPR_TRY(check_page_table(b.table, pages.num_blocks(), B));
  const int64_t N = b.cu_new[S];
  // Per new token: its sequence's pages up to and including itself (a query page table).
  std::vector<int32_t> q_indptr{0}, q_indices, q_last, slot_block(N), slot_index(N), last_row(S);
  bool one_each = true;
  for (int64_t s = 0; s < S; ++s) {
    const int64_t n = b.cu_new[s + 1] - b.cu_new[s];
    const int64_t pages_s = b.table.indptr[s + 1] - b.table.indptr[s];
    const int64_t len = (pages_s - 1) * B + b.table.last_len[s];
    if (n < 1 || n > len)
      return Status::out_of_range("decode: sequence " + std::to_string(s) + " has " +
                                  std::to_string(n) + " new tokens but its pages hold " +
                                  std::to_string(len));
    one_each &= n == 1;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t t = b.cu_new[s] + i, a = len - n + i;  // absolute index in the sequence
      if (b.ids[t] < 0 || b.ids[t] >= c.vocab || b.positions[t] < 0)
        return Status::out_of_range("decode: new token " + std::to_string(t) +
                                    " has a bad id or position");
      slot_block[t] = b.table.indices[b.table.indptr[s] + a / B];
      slot_index[t] = static_cast<int32_t>(a % B);
      for (int64_t p = 0; p <= a / B; ++p)
        q_indices.push_back(b.table.indices[b.table.indptr[s] + p]);
      q_indptr.push_back(static_cast<int32_t>(q_indices.size()));
      q_last.push_back(static_cast<int32_t>(a % B + 1));
    }
    last_row[s] = b.cu_new[s + 1] - 1;
  }
  const PageTable qt{N, q_indptr.data(), q_indices.data(), q_last.data()};
  // Several new tokens of one sequence (a prompt's prefill) run as the cascade of chunks of
  // kPrefillChunk consecutive tokens: the pages wholly before a chunk once for all its rows.
  constexpr int64_t kPrefillChunk = 64;
  CascadePlan plan;
  if (cascade) plan = cascade_plan(qt, 1, one_each ? INT64_MAX : kPrefillChunk);

  const float* W = model.weights();
  const ModelOffsets& off = model.offsets();
  for (const LayerOffsets& o : off.layers)
    if (o.wk != o.wq + qd * H || o.wv != o.wk + kd * H || o.w_up != o.w_gate + I * H)
      return Status::internal("decode: the parameter table no longer stacks q/k/v and gate/up");
  RopeTable rope;
  rope_table_build(&rope, b.positions, N, D, c.rope_theta);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  std::vector<float> x(N * H), xn(N * H), q(N * qd), k(N * kd), v(N * kd), attn(N * qd);
  std::vector<float> qkv(N * (qd + 2 * kd)), gu(N * 2 * I), act(N * I);  // stacked projections
  std::vector<float> rs(N * std::max(c.heads, H));
  embedding_forward(ctx, x.data(), W + off.embed, b.ids, N, H);
  for (int64_t l = 0; l < c.layers; ++l) {
    const LayerOffsets& o = off.layers[l];
    rmsnorm_forward(ctx, xn.data(), rs.data(), x.data(), W + o.in_norm, N, H, c.rms_eps);
    // q, k, v as one GEMM against their stacked weights, gate and up as another (the parameter
    // table lays each group back to back, checked above): one call instead of three (two) saves
    // the pool wake-ups, tail imbalance and weight-stream ramp-up each call pays (~10 us at 8
    // rows).
    const int64_t w_qkv = qd + 2 * kd;
    linear_forward(ctx, qkv.data(), xn.data(), W + o.wq, N, H, w_qkv, 0.0f);
    for (int64_t t = 0; t < N; ++t) {
      const float* row = qkv.data() + t * w_qkv;
      std::memcpy(q.data() + t * qd, row, sizeof(float) * qd);
      std::memcpy(k.data() + t * kd, row + qd, sizeof(float) * kd);
      std::memcpy(v.data() + t * kd, row + qd + kd, sizeof(float) * kd);
    }
    rmsnorm_forward(ctx, q.data(), rs.data(), q.data(), W + o.q_norm, N * c.heads, D, c.rms_eps);
    rmsnorm_forward(ctx, k.data(), rs.data(), k.data(), W + o.k_norm, N * c.kv_heads, D, c.rms_eps);
    rope_apply(ctx, q.data(), rope, c.heads, D, false);
    rope_apply(ctx, k.data(), rope, c.kv_heads, D, false);
    for (int64_t t = 0; t < N; ++t) {  // the new tokens' K and V into their slots
      const int64_t at = (static_cast<int64_t>(slot_block[t]) * B + slot_index[t]) * kd;
      std::memcpy(pages.k(l) + at, k.data() + t * kd, sizeof(float) * kd);
      std::memcpy(pages.v(l) + at, v.data() + t * kd, sizeof(float) * kd);
    }
    const PagedKv pk{pages.k(l), pages.v(l), B, c.kv_heads, D};
    NPR_TRY(cascade
                ? decode_attention_cascade(ctx, attn.data(), nullptr, q.data(), c.heads, pk, qt,
                                           plan, scale)
                : decode_attention(ctx, attn.data(), nullptr, q.data(), c.heads, pk, qt, scale));
    linear_forward(ctx, x.data(), attn.data(), W + o.wo, N, qd, H, 1.0f);
    rmsnorm_forward(ctx, xn.data(), rs.data(), x.data(), W + o.post_norm, N, H, c.rms_eps);
    linear_forward(ctx, gu.data(), xn.data(), W + o.w_gate, N, H, 2 * I, 0.0f);
    swiglu_forward_stacked(ctx, act.data(), gu.data(), N, I);
    linear_forward(ctx, x.data(), act.data(), W + o.w_down, N, I, H, 1.0f);
  }
  // Head on each sequence's last new token.
  std::vector<float> last(S * H), hn(S * H);
  for (int64_t s = 0; s < S; ++s)
    std::memcpy(last.data() + s * H, x.data() + last_row[s] * H, sizeof(float) * H);
  rmsnorm_forward(ctx, hn.data(), rs.data(), last.data(), W + off.final_norm, S, H, c.rms_eps);
  linear_forward(ctx, logits, hn.data(), W + off.lm_head, S, H, c.vocab, 0.0f);
  return Status::ok();
}

}  // namespace npr
