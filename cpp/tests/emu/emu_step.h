// The one-kernel decode step (model/qwen3_step_kernel.cuh) under the emulator (emu_runtime.h),
// for test_emu_step.cpp: plain host arrays in (the model's bf16 weights, the KV pages, the step
// and its attention plan), the kernel run by its own launcher (StepKernel) or, for the layer
// path, its kernels as the decoder launches them; "" or the fault out. Compiled into the
// emulator build (emu_step.cpp, where namespace npr is npr_emu) and into the test, which sees
// only these plain types.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/emu/emu_runtime.h"

namespace emu {

// One layer: the stacked q|k|v (heads D + 2 kv_heads D, hidden) and gate|up (2 inter, hidden),
// o (hidden, heads D) and down (hidden, inter) as bf16 bits; norm weights fp32; this layer's KV
// pages (num_blocks, block_tokens, kv_heads, D) bf16 bits, read and written.
struct StepLayer {
  const uint16_t *wqkv, *wo, *wgu, *wdown;
  const float *in_norm, *post_norm, *q_norm, *k_norm;  // (hidden) x 2, (D) x 2
  uint16_t *k_pages, *v_pages;
};

struct StepModel {
  int layers, hidden, inter, heads, kv_heads, head_dim, vocab;
  float eps;
  const uint16_t *embed, *lm_head;  // (vocab, hidden) bf16 bits
  const float* final_norm;          // (hidden)
  const StepLayer* layer;           // (layers)
};

// A plan of kernels/decode_work.h (DecodeWork) with its page table (PageTable: indptr, indices,
// last_len).
struct StepPlan {
  std::vector<int32_t> items, q_order, merge_ptr, merge_rows, indices;
  int64_t partials = 0;
  std::vector<int32_t> indptr, last_len;
  int64_t queries = 0, max_rows = 0;
};

// rows one-token sequences: ids, slots (rows); cos, sin (rows, D / 2) at their positions.
struct StepInputs {
  int rows, block_tokens, num_blocks;
  const int32_t *ids, *slots;
  const float *cos, *sin;
};

// A step's own buffer: n elements (at least one) of `fill`, registered (register_global) as
// written by the kernel or not (a buffer one kernel of several writes is read by the next).
template <typename T>
void add(std::vector<T>& v, int64_t n, T fill, bool kernel_writes) {
  v.assign(static_cast<size_t>(n > 1 ? n : 1), fill);
  register_global(v.data(), v.size() * sizeof(T), kernel_writes);
}

// Registers (register_global) every buffer of the model, the pages, the plan, the inputs and
// the logits: what both drivers below hand their kernels besides their own activations. With
// one_launch (the one-kernel step), the pages and the logits as buffers the kernel writes.
void register_step(const StepModel& m, const StepPlan& plan, const StepInputs& in,
                   const float* logits, bool one_launch);

// The one-kernel step through its own host code on the emulated device (emu_cuda_api.h; set
// its size first): a CudaContext, StepKernel with the layer table uploaded once, and per step
// the plan uploaded by DeviceDecodePlan::upload and StepKernel::launch, which picks the grid (at
// most 4 CTAs an SM, all resident), allocates its barrier words and host-mapped flag, and
// launches cooperatively. The model's arrays (weights and pages) must outlive it.
class StepRunner {
 public:
  explicit StepRunner(const StepModel& m);
  ~StepRunner();
  StepRunner(const StepRunner&) = delete;
  StepRunner& operator=(const StepRunner&) = delete;
  // One step into logits (rows, vocab), each row's new K and V written into the pages: "" or the
  // fault or error, as the launcher's Status or StepKernel::check says it. Every buffer the
  // kernel gets is registered for the emulator's global-memory checks (the step's own for the
  // launch). phase_ms: null, or a timed launch's phases as StepKernel::add_phase_ms reads them.
  // o: StepKernelArgs' switches (the emulated device is an sm_90 one, so stream runs the
  // streamed kernel).
  struct Switches {
    bool prefetch = true, stream = true, fold_merge = true, head_flags = true;
    int ring_slots = 12;  // StepKernelArgs::ring_slots (its default, kMaxRingSlots)
  };
  std::string run(const StepPlan& plan, const StepInputs& in, const Switches& o, float* logits,
                  std::map<std::string, double>* phase_ms = nullptr);
  // The grid the launcher chose (0 before a launch), and whether it streamed the weights.
  unsigned grid() const;
  bool streamed() const;
  int64_t ring_slots() const;  // of the last launch's ring (0: it did not stream)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The same step on the layer path (Qwen3CudaDecoder's eager step with its default bf16 kernels),
// its launchers called as the decoder calls them on a CudaContext of the emulated device (the
// fused layers' grids follow its SM count): the embedding; per layer the fused input norm +
// q|k|v on tensor cores, the q/k norm + RoPE + KV write, the tensor-core attend kernel and the
// staged merge, o-proj, the fused post norm + gate|up + SwiGLU, down; then the gather of the last
// rows, the final RMSNorm and the head. pdl: the decoder's candidate kernels (programmatic
// dependent launches, which launch as usual here: their kernels' own paths run).
std::string decode_layer_path(const StepModel& m, const StepPlan& plan, const StepInputs& in,
                              bool pdl, float* logits);

}  // namespace emu
