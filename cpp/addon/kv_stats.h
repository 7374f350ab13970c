// NativeKv.deviceStats(): the CUDA decoder's counters and timings, and the decode calls' host
// time, as the JS object the binding returns (kv_binding.cpp).
#pragma once

#include <napi.h>

#include <cstdint>

#include "core/status.h"

namespace npr {

class Qwen3CudaDecoder;

namespace addon {

// Host milliseconds of a cache's decode calls, summed over `calls` (see KvHandle).
struct KvHostTimes {
  double queue_ms = 0.0, wait_ms = 0.0, resolve_ms = 0.0;
  int64_t calls = 0;
};

// { eagerSteps, graphCaptures, graphReplays, graphError, profiledSteps, opMs, deviceMs,
// deviceTimedSteps, hostMs }; decoder null (a CPU cache): zeros but hostMs. settle: fold the
// last step's device time in first (waits for it; not while a decode runs). Status errors of the
// settling come back in *st.
Napi::Object kv_device_stats(Napi::Env env, Qwen3CudaDecoder* decoder, bool settle,
                             const KvHostTimes& host, Status* st);

}  // namespace addon
}  // namespace npr
