// OpenBLAS as a benchmark peer, loaded with dlopen only when a benchmark asks: the product
// never depends on it. openblasInfo() -> { available, library, coreName, reason };
// openblasGemm(c, a, b, options) takes the gemm options plus `threads`.
// OpenBLAS reads OPENBLAS_CORETYPE when it is loaded, so a benchmark that wants a particular
// kernel set must set it before the first call here.
#include <dlfcn.h>

#include <mutex>
#include <string>

#include "addon/bindings.h"
#include "addon/gemm_args.h"

namespace npr::addon {

namespace {

enum CblasOrder { kRowMajor = 101 };
enum CblasTranspose { kNoTrans = 111, kTrans = 112 };
using SgemmFn = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int,
                         float, float*, int);
using SetThreadsFn = void (*)(int);
using CoreNameFn = char* (*)();

struct OpenBlas {
  bool tried = false;
  void* handle = nullptr;
  std::string library, reason;
  SgemmFn sgemm = nullptr;
  SetThreadsFn set_threads = nullptr;
  CoreNameFn core_name = nullptr;
};

std::mutex g_mu;
OpenBlas g_blas;

OpenBlas& openblas() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_blas.tried) return g_blas;
  g_blas.tried = true;
  for (const char* name : {"libopenblas.so.0", "libopenblas.so", "libopenblas.dylib"}) {
    g_blas.handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (g_blas.handle) {
      g_blas.library = name;
      break;
    }
  }
  if (!g_blas.handle) {
    g_blas.reason = "libopenblas not found (Debian: apt-get install libopenblas-dev)";
    return g_blas;
  }
  g_blas.sgemm = reinterpret_cast<SgemmFn>(dlsym(g_blas.handle, "cblas_sgemm"));
  g_blas.set_threads =
      reinterpret_cast<SetThreadsFn>(dlsym(g_blas.handle, "openblas_set_num_threads"));
  g_blas.core_name = reinterpret_cast<CoreNameFn>(dlsym(g_blas.handle, "openblas_get_corename"));
  if (!g_blas.sgemm || !g_blas.set_threads) {
    g_blas.reason = g_blas.library + " lacks cblas_sgemm or openblas_set_num_threads";
    g_blas.sgemm = nullptr;
  }
  return g_blas;
}

Napi::Value openblas_info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OpenBlas& ob = openblas();
  Napi::Object out = Napi::Object::New(env);
  const bool ok = ob.sgemm != nullptr;
  out.Set("available", ok);
  out.Set("library", ok ? Napi::String::New(env, ob.library) : env.Null());
  out.Set("coreName", ok && ob.core_name ? Napi::String::New(env, ob.core_name()) : env.Null());
  out.Set("reason", ok ? env.Null() : Napi::String::New(env, ob.reason));
  return out;
}

Napi::Value openblas_gemm(const Napi::CallbackInfo& info) {
  const char* fn = "openblasGemm";
  GemmCall call = parse_gemm_call(info, fn, true);
  OpenBlas& ob = openblas();
  if (!ob.sgemm) throw_status(info.Env(), Status::unavailable(std::string(fn) + ": " + ob.reason));
  const GemmShape& s = call.shape;
  if (s.m == 0 || s.n == 0) return info.Env().Undefined();
  ob.set_threads(call.threads);
  ob.sgemm(kRowMajor, s.ta == Trans::kT ? kTrans : kNoTrans, s.tb == Trans::kT ? kTrans : kNoTrans,
           static_cast<int>(s.m), static_cast<int>(s.n), static_cast<int>(s.k), s.alpha,
           call.a.data, static_cast<int>(s.lda), call.b.data, static_cast<int>(s.ldb), s.beta,
           call.c.data, static_cast<int>(s.ldc));
  return info.Env().Undefined();
}

}  // namespace

void register_openblas(Napi::Env env, Napi::Object exports) {
  exports.Set("openblasInfo", Napi::Function::New(env, openblas_info, "openblasInfo"));
  exports.Set("openblasGemm", Napi::Function::New(env, openblas_gemm, "openblasGemm"));
}

}  // namespace npr::addon
