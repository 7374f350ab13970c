// Device-side timing of the CUDA block-sparse attention, for benchmarks (bench/attention-cuda.ts
// through the addon's attentionCudaTime). A GPU kernel is timed with CUDA events on the stream,
// never by wall-clocking host calls that copy data.
//
// attention_cuda_time plans the Structure on the host (attention_plan, plain causal when
// dense_causal), uploads the plan, fills q, k, v and dout on the device with a counter hash
// (value i of tensor `seed` = hash(i + seed * 2^28) mapped to [-1, 1), exactly representable in
// bf16's parent fp32 and rounded to nearest even: bench/peers/attention_cuda.py regenerates the
// very same tensors in PyTorch), warms up, then times `iters` runs of forward, and of forward +
// backward, each between two events; it reports median and min, the plan's tile statistics,
// how many outputs are not finite, and optionally the rows of out, dq, dk, dv at a few tokens
// (fp32) so a peer can check them. Plan building and upload are not timed (once per batch).
// Not here: correctness checks (cpp/tests), the model's own use of the kernel.
#pragma once

#include <cstdint>
#include <vector>

#include "core/cuda_context.h"
#include "core/status.h"
#include "core/structure.h"
#include "kernels/attention.h"

namespace npr {

struct AttentionTimingOptions {
  int iters = 20;        // timed runs of each pass (>= 1)
  int warmup = 3;        // untimed runs before (>= 0)
  bool backward = true;  // also time forward + backward
  // Tokens whose rows are copied back after the last run: out, dq (tokens, heads, D) and dk, dv
  // (tokens, kv_heads, D), in this order, as fp32. Null / 0: none.
  const int32_t* sample_tokens = nullptr;
  int64_t sample_count = 0;
};

// Seeds of the hash-filled inputs (shared with the Python peer).
constexpr uint32_t kTimingSeedQ = 1, kTimingSeedK = 2, kTimingSeedV = 3, kTimingSeedDout = 4;

struct AttentionTiming {
  double fwd_ms_median = 0, fwd_ms_min = 0;        // forward
  double fwdbwd_ms_median = 0, fwdbwd_ms_min = 0;  // forward then backward (0 unless asked)
  int iters = 0;
  // The plan's statistics (see AttentionPlan).
  int64_t visible_pairs = 0, causal_pairs = 0;
  int64_t tiles_causal = 0, tiles_full = 0, tiles_partial = 0, tiles_skip = 0;
  int64_t plan_bytes = 0;         // device bytes of the uploaded plan
  int64_t device_peak_bytes = 0;  // the context allocator's peak during the call
  int64_t nonfinite_out = 0;      // NaN/inf elements of out (and lse) after the last forward
  int64_t nonfinite_grads = 0;    // of dq, dk, dv after the last backward
  bool forward_wgmma = false;     // the forward ran the Hopper kernel (ctx.attention_wgmma)
  std::vector<float> sample_out, sample_dq;  // (sample_count, heads, D)
  std::vector<float> sample_dk, sample_dv;   // (sample_count, kv_heads, D)
};

// InvalidArgument for a bad shape, options or Structure; kCuda / kOutOfMemory from the device;
// whatever the attention launchers return.
Status attention_cuda_time(CudaContext& ctx, const StructureView& st, const AttentionShape& shape,
                           DevDType t, bool dense_causal, const AttentionTimingOptions& options,
                           AttentionTiming* out);

}  // namespace npr
