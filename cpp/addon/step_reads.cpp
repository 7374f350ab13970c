// step_reads.h: the step results' JS arguments, checked, and the reads run.
#include "addon/step_reads.h"

#include <string>
#include <vector>

#include "addon/args.h"
#include "addon/runtime.h"
#include "addon/sample_args.h"

namespace npr::addon {

StepRead read_logprobs(const Napi::CallbackInfo& info, const StepLogits& l) {
  const char* fn = "logprobs";
  Napi::Int32Array rows = int32_arg(info[0], fn, "logitRows");
  Napi::Int32Array tokens = int32_arg(info[1], fn, "tokens");
  const size_t n = rows.ElementLength();
  if (!info[2].IsTypedArray() ||
      info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw_type(info.Env(), "logprobs: argument 'out' must be a Float32Array");
  Napi::Float32Array out = info[2].As<Napi::Float32Array>();
  if (tokens.ElementLength() != n || out.ElementLength() != n)
    throw_range(info.Env(), "logprobs: logitRows, tokens and out must have the same length (got " +
                                std::to_string(n) + ", " + std::to_string(tokens.ElementLength()) +
                                ", " + std::to_string(out.ElementLength()) + ")");
  std::vector<TokenQuery> q(n);
  for (size_t i = 0; i < n; ++i) q[i] = TokenQuery{rows[i], tokens[i]};
  const int64_t asked = static_cast<int64_t>(n);
  return {step_logprobs(cpu_runtime().context(), l, q.data(), asked, out.Data()), asked};
}

StepRead read_sample(const Napi::CallbackInfo& info, const StepLogits& l) {
  const char* fn = "sample";
  Napi::Int32Array rows = int32_arg(info[0], fn, "logitRows");
  SampleArgs a = parse_sample_args(fn, object_arg(info, 1, fn, "rows", false),
                                   object_arg(info, 2, fn, "params", true),
                                   object_arg(info, 3, fn, "out", false));
  if (rows.ElementLength() != a.rows.size())
    throw_range(info.Env(), "sample: logitRows has " + std::to_string(rows.ElementLength()) +
                                " entries but rows.request has " + std::to_string(a.rows.size()));
  std::vector<SampleResult> res;
  StepRead r{step_sample(cpu_runtime().context(), l, rows.Data(), a.rows, a.params, &res),
             static_cast<int64_t>(a.rows.size())};
  if (r.status.is_ok()) write_sample_results(a, res);
  return r;
}

StepRead read_logits_rows(const Napi::CallbackInfo& info, const StepLogits& l) {
  Napi::Int32Array rows = int32_arg(info[0], "logitsRows", "logitRows");
  const size_t n = rows.ElementLength();
  if (!info[1].IsTypedArray() ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array ||
      info[1].As<Napi::Float32Array>().ElementLength() != n * static_cast<size_t>(l.vocab))
    throw_type(info.Env(),
               "logitsRows: argument 'out' must be a Float32Array of logitRows.length "
               "* vocab = " +
                   std::to_string(n * static_cast<size_t>(l.vocab)) + " elements");
  const int64_t asked = static_cast<int64_t>(n);
  return {step_copy_rows(l, rows.Data(), asked, info[1].As<Napi::Float32Array>().Data()), asked};
}

}  // namespace npr::addon
