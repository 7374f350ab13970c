// sample(logits, rows, params, out): draws one token per logits row with the sampler of
// cpp/sampler (counter-based RNG, step-local repetition penalty, temperature/top-k/top-p/min-p,
// greedy at temperature 0), on the calling thread with the CPU pool (a few ms even at a
// 151,936 vocabulary: not worth a worker).
//   logits: Float32Array (R, vocab), R = rows.request.length
//   rows: { request, branch, index: Int32Array (R), penaltyOffsets?: Int32Array (R + 1),
//           penaltyTokens?: Int32Array, repetitionPenalty?: Float32Array (R) }
//   params: { temperature? = 1, topK? = 0, topP? = 1, minP? = 0, seed? = 0 }
//   out: { tokens: Int32Array (R), logprob: Float32Array (R), logprobSampling: Float32Array (R) }
// logprob is under log-softmax of the raw logits; logprobSampling under the processed
// distribution (0 when greedy).
#include <string>
#include <vector>

#include "addon/args.h"
#include "addon/bindings.h"
#include "addon/runtime.h"
#include "addon/sample_args.h"
#include "sampler/sampler.h"

namespace npr::addon {

namespace {

constexpr const char* kFn = "sample";

Napi::Value sample(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  F32Arg logits = f32_arg(info, 0, kFn, "logits");
  SampleArgs a = parse_sample_args(kFn, object_arg(info, 1, kFn, "rows", false),
                                   object_arg(info, 2, kFn, "params", true),
                                   object_arg(info, 3, kFn, "out", false));
  const int64_t R = static_cast<int64_t>(a.rows.size());
  if (logits.length % R != 0)
    throw_range(env, "sample: logits length " + std::to_string(logits.length) +
                         " is not a multiple of the row count " + std::to_string(R));
  const int64_t vocab = logits.length / R;
  for (int64_t r = 0; r < R; ++r) a.rows[r].logits = logits.data + r * vocab;
  std::vector<SampleResult> res(static_cast<size_t>(R));
  Status st = sample_rows(cpu_runtime().context(), res.data(), a.rows.data(), R, vocab, a.params);
  if (!st.is_ok()) throw_status(env, st);
  write_sample_results(a, res);
  return env.Undefined();
}

}  // namespace

void register_sampler(Napi::Env env, Napi::Object exports) {
  exports.Set("sample", Napi::Function::New(env, sample, "sample"));
}

}  // namespace npr::addon
