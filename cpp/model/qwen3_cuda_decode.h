// One incremental step of the Qwen3 model on a CUDA device over device KV pages: the twin of
// qwen3_decode.h (same Qwen3DecodeBatch, same contract: the KV cache covers the new tokens and
// the page table was read off it after the append). Each sequence brings a prefill chunk or one
// token; their K and V go into the pages, attention reads every earlier token through the page
// table (decode_attention_cuda.h: flat, or the cascade for one-token-each steps), and the
// logits (fp32) after each sequence's last new token come out, to the host or left on the
// device for the device sampler.
//
// CUDA graphs: a step of one token per sequence is padded to a batch-size bucket (1, 2, 4, ...,
// 256; padded rows read and write only the pool's pad block) and replayed from a graph captured
// for that bucket: a 0.6B step is ~30 launches per layer, so launch latency, not bandwidth,
// would otherwise decide batch-1 speed. Everything a step changes (ids, slots, rope tables,
// page tables, the attention work list and its item count) is in device buffers of fixed
// capacity uploaded before the replay; a bucket's graph is captured on its second step (the
// first sizes every buffer eagerly) and recaptured when a buffer had to grow. If capture fails,
// the step runs eagerly and stats().graph_error says why. Prefill chunks always run eagerly.
//
// fast_kernels picks the decode-specialised kernels: the q|k|v and gate|up projections as one
// launch each over the stacked weights (skinny_linear_cuda.h for bf16 steps of at most 8 rows,
// the GEMM otherwise), the fused q/k norm + RoPE + KV write (qk_norm_rope_cuda.h) and the
// tensor-core attend kernel where it applies: 9 launches a layer instead of 17 (the default;
// 1.8x the generic ops' batch-1 speed on an H200). Skinny steps also fold the input and
// post-attention RMSNorms into the q|k|v and gate|up launches (skinny_rmsnorm_*, same bits):
// 7 launches a layer, and the profile has no "norm" op on that path. Off runs the generic ops
// one by one, as the training forward does. `profile` times every op of eager steps (graphs
// are off while it is on) into stats().op_ms.
// step_kernel runs qualifying one-token steps as a single persistent kernel instead (no graph
// needed: one launch a step).
// Not here: the fused parallel-attention prefill, speculative decoding, multi-GPU.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/cuda_op_timer.h"
#include "core/cuda_span_timer.h"
#include "core/status.h"
#include "kernels/decode_attention_cuda.h"
#include "kernels/parallel_attention_cuda.h"
#include "kernels/rope.h"
#include "kvcache/kv_pages_cuda.h"
#include "model/qwen3_cuda_model.h"
#include "model/qwen3_cuda_step_kernel.h"
#include "model/qwen3_decode.h"

namespace npr {

class Qwen3CudaDecoder {
 public:
  // pages must have the model's kv_heads, head_dim, layers and precision.
  Qwen3CudaDecoder(Qwen3CudaModel& model, KvPagesCuda& pages);
  ~Qwen3CudaDecoder();
  Qwen3CudaDecoder(const Qwen3CudaDecoder&) = delete;
  Qwen3CudaDecoder& operator=(const Qwen3CudaDecoder&) = delete;

  // logits_host (sequences, vocab) fp32, or null to leave them on the device only.
  Status step(const Qwen3DecodeBatch& b, bool cascade, float* logits_host);
  // (sequences, vocab) fp32 of the last step, on the device.
  const float* device_logits() const { return logits_; }

  bool use_graphs = true;
  bool fast_kernels = true;
  // The layer's chain of kernels (q|k|v, q/k norm + RoPE + KV write, tensor-core attend, merge,
  // o-proj, gate|up, down) as programmatic dependent launches, each launched while the one
  // before runs, the linear layers prefetching their weights into L2 meanwhile (pdl.cuh). The
  // same bits either way. candidate_kernels: every step so; candidate_one_row: the graph steps of
  // one sequence on the fast kernels so (the default; the bits are the same, so a step stays
  // batch invariant).
  // Measured as the decode bench's _candidate trial, with the staged merge: faster at batch 1,
  // slower at 8 branches, on every run: tokens/s 830.9 vs 795.5 and device ms 1.088 / 1.478 vs
  // 1.134 / 1.311 (H200, 2026-11-27); 778 vs 716.2, 1.173 / 1.564 vs 1.183 / 1.373 (H100,
  // 2026-11-27); 772.3 vs 734, 1.094 / 1.484 vs 1.137 / 1.317 (H200, 2026-11-27). With the serial
  // merge (H200, 2026-11-26) it was level at batch 1 (1.095 vs 1.047 ms) and slower at 8.
  bool candidate_kernels = false;
  bool candidate_one_row = true;
  // Each skinny linear layer of a step prefetches the next one's weights into L2 as it starts
  // (q|k|v -> o-proj -> gate|up -> down -> the next layer's q|k|v, the last down the head's first
  // rows; SkinnyLaunch::ahead), so DRAM streams them across the attention and the gaps between
  // kernels, and each layer reads its weights from L2. The same bits either way. Off by default:
  // on an H200 (2026-11-27, decode bench trials _prefetch_next*) it was no faster: device ms a
  // step 1.167 vs 1.134 at batch 1 and 1.340 vs 1.311 at 8 branches; with the programmatic
  // launches 1.142 / 1.485 (those alone 1.088 / 1.478); on CUDA cores 1.049 / 1.559 (alone
  // 1.014 / 1.567). So the step's gaps are not DRAM waiting for a kernel's first weights.
  bool prefetch_next_weights = false;
  // How the attention merges each query's split-KV partial states (decode_attention_cuda.h):
  // the same bits either way; kStaged is the faster.
  DecodeMerge attention_merge = DecodeMerge::kStaged;
  // One-token steps on the tensor-core attend kernel (fast kernels, bf16) normalise and rotate
  // q and write the new K and V inside that kernel (decode_attend_new_tokens.cuh) instead of in
  // the q/k norm + RoPE + KV write kernel before it: one launch a layer fewer, the same bits.
  // false: the separate kernel (the A/B the decode bench runs).
  bool fused_qk_write = true;
  // Where the attend kernel of fused_qk_write runs as a programmatic launch (candidate kernels),
  // each item first prefetches its keys and values into L2, before waiting for the q|k|v
  // projection (decode_attend_new_tokens.cuh's prefetch_item_kv): DRAM fetches the old keys
  // while the projection streams its weights. The same bits either way. Off by default: not yet
  // timed on a GPU (the decode bench's _attn_prefetch trials).
  bool attention_kv_ahead = false;
  // Steps of chunks (some sequence brings several new tokens: a prompt's prefill, a fork's
  // children taking their forced tokens) attend among their own new tokens with the training
  // forward's fused parallel attention (causal within each sequence's chunk, over contiguous
  // q, k, v; decode_chunk_cuda.h), and through the pages only to the keys from before the step,
  // the two states merged by log-sum-exp. false: every row's paged table runs to itself (the
  // chunk's causal part read page by page, row by row). Other bits either way (another order of
  // the sums, and the chunk's state rounded to the model's type).
  bool fused_chunk_attention = true;
  // The skinny linear layers on tensor cores (skinny_linear_mma.cuh: 8 batch rows cost what 1
  // does); false: on CUDA cores (skinny_linear_core.cuh). Other bits either way (each batch
  // invariant). On by default: on an H200 (2026-11-26) the 0.6B step took 1.118 vs 1.048 ms of
  // device time at batch 1 but 1.322 vs 1.573 at 8 branches (8 vs 1: 1.19x instead of 1.50x),
  // and the engine bench ran at parity (1217.5 vs 1222.8 tok/s parallel, 1.731 vs 1.692x).
  bool skinny_tensor_cores = true;
  // Steps of at most 8 one-token sequences as one persistent kernel (qwen3_cuda_step_kernel.h)
  // where it fits (bf16, head dim 128, with fast_kernels, skinny_tensor_cores and the staged
  // merge, the layer path it reproduces bit for bit); other steps take the layer path. Off by
  // default until a GPU has run it. step_kernel_prefetch: its L2 prefetch of the next linear
  // phase's weights (off only for the A/B the benchmark runs). step_kernel_stream: on sm_90
  // devices, its weights streamed through a ring of shared memory by bulk copies instead
  // (qwen3_step_stream.cuh; same bits; off for the A/B). step_kernel_fold_merge: each query's
  // split-KV attention states merged by the CTA that finishes the query's last share, in place
  // of a merge phase and its grid barrier (same bits; off for the A/B). step_kernel_head_flags:
  // each attention unit waits for its own kv head's q|k|v tiles instead of a grid barrier after
  // the whole projection (same bits; off for the A/B). step_kernel_ring_slots: the most slots
  // the weight stream's ring may take (StepKernelArgs::ring_slots; same bits; the benchmark's
  // A/B of how far ahead it streams). Where the kernel cannot launch (no
  // cooperative launch, no room on an SM) the step runs the layer path, step_kernel turns off and
  // stats().kernel_error says why.
  bool step_kernel = false;
  bool step_kernel_prefetch = true;
  bool step_kernel_stream = true;
  bool step_kernel_fold_merge = true;
  bool step_kernel_head_flags = true;
  int32_t step_kernel_ring_slots = kMaxRingSlots;
  // Time each phase of every one-kernel step into stats().kernel_phase_ms (the device clock at
  // its barriers; each step then waits for the device).
  bool step_kernel_timing = false;
  bool profile = false;
  DecodeWorkOptions work_options;
  struct Stats {
    int64_t eager_steps = 0, graph_replays = 0, graph_captures = 0, profiled_steps = 0;
    int64_t candidate_steps = 0;    // steps launched as the candidate kernels (eager or graph)
    int64_t kernel_steps = 0;       // steps run as one persistent kernel (step_kernel)
    int64_t kernel_grid = 0;        // its CTAs
    bool kernel_streamed = false;   // whether its last step streamed the weights
    int64_t kernel_ring_slots = 0;  // ... through a ring of this many slots
    std::string kernel_error;  // why step_kernel was turned off, if it was (it could not launch)
    // step_kernel_timing: device milliseconds per phase kind, summed over kernel_timed_steps.
    std::map<std::string, double> kernel_phase_ms;
    int64_t kernel_timed_steps = 0;
    std::string graph_error;              // why graphs were turned off, if they were
    std::map<std::string, double> op_ms;  // profiled steps: device milliseconds per op kind
    // Device time of every step's launches (graph replay or eager), start to end on the
    // stream, over device_timed_steps steps: against wall time it separates device work from
    // the host's. Brought up to date by settle_stats().
    double device_ms = 0.0;
    int64_t device_timed_steps = 0;
    // Host milliseconds of every step: from step() to its launches (checks, plan, uploads), and
    // the launches themselves (a graph launch, or the eager kernels' enqueueing).
    double host_prep_ms = 0.0, host_launch_ms = 0.0;
  };
  const Stats& stats() const { return stats_; }
  // Folds the last step's device time into stats() (waits for that step to end on the device).
  Status settle_stats();
  // Whether what the last steps left on the device may be read, once the stream has been waited
  // for: an error naming why not when a one-kernel step's grid barrier timed out (its results
  // are garbage); OK when no one-kernel step ran.
  Status step_kernel_status() const { return step_kernel_.check(); }

 private:
  Status reserve(int64_t tokens, int64_t sequences);
  Status launch(int64_t tokens, int64_t sequences, int64_t launch_items);
  Status launch_layer(int64_t layer, int64_t tokens, int64_t launch_items);
  // Whether the step being launched has one new token per sequence, and whether it is a step of
  // chunks on the fused chunk attention (set by step() before it launches or captures anything).
  bool one_token_each_ = false;
  bool chunk_step_ = false;
  Status timed(const char* op, Status s);  // s, and the op's end marked when profiling
  Status run_graph(int64_t bucket, int64_t launch_items);
  Status run_step_kernel(int64_t sequences);
  void drop_graphs();

  Qwen3CudaModel& m_;
  KvPagesCuda& pages_;
  CudaContext& ctx_;
  DeviceDecodePlan plan_;        // eager steps' (prefill chunks, profiled or large steps)
  DeviceDecodePlan graph_plan_;  // graph steps' (sized at the buckets' item bounds)
  DeviceDecodePlan* plan_in_use_ = &plan_;
  DeviceAttentionPlan chunk_plan_;  // a step of chunks' causal attention among its new tokens
  DeviceBuffer step_buf_, act_buf_;
  int64_t cap_tokens_ = 0, cap_seqs_ = 0, buffers_generation_ = 0;
  std::vector<int32_t> staging_;  // the step's ids, slots and last rows
  RopeTable rope_;                // the step's rope tables (kept: the uploads read them)
  // Device views into step_buf_ / act_buf_.
  int32_t *ids_ = nullptr, *slots_ = nullptr, *last_rows_ = nullptr;
  float *cos_ = nullptr, *sin_ = nullptr;
  float *x_ = nullptr, *rstd_ = nullptr, *last_ = nullptr, *logits_ = nullptr;
  void *xn_ = nullptr, *q_ = nullptr, *k_ = nullptr, *v_ = nullptr, *attn_ = nullptr;
  void *gate_ = nullptr, *up_ = nullptr, *act_ = nullptr, *hn_ = nullptr;
  void* qkv_ = nullptr;         // (tokens, heads + 2 kv_heads, head_dim): the stacked projection
  void* chunk_out_ = nullptr;   // (tokens, heads, head_dim): the chunk attention's output
  float* chunk_lse_ = nullptr;  // (tokens, heads) fp32: its log-sum-exp
  CudaOpTimer timer_;
  bool timing_ = false;      // this step's ops are being timed
  bool pdl_ = false;         // this step launches the candidate kernels
  CudaSpanTimer step_time_;  // each step's launches, start to end on the stream
  struct Graph {
    void* exec = nullptr;  // cudaGraphExec_t
    int64_t plan_generation = -1, buffers_generation = -1;
    bool warm = false;  // ran eagerly once at these generations
  };
  // By (bucket, attention items launched): a graph's attend grid is fixed at capture, so steps
  // whose plans need up to twice fewer items get a graph of their own instead of idle CTAs.
  std::map<std::pair<int64_t, int64_t>, Graph> graphs_;
  StepKernel step_kernel_;
  Stats stats_;
};

}  // namespace npr
