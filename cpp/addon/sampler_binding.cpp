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
#include "sampler/sampler.h"

namespace npr::addon {

namespace {

constexpr const char* kFn = "sample";

Napi::Value sample(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  F32Arg logits = f32_arg(info, 0, kFn, "logits");
  Napi::Object rows = object_arg(info, 1, kFn, "rows", false);
  Napi::Object po = object_arg(info, 2, kFn, "params", true);
  Napi::Object out = object_arg(info, 3, kFn, "out", false);

  auto request = typed_field<Napi::Int32Array>(rows, kFn, "request", napi_int32_array,
                                               "an Int32Array", false, 0, false);
  const size_t R = request.ElementLength();
  if (R == 0) throw_range(env, "sample: rows.request must hold at least one row");
  if (logits.length % static_cast<int64_t>(R) != 0)
    throw_range(env, "sample: logits length " + std::to_string(logits.length) +
                         " is not a multiple of the row count " + std::to_string(R));
  const int64_t vocab = logits.length / static_cast<int64_t>(R);
  auto branch = typed_field<Napi::Int32Array>(rows, kFn, "branch", napi_int32_array,
                                              "an Int32Array", false, R, true);
  auto index = typed_field<Napi::Int32Array>(rows, kFn, "index", napi_int32_array, "an Int32Array",
                                             false, R, true);
  auto pen_off = typed_field<Napi::Int32Array>(rows, kFn, "penaltyOffsets", napi_int32_array,
                                               "an Int32Array", true, R + 1, true);
  auto pen_tok = typed_field<Napi::Int32Array>(rows, kFn, "penaltyTokens", napi_int32_array,
                                               "an Int32Array", true, 0, false);
  auto pen = typed_field<Napi::Float32Array>(rows, kFn, "repetitionPenalty", napi_float32_array,
                                             "a Float32Array", true, R, true);
  auto tokens = typed_field<Napi::Int32Array>(out, kFn, "tokens", napi_int32_array, "an Int32Array",
                                              false, R, true);
  auto lp = typed_field<Napi::Float32Array>(out, kFn, "logprob", napi_float32_array,
                                            "a Float32Array", false, R, true);
  auto lps = typed_field<Napi::Float32Array>(out, kFn, "logprobSampling", napi_float32_array,
                                             "a Float32Array", false, R, true);
  const size_t n_pen = pen_tok.IsEmpty() ? 0 : pen_tok.ElementLength();
  if (!pen_off.IsEmpty()) {
    if (pen_off[0] != 0 || static_cast<size_t>(pen_off[R]) != n_pen)
      throw_range(env,
                  "sample: rows.penaltyOffsets must start at 0 and end at penaltyTokens.length");
    for (size_t r = 0; r < R; ++r)
      if (pen_off[r + 1] < pen_off[r])
        throw_range(env, "sample: rows.penaltyOffsets must not decrease");
  } else if (n_pen > 0) {
    throw_range(env, "sample: rows.penaltyTokens needs rows.penaltyOffsets");
  }

  SamplingParams params;
  params.temperature = static_cast<float>(number_field(po, kFn, "temperature", true, 1.0));
  params.top_k = static_cast<int32_t>(int_field(po, kFn, "topK", 0, 1 << 30, true, 0));
  params.top_p = static_cast<float>(number_field(po, kFn, "topP", true, 1.0));
  params.min_p = static_cast<float>(number_field(po, kFn, "minP", true, 0.0));
  params.seed =
      static_cast<uint64_t>(int_field(po, kFn, "seed", 0, (int64_t{1} << 53) - 1, true, 0));

  std::vector<SampleRow> sr(R);
  for (size_t r = 0; r < R; ++r) {
    SampleRow& row = sr[r];
    row.logits = logits.data + static_cast<int64_t>(r) * vocab;
    row.request = request[r];
    row.branch = branch[r];
    row.index = index[r];
    if (!pen_off.IsEmpty() && n_pen > 0) {
      row.penalty_tokens = pen_tok.Data() + pen_off[r];
      row.penalty_count = pen_off[r + 1] - pen_off[r];
    }
    if (!pen.IsEmpty()) row.repetition_penalty = pen[r];
  }
  std::vector<SampleResult> res(R);
  Status st = sample_rows(cpu_runtime().context(), res.data(), sr.data(), static_cast<int64_t>(R),
                          vocab, params);
  if (!st.is_ok()) throw_status(env, st);
  for (size_t r = 0; r < R; ++r) {
    tokens[r] = res[r].token;
    lp[r] = res[r].logprob;
    lps[r] = res[r].logprob_sampling;
  }
  return env.Undefined();
}

}  // namespace

void register_sampler(Napi::Env env, Napi::Object exports) {
  exports.Set("sample", Napi::Function::New(env, sample, "sample"));
}

}  // namespace npr::addon
