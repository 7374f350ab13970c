// NativeKv's decode options (kv_binding.cpp), read and type-checked once at the edge on every
// backend, and applied to a CUDA decoder (Qwen3CudaDecoder: each field's meaning is there):
//   graphs? = true: replay one-token decode steps as CUDA graphs;
//   fastKernels? = true: the decode-specialised CUDA kernels;
//   profile? = false: time each op of (eager) CUDA steps into deviceStats().opMs;
//   candidateKernels? = 'one-row' | true | false: the decode layer's kernels as programmatic
//   dependent launches in graph steps of one sequence, in every step, or in none;
//   prefetchNextWeights? = false: each skinny linear layer prefetches the next one's weights
//   into L2 as it starts;
//   tensorCoreLinears? = true: the decode's skinny linear layers on tensor cores (false: CUDA
//   cores);
//   attentionMerge? = 'staged' | 'serial': how the decode attention merges its split-KV states;
//   fusedQkWrite? = true: one-token steps normalise and rotate q and write the new K and V inside
//   the tensor-core attend kernel, not in a kernel before it (false: that kernel; the same bits);
//   fusedChunkAttention? = true: steps of several new tokens a sequence attend among those
//   tokens with the training forward's fused attention and through the pages only to the keys
//   before them (false: every row through the pages);
//   attentionPrefetch? = false: where that kernel is a programmatic launch, each of its items
//   prefetches its keys and values into L2 before waiting for the q|k|v projection;
//   stepKernel? = false: one-token steps of at most 8 sequences as one persistent kernel where it
//   fits (qwen3_cuda_step_kernel.h); stepKernelPrefetch? = true: its L2 prefetch of the next
//   weights; stepKernelStream? = true: on sm_90, its weights streamed through shared memory by
//   bulk copies; stepKernelFoldMerge? = true: its attention's split-KV states merged by the CTA
//   that finishes a query's last share, in place of a merge phase and its grid barrier;
//   stepKernelHeadFlags? = true: its attention waiting for its own kv head's q|k|v tiles, not a
//   grid barrier after them all; stepKernelRingSlots? = 12 (2..12): the most slots its weight
//   stream's ring may take (as many as fit, up to this); stepKernelTiming? = false: its phases
//   timed into deviceStats().kernelPhaseMs, each step synced;
//   attentionPagesPerItem? = 4 (1..4096), attentionItemsPerRun? = 16 (1..256): the split-KV of
//   the decode attention's plan (DecodeWorkOptions): a work item reads at least that many pages,
//   and a sequence's (or a shared prefix's) run of pages is cut into at most that many items.
#pragma once

#include <napi.h>

namespace npr {

class Qwen3CudaDecoder;

namespace addon {

struct KvDecodeOptions {
  bool graphs = true, fast_kernels = true, profile = false, candidate_kernels = false;
  bool candidate_one_row = true;
  bool prefetch_next_weights = false;
  bool tensor_core_linears = true, serial_merge = false, fused_qk_write = true;
  bool attention_kv_ahead = false, fused_chunk_attention = true;
  bool step_kernel = false, step_kernel_prefetch = true, step_kernel_stream = true;
  bool step_kernel_fold_merge = true, step_kernel_head_flags = true, step_kernel_timing = false;
  int32_t step_kernel_ring_slots = 12;  // StepKernelArgs::kMaxRingSlots (a CPU build has no header)
  int32_t attention_pages_per_item = 4, attention_items_per_run = 16;  // DecodeWorkOptions
};

// The options object `o` of the constructor `fn`; a wrong type is a TypeError naming the field.
KvDecodeOptions kv_decode_options(const Napi::Object& o, const char* fn);
// Sets the decoder's switches (CUDA builds; the decoder is not defined elsewhere).
void apply_kv_decode_options(const KvDecodeOptions& opt, Qwen3CudaDecoder& decoder);

}  // namespace addon
}  // namespace npr
