// The one-kernel decode step: a whole Qwen3 decode step of at most 8 one-token sequences (bf16,
// head dim 128) as one persistent kernel, its phases separated by grid barriers
// (core/grid_barrier.cuh) instead of kernel boundaries.
//
// Why: on an H200 the layer-by-layer step (7 launches a layer, replayed from a CUDA graph) spent
// ~1.05 ms of device time at batch 1 where the weights alone stream in ~0.2 ms: each launch's
// ramp-up and tail (~3-5 us) outweighed its 4-12 MB of weights. A barrier costs ~1 us, and
// before each barrier a CTA can ask L2 for the weights of its next linear phase (prefetch), so
// HBM keeps streaming while the grid waits for its slowest CTA. On an H200 that form measured
// 1.748 ms (its weight phases at 0.44-1.5 TB/s: each starts cold after its barrier), so on sm_90
// devices the kernel streams its weights instead: bulk copies into a ring of shared memory, one
// CTA an SM, running ahead through the phases that read no weights (qwen3_step_stream.cuh).
//
// Same bits as the layer path with tensor-core skinny linear layers, the tensor-core attend
// kernel and the staged merge (the decoder's defaults): every phase runs the device functions
// those kernels run (skinny_linear_mma.cuh, skinny_rmsnorm_stage.cuh, qk_norm_rope_row.cuh,
// decode_attention_mma.cuh, decode_merge_staged.cuh) on the same work units, in the same sum
// orders; only the CTA that runs a unit changes. Per layer, 6 phases, each ended by a barrier:
// input norm + q|k|v; attention, each work item normalising and rotating its own query rows and
// the item that ends at a new token writing that token's K and V first (the layer path's separate
// q/k norm + RoPE + KV write launch, folded in); merge; o-proj; post norm + gate|up + SwiGLU;
// down. Then the final norm + head.
//
// Plain C++ (no CUDA headers); the kernel is in qwen3_step_kernel.cuh, its launcher in
// qwen3_cuda_step_kernel.cu. The C++ tests run the kernel under the kernel emulator
// (test_emu_step.cpp).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/cuda_context.h"
#include "core/status.h"
#include "kernels/decode_attention_cuda.h"
#include "kernels/skinny_linear_cuda.h"
#include "model/qwen3_config.h"

namespace npr {

// One layer's device pointers (the stacked q|k|v and gate|up weights, bf16, as the parameter
// table lays them; norm weights fp32; this layer's KV pages).
struct StepKernelLayer {
  const void* wqkv = nullptr;                            // (heads D + 2 kv_heads D, hidden)
  const void* wo = nullptr;                              // (hidden, heads D)
  const void* wgu = nullptr;                             // (2 inter, hidden)
  const void* wdown = nullptr;                           // (hidden, inter)
  const float *in_norm = nullptr, *post_norm = nullptr;  // (hidden)
  const float *q_norm = nullptr, *k_norm = nullptr;      // (D)
  void *k_pages = nullptr, *v_pages = nullptr;           // (blocks, block_tokens, kv_heads, D)
};

// The weight stream's ring (qwen3_step_stream.cuh): its most and fewest slots.
constexpr int32_t kMaxRingSlots = 12, kMinRingSlots = 2;

struct StepKernelArgs {
  const void* embed = nullptr;        // (vocab, hidden) bf16
  const void* lm_head = nullptr;      // (vocab, hidden) bf16
  const float* final_norm = nullptr;  // (hidden)
  // The step: ids, slots (rows), cos, sin (rows, D / 2); the attention plan, uploaded.
  const int32_t *ids = nullptr, *slots = nullptr;
  const float *cos = nullptr, *sin = nullptr;
  const DeviceDecodePlan* plan = nullptr;
  int32_t block_tokens = 16;  // of the KV pages
  // Activations: x (rows, hidden) fp32; qkv (rows, heads D + 2 kv_heads D), attn (rows,
  // heads D), act (rows, inter) bf16; logits (rows, vocab) fp32.
  float* x = nullptr;
  void *qkv = nullptr, *attn = nullptr, *act = nullptr;
  float* logits = nullptr;
  // L2 prefetch of each CTA's next linear phase weights before a barrier (on by default; off
  // for the A/B the benchmark runs).
  bool prefetch = true;
  // Stream the weights through a ring of shared memory with bulk copies that run ahead across
  // phases and barriers (qwen3_step_stream.cuh): where the device is sm_90 and the build has
  // sm_90a kernels (on by default; off for the A/B the benchmark runs). Same bits.
  bool stream = true;
  // Merge each query's split-KV attention states in the CTA whose share of the query arrives
  // last (an arrival count per query and kv head, core/last_arrival.cuh) instead of in a phase
  // of their own after a grid barrier: one barrier a layer fewer, and the merges overlap the
  // attention of other items (on by default; off for the A/B the benchmark runs). Same bits.
  bool fold_merge = true;
  // No grid barrier between q|k|v and the attention: each q|k|v tile counts as done for the kv
  // head whose attention reads it, and each attention unit waits for its own head's tiles
  // alone (on by default; off for the A/B the benchmark runs). Same bits.
  bool head_flags = true;
  // The most slots the weight stream's ring may take (kMinRingSlots .. kMaxRingSlots; the
  // default: as many as fit the shared memory, up to kMaxRingSlots), for the A/B the benchmark
  // runs: how much the step's time depends on how far the stream runs ahead.
  int32_t ring_slots = kMaxRingSlots;
  // Stamp the device clock (CTA 0's, as it leaves each phase's barrier; a last barrier is added
  // after the head) and count every CTA's waits, for add_phase_ms.
  bool timing = false;
};

class StepKernel {
 public:
  StepKernel() = default;
  ~StepKernel();
  StepKernel(const StepKernel&) = delete;
  StepKernel& operator=(const StepKernel&) = delete;

  // Whether a step of `rows` one-token sequences of this model fits the kernel, and if not why
  // (a sentence). The plan's max_rows must also be at most 16 (checked at launch).
  static bool fits(const Qwen3Config& c, DevDType t, int64_t rows, std::string* why);
  // The layers' pointers (c.layers of them), uploaded once; again when they change.
  Status set_layers(CudaContext& ctx, const std::vector<StepKernelLayer>& layers);
  bool has_layers() const { return layers_n_ > 0; }
  // Enqueues the step on ctx's stream (no sync). A cooperative launch: every CTA resident.
  Status launch(CudaContext& ctx, const Qwen3Config& c, int64_t rows, const StepKernelArgs& a);
  // Milliseconds of each phase of the last launch (a timed one) added to *ms by name (embedding,
  // qkv, qk_norm_rope_attend, merge, o_proj, gate_up_swiglu, down, head), each phase
  // measured barrier to barrier (its work, its slowest CTA and the barrier itself), and
  // "barrier": what one barrier alone costs (an empty phase, calibrated at the launch's start).
  // And where a CTA's time went from the calibration to the end, on average over the CTAs:
  // "cta_wait_ring" waiting for weight chunks to land (the streamed kernel: the stream fell
  // behind), and by the phase it held up ("cta_wait_ring_<qkv, o_proj, gate_up_swiglu, down,
  // head>"), "cta_wait_grid" at grid barriers and for q|k|v heads (other CTAs were slower), and
  // by the phase the barrier ended ("cta_wait_grid_<embedding, a layer phase, head>"),
  // "cta_work" the rest; "cta_wait_ring_max" and "cta_wait_grid_max" the most one CTA waited.
  // Waits for the launch.
  Status add_phase_ms(CudaContext& ctx, const Qwen3Config& c, std::map<std::string, double>* ms);
  // kInternal when a launch so far timed out at a grid barrier (its results were garbage);
  // reads host memory only, so it sees launches that have finished.
  Status check() const;
  int64_t grid() const { return grid_; }
  // Whether the last launch streamed its weights (StepKernelArgs::stream, where it applies).
  bool streamed() const { return streamed_; }
  // The ring slots of the last launch (0 where it did not stream).
  int64_t ring_slots() const { return ring_slots_; }
  int64_t launches() const { return launches_; }

 private:
  DeviceBuffer layers_;  // (layers) StepKernelLayer
  DeviceBuffer state_;   // barrier count, broken flag; the folded merges' arrival counts (launcher)
  DeviceBuffer stamps_;  // timed launches' phase clock
  int32_t* broken_host_ = nullptr;  // host-mapped (cudaHostAlloc)
  int32_t* broken_dev_ = nullptr;   // its device view
  int64_t layers_n_ = 0, grid_ = 0, launches_ = 0;
  bool streamed_ = false;
  int64_t ring_slots_ = 0;
  // Whether the device runs sm_90a code (9.0), and its opt-in shared memory a block (0: not
  // asked yet).
  bool sm90a_ = false;
  int smem_optin_ = 0;
  Status query_device();
  // By kernel (plain, streamed) and row count (1..8): the grid found for it, and the shared
  // bytes it was found at.
  int64_t grid_of_[2][kSkinnyMaxRows + 1] = {}, smem_of_[2][kSkinnyMaxRows + 1] = {};
};

}  // namespace npr
