// NativeKv's decode options (see kv_decode_options.h).
#include "addon/kv_decode_options.h"

#include <string>

#include "addon/args.h"
#if defined(NPR_WITH_CUDA)
#include "model/qwen3_cuda_decode.h"
#endif

namespace npr::addon {

KvDecodeOptions kv_decode_options(const Napi::Object& o, const char* fn) {
  KvDecodeOptions r;
  r.graphs = bool_field(o, fn, "graphs", true);
  r.fast_kernels = bool_field(o, fn, "fastKernels", true);
  r.profile = bool_field(o, fn, "profile", false);
  const Napi::Value cand = o.Get("candidateKernels");
  if (cand.IsBoolean()) {
    r.candidate_kernels = r.candidate_one_row = cand.As<Napi::Boolean>().Value();
  } else if (!cand.IsUndefined() &&
             !(cand.IsString() && cand.As<Napi::String>().Utf8Value() == "one-row")) {
    throw_type(o.Env(), std::string(fn) +
                            ": options.candidateKernels must be true, false or 'one-row' (got " +
                            describe_type(cand) + ")");
  }
  r.prefetch_next_weights = bool_field(o, fn, "prefetchNextWeights", false);
  r.tensor_core_linears = bool_field(o, fn, "tensorCoreLinears", true);
  r.serial_merge =
      enum_field(o, fn, "attentionMerge", {"serial", "staged"}, "staged") == std::string("serial");
  r.fused_qk_write = bool_field(o, fn, "fusedQkWrite", true);
  r.attention_kv_ahead = bool_field(o, fn, "attentionPrefetch", false);
  r.fused_chunk_attention = bool_field(o, fn, "fusedChunkAttention", true);
  r.step_kernel = bool_field(o, fn, "stepKernel", false);
  r.step_kernel_prefetch = bool_field(o, fn, "stepKernelPrefetch", true);
  r.step_kernel_stream = bool_field(o, fn, "stepKernelStream", true);
  r.step_kernel_fold_merge = bool_field(o, fn, "stepKernelFoldMerge", true);
  r.step_kernel_head_flags = bool_field(o, fn, "stepKernelHeadFlags", true);
  r.step_kernel_timing = bool_field(o, fn, "stepKernelTiming", false);
  r.step_kernel_ring_slots =
      static_cast<int32_t>(int_field(o, fn, "stepKernelRingSlots", 2, 12, true, 12));
  r.attention_pages_per_item =
      static_cast<int32_t>(int_field(o, fn, "attentionPagesPerItem", 1, 4096, true, 4));
  r.attention_items_per_run =
      static_cast<int32_t>(int_field(o, fn, "attentionItemsPerRun", 1, 256, true, 16));
  return r;
}

#if defined(NPR_WITH_CUDA)
void apply_kv_decode_options(const KvDecodeOptions& opt, Qwen3CudaDecoder& d) {
  d.use_graphs = opt.graphs;
  d.fast_kernels = opt.fast_kernels;
  d.profile = opt.profile;
  d.candidate_kernels = opt.candidate_kernels;
  d.candidate_one_row = opt.candidate_one_row;
  d.prefetch_next_weights = opt.prefetch_next_weights;
  d.skinny_tensor_cores = opt.tensor_core_linears;
  d.attention_merge = opt.serial_merge ? DecodeMerge::kSerial : DecodeMerge::kStaged;
  d.fused_qk_write = opt.fused_qk_write;
  d.attention_kv_ahead = opt.attention_kv_ahead;
  d.fused_chunk_attention = opt.fused_chunk_attention;
  d.step_kernel = opt.step_kernel;
  d.step_kernel_prefetch = opt.step_kernel_prefetch;
  d.step_kernel_stream = opt.step_kernel_stream;
  d.step_kernel_fold_merge = opt.step_kernel_fold_merge;
  d.step_kernel_head_flags = opt.step_kernel_head_flags;
  d.step_kernel_timing = opt.step_kernel_timing;
  d.step_kernel_ring_slots = opt.step_kernel_ring_slots;
  d.work_options.min_pages_per_item = opt.attention_pages_per_item;
  d.work_options.max_items_per_run = opt.attention_items_per_run;
}
#endif

}  // namespace npr::addon
