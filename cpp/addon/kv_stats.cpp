// NativeKv.deviceStats() (see kv_stats.h).
#include "addon/kv_stats.h"

#include <string>

#if defined(NPR_WITH_CUDA)
#include "model/qwen3_cuda_decode.h"
#endif

namespace npr::addon {

Napi::Object kv_device_stats(Napi::Env env, Qwen3CudaDecoder* decoder, bool settle,
                             const KvHostTimes& host, Status* st) {
  *st = Status::ok();
  Napi::Object o = Napi::Object::New(env);
  double eager = 0, captures = 0, replays = 0, profiled = 0, device_ms = 0, device_steps = 0;
  double kernel_steps = 0, kernel_grid = 0, kernel_timed = 0, candidate = 0;
  bool kernel_streamed = false;
  double kernel_ring_slots = 0;
  double prep_ms = 0, launch_ms = 0;
  std::string error, kernel_error;
  Napi::Object op_ms = Napi::Object::New(env);
  Napi::Object phase_ms = Napi::Object::New(env);
#if defined(NPR_WITH_CUDA)
  if (decoder) {
    if (settle) *st = decoder->settle_stats();
    const Qwen3CudaDecoder::Stats& s = decoder->stats();
    eager = static_cast<double>(s.eager_steps);
    captures = static_cast<double>(s.graph_captures);
    replays = static_cast<double>(s.graph_replays);
    candidate = static_cast<double>(s.candidate_steps);
    kernel_steps = static_cast<double>(s.kernel_steps);
    kernel_grid = static_cast<double>(s.kernel_grid);
    kernel_streamed = s.kernel_streamed;
    kernel_ring_slots = static_cast<double>(s.kernel_ring_slots);
    kernel_timed = static_cast<double>(s.kernel_timed_steps);
    kernel_error = s.kernel_error;
    for (const auto& [phase, ms] : s.kernel_phase_ms) phase_ms.Set(phase, ms);
    profiled = static_cast<double>(s.profiled_steps);
    error = s.graph_error;
    device_ms = s.device_ms;
    device_steps = static_cast<double>(s.device_timed_steps);
    prep_ms = s.host_prep_ms;
    launch_ms = s.host_launch_ms;
    for (const auto& [op, ms] : s.op_ms) op_ms.Set(op, ms);
  }
#else
  (void)decoder;
  (void)settle;
#endif
  o.Set("eagerSteps", eager);
  o.Set("graphCaptures", captures);
  o.Set("graphReplays", replays);
  o.Set("graphError", error);
  o.Set("candidateSteps", candidate);
  o.Set("kernelSteps", kernel_steps);
  o.Set("kernelGrid", kernel_grid);
  o.Set("kernelStreamed", kernel_streamed);
  o.Set("kernelRingSlots", kernel_ring_slots);
  o.Set("kernelError", kernel_error);
  o.Set("kernelPhaseMs", phase_ms);
  o.Set("kernelTimedSteps", kernel_timed);
  o.Set("profiledSteps", profiled);
  o.Set("opMs", op_ms);
  o.Set("deviceMs", device_ms);
  o.Set("deviceTimedSteps", device_steps);
  // The decode calls' host time (every backend); prep and launch are the CUDA decoder's own.
  Napi::Object h = Napi::Object::New(env);
  h.Set("calls", static_cast<double>(host.calls));
  h.Set("queueMs", host.queue_ms);
  h.Set("prepMs", prep_ms);
  h.Set("launchMs", launch_ms);
  h.Set("waitMs", host.wait_ms);
  h.Set("resolveMs", host.resolve_ms);
  o.Set("hostMs", h);
  return o;
}

}  // namespace npr::addon
