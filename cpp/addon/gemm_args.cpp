#include "addon/gemm_args.h"

namespace npr::addon {

namespace {
constexpr int64_t kMaxDim = (int64_t{1} << 31) - 1;

void check_length(Napi::Env env, const char* fn, const char* name, const F32Arg& arg,
                  int64_t needed, const GemmShape& s) {
  if (arg.length >= needed) return;
  throw_range(env, std::string(fn) + ": '" + name + "' has " + std::to_string(arg.length) +
                       " elements but m=" + std::to_string(s.m) + " n=" + std::to_string(s.n) +
                       " k=" + std::to_string(s.k) + " lda=" + std::to_string(s.lda) +
                       " ldb=" + std::to_string(s.ldb) + " ldc=" + std::to_string(s.ldc) +
                       " transA=" + (s.ta == Trans::kT ? "true" : "false") +
                       " transB=" + (s.tb == Trans::kT ? "true" : "false") + " need at least " +
                       std::to_string(needed));
}
}  // namespace

GemmCall parse_gemm_call(const Napi::CallbackInfo& info, const char* fn, bool peer) {
  Napi::Env env = info.Env();
  if (info.Length() < 4)
    throw_type(env, std::string(fn) + ": expected (c, a, b, options), got " +
                        std::to_string(info.Length()) + " arguments");
  GemmCall call;
  call.c = f32_arg(info, 0, fn, "c");
  call.a = f32_arg(info, 1, fn, "a");
  call.b = f32_arg(info, 2, fn, "b");
  Napi::Object o = object_arg(info, 3, fn, "options", false);
  GemmShape& s = call.shape;
  s.m = int_field(o, fn, "m", 0, kMaxDim);
  s.n = int_field(o, fn, "n", 0, kMaxDim);
  s.k = int_field(o, fn, "k", 0, kMaxDim);
  s.ta = bool_field(o, fn, "transA", false) ? Trans::kT : Trans::kN;
  s.tb = bool_field(o, fn, "transB", false) ? Trans::kT : Trans::kN;
  s.lda = int_field(o, fn, "lda", 1, kMaxDim, true,
                    std::max<int64_t>(1, s.ta == Trans::kN ? s.k : s.m));
  s.ldb = int_field(o, fn, "ldb", 1, kMaxDim, true,
                    std::max<int64_t>(1, s.tb == Trans::kN ? s.n : s.k));
  s.ldc = int_field(o, fn, "ldc", 1, kMaxDim, true, std::max<int64_t>(1, s.n));
  s.alpha = static_cast<float>(number_field(o, fn, "alpha", true, 1.0));
  s.beta = static_cast<float>(number_field(o, fn, "beta", true, 0.0));
  if (peer) {
    call.threads = static_cast<int>(int_field(o, fn, "threads", 1, 1024, true, 1));
  } else {
    call.backend = enum_field(o, fn, "backend", {"cpu", "cuda"}, "cpu");
    call.impl = enum_field(o, fn, "impl", {"fast", "reference"}, "fast");
    if (!o.Get("threads").IsUndefined())
      throw_type(env, std::string(fn) +
                          ": options.threads is not accepted here; the pool size "
                          "is set once with configure({ threads })");
  }

  Status st = gemm_check_shape(s);
  if (!st.is_ok()) throw_range(env, std::string(fn) + ": " + st.message());
  int64_t na, nb, nc;
  gemm_min_elements(s, &na, &nb, &nc);
  check_length(env, fn, "a", call.a, na, s);
  check_length(env, fn, "b", call.b, nb, s);
  check_length(env, fn, "c", call.c, nc, s);
  check_no_overlap(env, fn, "c", call.c, "a", call.a);
  check_no_overlap(env, fn, "c", call.c, "b", call.b);
  return call;
}

}  // namespace npr::addon
