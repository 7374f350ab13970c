// Parsing of the shared GEMM argument list `(c, a, b, options)` used by gemm, gemmAsync and
// the OpenBLAS peer: types, sizes, leading dimensions, lengths and aliasing all checked.
#pragma once

#include <napi.h>

#include <string>

#include "addon/args.h"
#include "kernels/gemm.h"

namespace npr::addon {

struct GemmCall {
  GemmShape shape;
  F32Arg a, b, c;
  std::string backend = "cpu";  // "cpu" | "cuda"
  std::string impl = "fast";    // "fast" | "reference"
  int threads = 1;              // peers only: their own thread count
};

// peer: parse for a benchmark peer (OpenBLAS), which takes `threads` instead of backend/impl.
GemmCall parse_gemm_call(const Napi::CallbackInfo& info, const char* fn, bool peer);

}  // namespace npr::addon
