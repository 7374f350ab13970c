// Qwen3CudaDecoder: the host builds one step's description (slots, per-token query page tables,
// rope tables, the attention work list), sends it in two uploads, and the layers run on the
// device over the weights of the Qwen3CudaModel in place, eagerly or as a replayed graph.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

#include "core/cuda_check.cuh"
#include "kernels/decode_chunk_cuda.h"
#include "kernels/elementwise_cuda.h"
#include "kernels/embedding_cuda.h"
#include "kernels/linear_cuda.h"
#include "kernels/qk_norm_rope_cuda.h"
#include "kernels/rmsnorm_cuda.h"
#include "kernels/rope.h"
#include "kernels/rope_cuda.h"
#include "kernels/skinny_linear_cuda.h"
#include "kernels/swiglu_cuda.h"
#include "model/qwen3_cuda_decode.h"

namespace npr {

namespace {

constexpr int64_t kMaxBucket = 256;
// Rows of the LM head the last layer's down projection prefetches into L2 (prefetch_next_weights):
// 8 MB at hidden 1024 in bf16, about what one layer's q|k|v is; the head streams the rest.
constexpr int64_t kHeadAheadRows = 4096;

int64_t bucket_of(int64_t s) {
  int64_t b = 1;
  while (b < s) b *= 2;
  return b;
}

int64_t align64(int64_t words) {
  return (words + 63) / 64 * 64;
}

}  // namespace

Qwen3CudaDecoder::Qwen3CudaDecoder(Qwen3CudaModel& model, KvPagesCuda& pages)
    : m_(model), pages_(pages), ctx_(model.context()) {}

Qwen3CudaDecoder::~Qwen3CudaDecoder() {
  drop_graphs();
}

void Qwen3CudaDecoder::drop_graphs() {
  for (auto& [key, g] : graphs_)
    if (g.exec) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(g.exec));
  graphs_.clear();
}

Status Qwen3CudaDecoder::reserve(int64_t N, int64_t S) {
  if (N <= cap_tokens_ && S <= cap_seqs_ && act_buf_.get()) return Status::ok();
  const Qwen3Config& c = m_.config();
  cap_tokens_ = std::max(N, cap_tokens_ + cap_tokens_ / 2);
  cap_seqs_ = std::max(S, cap_seqs_ + cap_seqs_ / 2);
  const int64_t T = cap_tokens_, Sc = cap_seqs_, H = c.hidden, I = c.intermediate, D = c.head_dim,
                qd = c.heads * D, kd = c.kv_heads * D;
  const int64_t ts = dev_dtype_size(m_.precision());
  // Step description: ids, slots (T), last rows (S), cos, sin (T, D/2): 4-byte words.
  const int64_t words = align64(T) * 2 + align64(Sc) + align64(T * (D / 2)) * 2;
  step_buf_.reset();
  act_buf_.reset();
  NPR_TRY(step_buf_.grow(ctx_.alloc(), 4 * words, "qwen3 decode (cuda): step description"));
  int32_t* w = step_buf_.as<int32_t>();
  ids_ = w;
  slots_ = ids_ + align64(T);
  last_rows_ = slots_ + align64(T);
  cos_ = reinterpret_cast<float*>(last_rows_ + align64(Sc));
  sin_ = cos_ + align64(T * (D / 2));
  // Activations.
  const int64_t rs = T * std::max<int64_t>({c.heads, c.kv_heads, 1});
  const int64_t pieces[] = {4 * T * H,   4 * std::max(rs, Sc),
                            4 * Sc * H,  4 * Sc * c.vocab,
                            ts * T * H,  ts * T * qd,
                            ts * T * kd, ts * T * kd,
                            ts * T * qd, ts * T * I,
                            ts * T * I,  ts * T * I,
                            ts * Sc * H, ts * T * (qd + 2 * kd),
                            ts * T * qd, 4 * T * c.heads};
  constexpr int kPieces = sizeof(pieces) / sizeof(pieces[0]);
  int64_t total = 0;
  for (int64_t p : pieces) total += (p + 255) / 256 * 256;
  NPR_TRY(act_buf_.grow(ctx_.alloc(), total, "qwen3 decode (cuda): activations"));
  char* base = static_cast<char*>(act_buf_.get());
  void* at[kPieces];
  for (int i = 0; i < kPieces; ++i) {
    at[i] = base;
    base += (pieces[i] + 255) / 256 * 256;
  }
  x_ = static_cast<float*>(at[0]);
  rstd_ = static_cast<float*>(at[1]);
  last_ = static_cast<float*>(at[2]);
  logits_ = static_cast<float*>(at[3]);
  xn_ = at[4];
  q_ = at[5];
  k_ = at[6];
  v_ = at[7];
  attn_ = at[8];
  gate_ = at[9];
  up_ = at[10];
  act_ = at[11];
  hn_ = at[12];
  qkv_ = at[13];
  chunk_out_ = at[14];
  chunk_lse_ = static_cast<float*>(at[15]);
  ++buffers_generation_;
  return Status::ok();
}

Status Qwen3CudaDecoder::timed(const char* op, Status s) {
  if (!s.is_ok() || !timing_) return s;
  return timer_.mark(op);
}

// One layer. Generic: one launch per op (what the training forward runs). fast_kernels: stacked
// projections, skinny linear layers for bf16 steps of at most kSkinnyMaxRows rows (with the
// input and post-attention RMSNorms fused into the q|k|v and gate|up ones when the staged rows
// fit), the fused q/k norm + RoPE + KV write, and the tensor-core attend kernel where it applies.
Status Qwen3CudaDecoder::launch_layer(int64_t l, int64_t N, int64_t launch_items) {
  const Qwen3Config& c = m_.config();
  const LayerOffsets& o = m_.offsets().layers[l];
  const DevDType t = m_.precision(), F32 = DevDType::kF32;
  const int64_t H = c.hidden, I = c.intermediate, D = c.head_dim, qd = c.heads * D,
                kd = c.kv_heads * D;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  const bool fast = fast_kernels, skinny = fast && t == DevDType::kBF16 && N <= kSkinnyMaxRows;
  auto W = [&](int64_t off) { return m_.compute_weight(off); };
  // The skinny launch of a layer whose kernel prefetches the next one's weights into L2
  // (prefetch_next_weights): (elems) weights at offset `next` of the parameter table.
  auto sl = [&](int64_t next, int64_t elems) {
    SkinnyLaunch r{pdl_, skinny_tensor_cores};
    if (prefetch_next_weights) r.ahead = L2Ahead{W(next), elems * dev_dtype_size(t)};
    return r;
  };
  // After the last down projection: the head's first rows (it streams the rest itself).
  const SkinnyLaunch down_launch =
      l + 1 == c.layers ? sl(m_.offsets().lm_head, std::min(c.vocab, kHeadAheadRows) * H)
                        : sl(m_.offsets().layers[l + 1].wq, (qd + 2 * kd) * H);
  // y (N, out) of type yt = x (N, in) . W^T, or += when accumulating.
  auto lin = [&](DevDType yt, void* y, const void* x, int64_t w, int64_t in, int64_t out, bool acc,
                 const SkinnyLaunch& launch) {
    return skinny ? skinny_linear_cuda(ctx_, yt, y, x, W(w), N, in, out, acc, launch)
                  : linear_forward_cuda(ctx_, t, yt, y, x, W(w), N, in, out, acc ? 1.0f : 0.0f);
  };
  const float* qn = m_.master_weight(o.q_norm);
  const float* kn = m_.master_weight(o.k_norm);
  // Skinny steps fold the two hidden-size norms into the projections that read them.
  const bool fused = skinny && skinny_rmsnorm_fits(N, H);
  const float* in_norm = m_.master_weight(o.in_norm);
  const float* post_norm = m_.master_weight(o.post_norm);
  if (!fused)
    NPR_TRY(timed("norm",
                  rmsnorm_forward_cuda(ctx_, F32, t, xn_, rstd_, x_, in_norm, N, H, c.rms_eps)));
  // The new tokens' q/k norm, RoPE and KV write inside the tensor-core attend kernel
  // (fused_qk_write), where it runs: the same test as the attention's kAuto below.
  const bool fresh = fused_qk_write && fast && one_token_each_ &&
                     decode_attention_mma_applies(t, D, plan_in_use_->max_rows());
  const DecodeNewTokens new_tokens{qkv_,   qn,          kn,          cos_,      sin_,
                                   slots_, pages_.k(l), pages_.v(l), c.rms_eps, attention_kv_ahead};
  if (fast) {
    NPR_TRY(timed(
        "qkv", fused ? skinny_rmsnorm_linear_cuda(ctx_, t, qkv_, x_, in_norm, c.rms_eps, W(o.wq), N,
                                                  H, qd + 2 * kd, false, sl(o.wo, qd * H))
                     : lin(t, qkv_, xn_, o.wq, H, qd + 2 * kd, false, sl(o.wo, qd * H))));
    if (!fresh)
      NPR_TRY(
          timed("qk_norm_rope_write",
                qk_norm_rope_write_cuda(ctx_, t, q_, pages_.k(l), pages_.v(l), qkv_, qn, kn, cos_,
                                        sin_, slots_, N, c.heads, c.kv_heads, D, c.rms_eps, pdl_)));
  } else {
    NPR_TRY(timed("qkv", lin(t, q_, xn_, o.wq, H, qd, false, {})));
    NPR_TRY(timed("qkv", lin(t, k_, xn_, o.wk, H, kd, false, {})));
    NPR_TRY(timed("qkv", lin(t, v_, xn_, o.wv, H, kd, false, {})));
    const char* op = "qk_norm_rope_write";
    NPR_TRY(
        timed(op, rmsnorm_forward_cuda(ctx_, t, t, q_, rstd_, q_, qn, N * c.heads, D, c.rms_eps)));
    NPR_TRY(timed(
        op, rmsnorm_forward_cuda(ctx_, t, t, k_, rstd_, k_, kn, N * c.kv_heads, D, c.rms_eps)));
    NPR_TRY(timed(op, rope_apply_cuda(ctx_, t, q_, cos_, sin_, N, c.heads, D, false)));
    NPR_TRY(timed(op, rope_apply_cuda(ctx_, t, k_, cos_, sin_, N, c.kv_heads, D, false)));
    NPR_TRY(timed(op, pages_.write(l, k_, v_, slots_, N)));
  }
  if (chunk_step_) {  // the causal attention among the step's new tokens, as a partial row each
    NPR_TRY(timed("attention", pages_.read(l, k_, v_, slots_, N)));
    NPR_TRY(timed("attention",
                  attention_forward_cuda(ctx_, t, chunk_plan_, chunk_out_, chunk_lse_, q_, k_, v_,
                                         AttentionShape{c.heads, c.kv_heads, D, scale})));
    NPR_TRY(timed("attention", decode_chunk_partials_cuda(ctx_, t, *plan_in_use_, chunk_out_,
                                                          chunk_lse_, c.heads, D)));
  }
  const DevicePagedKv pk{pages_.k(l), pages_.v(l), pages_.block_tokens(), c.kv_heads, D};
  NPR_TRY(timed("attention",
                decode_attention_cuda(ctx_, t, *plan_in_use_, attn_, nullptr, fresh ? nullptr : q_,
                                      c.heads, pk, scale, launch_items,
                                      fast ? DecodeAttnKernel::kAuto : DecodeAttnKernel::kSimt,
                                      attention_merge, pdl_, fresh ? &new_tokens : nullptr)));
  NPR_TRY(timed("o_proj", lin(F32, x_, attn_, o.wo, qd, H, true, sl(o.w_gate, 2 * I * H))));
  if (fused) {
    NPR_TRY(timed("gate_up_swiglu",
                  skinny_rmsnorm_swiglu_linear_cuda(ctx_, act_, x_, post_norm, c.rms_eps,
                                                    W(o.w_gate), N, H, I, sl(o.w_down, I * H))));
    return timed("down", lin(F32, x_, act_, o.w_down, I, H, true, down_launch));
  }
  NPR_TRY(timed("norm",
                rmsnorm_forward_cuda(ctx_, F32, t, xn_, rstd_, x_, post_norm, N, H, c.rms_eps)));
  if (skinny) {
    NPR_TRY(timed("gate_up_swiglu", skinny_swiglu_linear_cuda(ctx_, act_, xn_, W(o.w_gate), N, H, I,
                                                              sl(o.w_down, I * H))));
  } else {
    NPR_TRY(timed("gate_up_swiglu", lin(t, gate_, xn_, o.w_gate, H, I, false, {})));
    NPR_TRY(timed("gate_up_swiglu", lin(t, up_, xn_, o.w_up, H, I, false, {})));
    NPR_TRY(timed("gate_up_swiglu", swiglu_forward_cuda(ctx_, t, act_, gate_, up_, N * I)));
  }
  return timed("down", lin(F32, x_, act_, o.w_down, I, H, true, down_launch));
}

Status Qwen3CudaDecoder::launch(int64_t N, int64_t S, int64_t launch_items) {
  const Qwen3Config& c = m_.config();
  const ModelOffsets& off = m_.offsets();
  const DevDType t = m_.precision(), F32 = DevDType::kF32;
  const int64_t H = c.hidden, I = c.intermediate, qd = c.heads * c.head_dim,
                kd = c.kv_heads * c.head_dim;
  if (fast_kernels)
    for (const LayerOffsets& o : off.layers)
      if (o.wk != o.wq + qd * H || o.wv != o.wk + kd * H || o.w_up != o.w_gate + I * H)
        return Status::internal(
            "decode (cuda): the parameter table no longer stacks q/k/v and gate/up");
  if (timing_) NPR_TRY(timer_.begin(ctx_.stream()));
  NPR_TRY(timed("embedding",
                embedding_forward_cuda(ctx_, t, x_, m_.compute_weight(off.embed), ids_, N, H)));
  for (int64_t l = 0; l < c.layers; ++l) NPR_TRY(launch_layer(l, N, launch_items));
  NPR_TRY(timed("head", gather_rows_cuda(ctx_, last_, x_, last_rows_, S, H)));
  NPR_TRY(timed("head", rmsnorm_forward_cuda(ctx_, F32, t, hn_, rstd_, last_,
                                             m_.master_weight(off.final_norm), S, H, c.rms_eps)));
  const void* head = m_.compute_weight(off.lm_head);
  if (fast_kernels && t == DevDType::kBF16 && S <= kSkinnyMaxRows)
    return timed("head", skinny_linear_cuda(ctx_, F32, logits_, hn_, head, S, H, c.vocab, false,
                                            {pdl_, skinny_tensor_cores}));
  return timed("head", linear_forward_cuda(ctx_, t, F32, logits_, hn_, head, S, H, c.vocab, 0.0f));
}

Status Qwen3CudaDecoder::settle_stats() {
  NPR_TRY(step_kernel_.check());
  NPR_TRY(step_time_.settle());
  stats_.device_ms = step_time_.total_ms();
  stats_.device_timed_steps = step_time_.spans();
  return Status::ok();
}

Status Qwen3CudaDecoder::run_graph(int64_t bucket, int64_t launch_items) {
  Graph& g = graphs_[{bucket, launch_items}];
  if (g.plan_generation != graph_plan_.generation() ||
      g.buffers_generation != buffers_generation_) {
    if (g.exec) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(g.exec));
    g = Graph{nullptr, graph_plan_.generation(), buffers_generation_, false};
  }
  cudaStream_t st = static_cast<cudaStream_t>(ctx_.stream());
  if (!g.exec && !g.warm) {  // first step at these buffers: size everything eagerly
    g.warm = true;
    ++stats_.eager_steps;
    return launch(bucket, bucket, launch_items);
  }
  if (!g.exec) {
    cudaGraph_t graph = nullptr;
    NPR_CUDA_TRY(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal),
                 "qwen3 decode (cuda): begin graph capture");
    const Status s = launch(bucket, bucket, launch_items);
    const cudaError_t end = cudaStreamEndCapture(st, &graph);
    cudaGraphExec_t exec = nullptr;
    cudaError_t inst = cudaErrorUnknown;
    if (s.is_ok() && end == cudaSuccess) inst = cudaGraphInstantiate(&exec, graph, 0);
    if (graph) cudaGraphDestroy(graph);
    if (!s.is_ok() || end != cudaSuccess || inst != cudaSuccess) {
      (void)cudaGetLastError();
      stats_.graph_error = !s.is_ok()           ? s.to_string()
                           : end != cudaSuccess ? cudaGetErrorString(end)
                                                : cudaGetErrorString(inst);
      use_graphs = false;
      ++stats_.eager_steps;
      return launch(bucket, bucket, launch_items);
    }
    g.exec = exec;
    ++stats_.graph_captures;
  }
  ++stats_.graph_replays;
  NPR_CUDA_TRY(cudaGraphLaunch(static_cast<cudaGraphExec_t>(g.exec), st),
               "qwen3 decode (cuda): graph launch");
  return Status::ok();
}

Status Qwen3CudaDecoder::step(const Qwen3DecodeBatch& b, bool cascade, float* logits_host) {
  using Clock = std::chrono::steady_clock;
  const auto ms_since = [](Clock::time_point a) {
    return std::chrono::duration<double, std::milli>(Clock::now() - a).count();
  };
  const Clock::time_point entered = Clock::now();
  const Qwen3Config& c = m_.config();
  const int64_t S = b.sequences, D = c.head_dim;
  const int32_t B = pages_.block_tokens();
  if (S <= 0) return Status::invalid("decode (cuda): no sequences");
  if (pages_.kv_heads() != c.kv_heads || pages_.head_dim() != D || pages_.layers() != c.layers ||
      pages_.dtype() != m_.precision())
    return Status::invalid(
        "decode (cuda): the KV pages were made for another model shape or precision");
  NPR_TRY(check_page_table(b.table, pages_.num_blocks(), B));
  const int64_t N = b.cu_new[S];
  std::vector<int32_t> q_indptr{0}, q_indices, q_last, slots, last_row, ids, pos;
  bool one_each = true;
  for (int64_t s = 0; s < S; ++s) one_each &= b.cu_new[s + 1] - b.cu_new[s] == 1;
  // A step of chunks (some sequence brings several new tokens) with the fused chunk attention:
  // each row's table holds its sequence's pages from before the step only (none for a fresh
  // prompt), and the causal attention among the step's own tokens comes from the training
  // forward's fused kernel (decode_chunk_cuda.h). Otherwise each row's table runs to itself.
  const bool chunked = !one_each && fused_chunk_attention;
  for (int64_t s = 0; s < S; ++s) {
    const int64_t n = b.cu_new[s + 1] - b.cu_new[s];
    const int64_t pages_s = b.table.indptr[s + 1] - b.table.indptr[s];
    const int64_t len = (pages_s - 1) * B + b.table.last_len[s];
    if (n < 1 || n > len)
      return Status::out_of_range("decode (cuda): sequence " + std::to_string(s) + " has " +
                                  std::to_string(n) + " new tokens but its pages hold " +
                                  std::to_string(len));
    const int64_t old = len - n, old_pages = (old + B - 1) / B;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t t = b.cu_new[s] + i, a = len - n + i;
      if (b.ids[t] < 0 || b.ids[t] >= c.vocab || b.positions[t] < 0)
        return Status::out_of_range("decode (cuda): new token " + std::to_string(t) +
                                    " has a bad id or position");
      slots.push_back(b.table.indices[b.table.indptr[s] + a / B] * B + static_cast<int32_t>(a % B));
      const int64_t pages = chunked ? old_pages : a / B + 1;
      for (int64_t p = 0; p < pages; ++p)
        q_indices.push_back(b.table.indices[b.table.indptr[s] + p]);
      q_indptr.push_back(static_cast<int32_t>(q_indices.size()));
      // (A row with no pages has no items: its last_len is never read.)
      q_last.push_back(static_cast<int32_t>(!chunked  ? a % B + 1
                                            : old > 0 ? old - (pages - 1) * B
                                                      : 1));
    }
    last_row.push_back(b.cu_new[s + 1] - 1);
  }
  ids.assign(b.ids, b.ids + N);
  pos.assign(b.positions, b.positions + N);
  // One persistent kernel where it fits (its plan's rows per item are checked below).
  const bool kernel_fits = step_kernel && one_each && !profile && fast_kernels &&
                           skinny_tensor_cores && attention_merge == DecodeMerge::kStaged &&
                           StepKernel::fits(c, m_.precision(), S, nullptr);
  const bool graph = use_graphs && !profile && one_each && S <= kMaxBucket && !kernel_fits;
  const int64_t Sp = graph ? bucket_of(S) : S, Np = graph ? Sp : N;
  for (int64_t s = S; s < Sp; ++s) {  // padding rows: the pad block only
    q_indices.push_back(pages_.pad_block());
    q_indptr.push_back(static_cast<int32_t>(q_indices.size()));
    q_last.push_back(1);
    slots.push_back(pages_.pad_block() * B);
    last_row.push_back(static_cast<int32_t>(s));
    ids.push_back(0);
    pos.push_back(0);
  }
  const PageTable qt{Np, q_indptr.data(), q_indices.data(), q_last.data()};
  // Cascade: rows sharing leading pages read them once per item. In a step of chunks each new
  // token is a row of its own; groups of at most as many consecutive rows as one item holds
  // share the pages wholly before their first token (with the fused chunk attention every row
  // of a chunk has the same pages, those from before the step), each row reading only its last
  // page or the few tokens after the shared ones itself, instead of every row reading its whole
  // prefix (the flat plan). One-token steps group whole forks, as many branches as share pages.
  // A step of chunks on the fused chunk attention then gets one more partial row a query, the
  // causal attention among the step's own tokens (decode_chunk_cuda.h), planned here once for
  // every layer.
  CascadePlan cplan;
  const int64_t G = c.heads / c.kv_heads;
  one_token_each_ = one_each;
  if (cascade)
    cplan =
        cascade_plan(qt, 1, one_each ? INT64_MAX : std::max<int64_t>(1, work_options.max_rows / G));
  DecodeWork work = decode_work(qt, cascade ? &cplan : nullptr, B, G, work_options);
  chunk_step_ = chunked;
  if (chunked) {
    with_chunk_rows(&work);
    AttentionPlan chunk_plan;
    NPR_TRY(attention_plan(StructureView{N, S, b.cu_new, 0, nullptr, nullptr}, &chunk_plan));
    NPR_TRY(chunk_plan_.upload(ctx_, chunk_plan));
  }
  const bool one_kernel =
      kernel_fits && decode_attention_mma_applies(m_.precision(), D, work.max_rows);
  // A replayed graph's attention grid is fixed at capture; blocks past the step's items return
  // at once, but each costs a slot (3 CTAs an SM fit the tensor-core attend kernel). It was the
  // plan's whole capacity: after a 1k-token prefill ~9k items, ~30 us a layer of idle blocks
  // (the H200 ran graphs slower than eager steps). Now the step's item count rounded up to a
  // power of two (a graph per such class: a sequence growing to 1k tokens passes 5 of them),
  // never above the bucket's bound, which also sizes the plan so that it does not regrow.
  const int64_t bound = decode_item_bound(Sp, work_options);
  if (graph && work.n_items() > bound)
    return Status::internal("decode (cuda): " + std::to_string(work.n_items()) +
                            " attention items exceed the graph bound of " + std::to_string(bound));
  int64_t graph_items = 1;
  while (graph_items < work.n_items()) graph_items *= 2;
  graph_items = std::min(graph_items, bound);
  // Graph steps have a plan of their own: a plan's arrays sit at offsets fixed by its capacity
  // (a replayed graph keeps the pointers it captured) and each step uploads the int part up to
  // its indices, so a shared plan that a 1k-token prefill grew to ~9k items made every later
  // one-token step upload ~280 KB.
  plan_in_use_ = graph ? &graph_plan_ : &plan_;
  if (graph)  // capacity for any step of this bucket, so that most steps reuse the graph
    NPR_TRY(graph_plan_.reserve(ctx_, bound, bound, Sp, qt.indptr[Np], c.heads, D));
  NPR_TRY(plan_in_use_->upload(ctx_, work, qt, c.heads, D));
  NPR_TRY(reserve(Np, Sp));
  rope_table_build(&rope_, pos.data(), Np, D, c.rope_theta);
  // Only the rows in use go up: the buffers keep the capacity of the largest step so far (a
  // 1k-token prefill leaves ~0.5 MB of rope table capacity that a one-token step does not fill).
  const int64_t T = cap_tokens_, ints = 2 * align64(T) + Sp;
  staging_.assign(static_cast<size_t>(ints), 0);
  std::copy(ids.begin(), ids.end(), staging_.begin());
  std::copy(slots.begin(), slots.end(), staging_.begin() + align64(T));
  std::copy(last_row.begin(), last_row.end(), staging_.begin() + 2 * align64(T));
  NPR_TRY(ctx_.upload(ids_, staging_.data(), 4 * ints, "qwen3 decode (cuda): step description"));
  NPR_TRY(ctx_.upload(cos_, rope_.cos.data(), 4 * static_cast<int64_t>(rope_.cos.size()),
                      "qwen3 decode (cuda): rope table"));
  NPR_TRY(ctx_.upload(sin_, rope_.sin.data(), 4 * static_cast<int64_t>(rope_.sin.size()),
                      "qwen3 decode (cuda): rope table"));
  NPR_TRY(step_time_.begin(ctx_.stream()));
  stats_.host_prep_ms += ms_since(entered);
  // A replayed graph keeps the launches it captured: the choice is the bucket's.
  pdl_ = candidate_kernels || (candidate_one_row && fast_kernels && graph && Sp == 1);
  if (pdl_ && !one_kernel) ++stats_.candidate_steps;
  const Clock::time_point launching = Clock::now();
  if (one_kernel) {
    NPR_TRY(step_kernel_.check());  // an earlier step's barrier timed out: fail, don't fall back
    const int64_t before = step_kernel_.launches();
    const Status ran = run_step_kernel(S);
    if (!ran.is_ok() && step_kernel_.launches() != before) return ran;  // it ran: say so
    if (!ran.is_ok()) {  // it could not launch here (no cooperative launch, no room): layers
      stats_.kernel_error = ran.to_string();
      step_kernel = false;
      ++stats_.eager_steps;
      (void)cudaGetLastError();  // the failed launch's error is not the layer path's
      NPR_TRY(launch(Np, Sp, 0));
    }
  } else if (graph) {
    NPR_TRY(run_graph(Sp, graph_items));
  } else {
    ++stats_.eager_steps;
    timing_ = profile;
    const Status ran = launch(Np, Sp, 0);
    timing_ = false;
    NPR_TRY(ran);
    if (profile) {
      NPR_TRY(timer_.collect(&stats_.op_ms));
      ++stats_.profiled_steps;
    }
  }
  NPR_TRY(step_time_.end(ctx_.stream()));
  stats_.host_launch_ms += ms_since(launching);
  if (!logits_host) return Status::ok();
  NPR_TRY(ctx_.download(logits_host, logits_, 4 * S * c.vocab, "qwen3 decode (cuda): logits"));
  return one_kernel ? step_kernel_.check() : Status::ok();
}

}  // namespace npr
