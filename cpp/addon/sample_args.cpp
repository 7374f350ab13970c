#include "addon/sample_args.h"

#include <string>

#include "addon/args.h"

namespace npr::addon {

SampleArgs parse_sample_args(const char* fn, const Napi::Object& rows, const Napi::Object& po,
                             const Napi::Object& out) {
  Napi::Env env = rows.Env();
  auto request = typed_field<Napi::Int32Array>(rows, fn, "request", napi_int32_array,
                                               "an Int32Array", false, 0, false);
  const size_t R = request.ElementLength();
  if (R == 0) throw_range(env, std::string(fn) + ": rows.request must hold at least one row");
  auto branch = typed_field<Napi::Int32Array>(rows, fn, "branch", napi_int32_array, "an Int32Array",
                                              false, R, true);
  auto index = typed_field<Napi::Int32Array>(rows, fn, "index", napi_int32_array, "an Int32Array",
                                             false, R, true);
  auto pen_off = typed_field<Napi::Int32Array>(rows, fn, "penaltyOffsets", napi_int32_array,
                                               "an Int32Array", true, R + 1, true);
  auto pen_tok = typed_field<Napi::Int32Array>(rows, fn, "penaltyTokens", napi_int32_array,
                                               "an Int32Array", true, 0, false);
  auto pen = typed_field<Napi::Float32Array>(rows, fn, "repetitionPenalty", napi_float32_array,
                                             "a Float32Array", true, R, true);
  SampleArgs a;
  a.tokens = typed_field<Napi::Int32Array>(out, fn, "tokens", napi_int32_array, "an Int32Array",
                                           false, R, true);
  a.logprob = typed_field<Napi::Float32Array>(out, fn, "logprob", napi_float32_array,
                                              "a Float32Array", false, R, true);
  a.logprob_sampling = typed_field<Napi::Float32Array>(
      out, fn, "logprobSampling", napi_float32_array, "a Float32Array", false, R, true);
  const size_t n_pen = pen_tok.IsEmpty() ? 0 : pen_tok.ElementLength();
  if (!pen_off.IsEmpty()) {
    if (pen_off[0] != 0 || static_cast<size_t>(pen_off[R]) != n_pen)
      throw_range(env, std::string(fn) +
                           ": rows.penaltyOffsets must start at 0 and end at penaltyTokens.length");
    for (size_t r = 0; r < R; ++r)
      if (pen_off[r + 1] < pen_off[r])
        throw_range(env, std::string(fn) + ": rows.penaltyOffsets must not decrease");
  } else if (n_pen > 0) {
    throw_range(env, std::string(fn) + ": rows.penaltyTokens needs rows.penaltyOffsets");
  }
  a.params.temperature = static_cast<float>(number_field(po, fn, "temperature", true, 1.0));
  a.params.top_k = static_cast<int32_t>(int_field(po, fn, "topK", 0, 1 << 30, true, 0));
  a.params.top_p = static_cast<float>(number_field(po, fn, "topP", true, 1.0));
  a.params.min_p = static_cast<float>(number_field(po, fn, "minP", true, 0.0));
  a.params.seed =
      static_cast<uint64_t>(int_field(po, fn, "seed", 0, (int64_t{1} << 53) - 1, true, 0));
  a.rows.resize(R);
  for (size_t r = 0; r < R; ++r) {
    SampleRow& row = a.rows[r];
    row.request = request[r];
    row.branch = branch[r];
    row.index = index[r];
    if (!pen_off.IsEmpty() && n_pen > 0) {
      row.penalty_tokens = pen_tok.Data() + pen_off[r];
      row.penalty_count = pen_off[r + 1] - pen_off[r];
    }
    if (!pen.IsEmpty()) row.repetition_penalty = pen[r];
  }
  return a;
}

void write_sample_results(SampleArgs& a, const std::vector<SampleResult>& results) {
  for (size_t r = 0; r < results.size(); ++r) {
    a.tokens[r] = results[r].token;
    a.logprob[r] = results[r].logprob;
    a.logprob_sampling[r] = results[r].logprob_sampling;
  }
}

}  // namespace npr::addon
