// parallelAttention(q, k, v, out, lse, options) -> AttentionRunInfo: the fused block-sparse
// attention (plan + forward, optionally backward) on the calling thread with the runtime's pool
// and SIMD level; a benchmark and test entry point, the model calls the kernel directly.
// q (T, heads, headDim), k, v (T, kvHeads, headDim), out like q, lse (T, heads): Float32Array.
// options: { heads, kvHeads, headDim, scale? = 1/sqrt(headDim), cuSeqlens: Int32Array,
//            depth? = 0, block?, step?: Int32Array (T * depth), dense? = false (plan ignores the
//            branch paths: plain causal, the "skipping disabled" baseline),
//            backward?: { dout (like q), dq (like q), dk, dv (like k) } }.
// Returns the plan's statistics and the bytes the plan and the run's workspace held.
#include <cmath>
#include <string>

#include "addon/args.h"
#include "addon/bindings.h"
#include "addon/runtime.h"
#include "kernels/parallel_attention.h"

namespace npr::addon {

namespace {

constexpr int64_t kMaxDim = int64_t{1} << 20;

Napi::Int32Array i32_field(const Napi::Object& o, const char* fn, const char* key, int64_t length) {
  Napi::Value v = o.Get(key);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw_type(o.Env(), std::string(fn) + ": options." + key + " must be an Int32Array (got " +
                            describe_type(v) + ")");
  Napi::Int32Array a = v.As<Napi::Int32Array>();
  if (length >= 0 && static_cast<int64_t>(a.ElementLength()) != length)
    throw_range(o.Env(), std::string(fn) + ": options." + key + " has " +
                             std::to_string(a.ElementLength()) + " elements, expected " +
                             std::to_string(length));
  return a;
}

// A Float32Array field of `o` holding exactly `length` elements.
F32Arg f32_field(const Napi::Object& o, const char* fn, const std::string& key, int64_t length) {
  Napi::Value v = o.Get(key);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw_type(o.Env(), std::string(fn) + ": options.backward." + key +
                            " must be a Float32Array (got " + describe_type(v) + ")");
  F32Arg a;
  a.array = v.As<Napi::Float32Array>();
  a.data = a.array.Data();
  a.length = static_cast<int64_t>(a.array.ElementLength());
  if (a.length != length)
    throw_range(o.Env(), std::string(fn) + ": options.backward." + key + " has " +
                             std::to_string(a.length) + " elements, expected " +
                             std::to_string(length));
  return a;
}

void check_len(Napi::Env env, const char* fn, const char* name, const F32Arg& a, int64_t want) {
  if (a.length != want)
    throw_range(env, std::string(fn) + ": argument '" + name + "' has " + std::to_string(a.length) +
                         " elements, expected " + std::to_string(want));
}

Napi::Value parallel_attention(const Napi::CallbackInfo& info) {
  const char* fn = "parallelAttention";
  Napi::Env env = info.Env();
  if (info.Length() < 6)
    throw_type(env, std::string(fn) + ": expected (q, k, v, out, lse, options), got " +
                        std::to_string(info.Length()) + " arguments");
  const F32Arg q = f32_arg(info, 0, fn, "q"), k = f32_arg(info, 1, fn, "k");
  const F32Arg v = f32_arg(info, 2, fn, "v"), out = f32_arg(info, 3, fn, "out");
  const F32Arg lse = f32_arg(info, 4, fn, "lse");
  Napi::Object o = object_arg(info, 5, fn, "options", false);
  AttentionShape sh;
  sh.heads = int_field(o, fn, "heads", 1, 4096);
  sh.kv_heads = int_field(o, fn, "kvHeads", 1, 4096);
  sh.head_dim = int_field(o, fn, "headDim", 1, 4096);
  if (sh.heads % sh.kv_heads != 0)
    throw_range(env, std::string(fn) + ": options.heads (" + std::to_string(sh.heads) +
                         ") must be a multiple of options.kvHeads (" + std::to_string(sh.kv_heads) +
                         ")");
  sh.scale = static_cast<float>(
      number_field(o, fn, "scale", true, 1.0 / std::sqrt(static_cast<double>(sh.head_dim))));
  if (q.length % (sh.heads * sh.head_dim) != 0 || q.length == 0)
    throw_range(env, std::string(fn) + ": argument 'q' has " + std::to_string(q.length) +
                         " elements, not a positive multiple of heads * headDim = " +
                         std::to_string(sh.heads * sh.head_dim));
  const int64_t T = q.length / (sh.heads * sh.head_dim);
  if (T > kMaxDim) throw_range(env, std::string(fn) + ": at most 2^20 tokens");
  const int64_t nq = T * sh.heads * sh.head_dim, nk = T * sh.kv_heads * sh.head_dim;
  check_len(env, fn, "k", k, nk);
  check_len(env, fn, "v", v, nk);
  check_len(env, fn, "out", out, nq);
  check_len(env, fn, "lse", lse, T * sh.heads);
  for (const auto& [name, in] :
       {std::pair<const char*, const F32Arg*>{"q", &q}, {"k", &k}, {"v", &v}}) {
    check_no_overlap(env, fn, "out", out, name, *in);
    check_no_overlap(env, fn, "lse", lse, name, *in);
  }
  check_no_overlap(env, fn, "lse", lse, "out", out);
  Napi::Int32Array cu = i32_field(o, fn, "cuSeqlens", -1);
  if (cu.ElementLength() < 2)
    throw_range(env, std::string(fn) + ": options.cuSeqlens needs at least 2 entries");
  const int64_t depth = int_field(o, fn, "depth", 0, 16, true, 0);
  StructureView st{T,         static_cast<int64_t>(cu.ElementLength()) - 1,
                   cu.Data(), static_cast<int32_t>(depth),
                   nullptr,   nullptr};
  if (depth > 0) {
    st.block = i32_field(o, fn, "block", T * depth).Data();
    st.step = i32_field(o, fn, "step", T * depth).Data();
  }
  const bool dense = bool_field(o, fn, "dense", false);
  Napi::Value bv = o.Get("backward");
  F32Arg dout, dq, dk, dv;
  const bool backward = !bv.IsUndefined();
  if (backward) {
    if (!bv.IsObject() || bv.IsArray() || bv.IsTypedArray())
      throw_type(env, std::string(fn) + ": options.backward must be an object (got " +
                          describe_type(bv) + ")");
    Napi::Object b = bv.As<Napi::Object>();
    dout = f32_field(b, fn, "dout", nq);
    dq = f32_field(b, fn, "dq", nq);
    dk = f32_field(b, fn, "dk", nk);
    dv = f32_field(b, fn, "dv", nk);
    const std::pair<const char*, const F32Arg*> ins[] = {
        {"q", &q}, {"k", &k}, {"v", &v}, {"out", &out}, {"lse", &lse}, {"backward.dout", &dout}};
    for (const auto& [oname, o2] : {std::pair<const char*, const F32Arg*>{"backward.dq", &dq},
                                    {"backward.dk", &dk},
                                    {"backward.dv", &dv}})
      for (const auto& [iname, in] : ins) check_no_overlap(env, fn, oname, *o2, iname, *in);
    check_no_overlap(env, fn, "backward.dq", dq, "backward.dk", dk);
    check_no_overlap(env, fn, "backward.dq", dq, "backward.dv", dv);
    check_no_overlap(env, fn, "backward.dk", dk, "backward.dv", dv);
  }

  AttentionPlan plan;
  Status s = attention_plan(st, &plan, dense);
  if (!s.is_ok())
    throw_range(env, std::string(fn) + ": options.cuSeqlens/block/step: " + s.message());
  const CpuRuntime rt = cpu_runtime();
  s = attention_forward_fused(rt.context(), plan, out.data, lse.data, q.data, k.data, v.data, sh);
  if (s.is_ok() && backward)
    s = attention_backward_fused(rt.context(), plan, dq.data, dk.data, dv.data, dout.data, q.data,
                                 k.data, v.data, out.data, lse.data, sh);
  if (!s.is_ok()) throw_status(env, s);

  Napi::Object r = Napi::Object::New(env);
  auto num = [&](const char* key, int64_t x) {
    r.Set(key, Napi::Number::New(env, static_cast<double>(x)));
  };
  num("visiblePairs", plan.visible_pairs);
  num("causalPairs", plan.causal_pairs);
  num("tilesCausal", plan.tiles_causal);
  num("tilesFull", plan.tiles_full);
  num("tilesPartial", plan.tiles_partial);
  num("tilesSkipped", plan.tiles_skip);
  num("planBytes", plan.bytes());
  num("workspaceBytes", attention_fused_workspace_bytes(plan, sh, rt.threads(), backward));
  return r;
}

}  // namespace

void register_attention(Napi::Env env, Napi::Object exports) {
  exports.Set("parallelAttention",
              Napi::Function::New(env, parallel_attention, "parallelAttention"));
}

}  // namespace npr::addon
