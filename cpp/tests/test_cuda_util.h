// Helpers for the CUDA-vs-CPU tests: a shared context (or a SKIP with the reason), device
// vectors from host data, host copies back, and host-side bf16 rounding for bf16-mode oracles.
// Only meaningful in CUDA builds; test files guard their bodies with NPR_WITH_CUDA.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "core/cuda_context.h"
#include "core/cuda_device.h"
#include "core/dtype.h"
#include "tests/harness.h"
#include "tests/test_util.h"

namespace npr::test {

// The process's one test context; SKIPs the calling case where no device answers.
inline CudaContext& cuda_test_context() {
  static std::unique_ptr<CudaContext> ctx;
  if (!ctx) {
    if (cuda_info().devices == 0) skip_case("no CUDA device answers: " + cuda_info().reason);
    Status s = CudaContext::create(&ctx);
    if (!s.is_ok()) skip_case("CUDA context: " + s.to_string());
  }
  return *ctx;
}

// Host fp32 -> device buffer of type t (bf16 rounds to nearest even).
inline DeviceBuffer to_device(CudaContext& ctx, const std::vector<float>& h, DevDType t) {
  DeviceBuffer b;
  const int64_t n = static_cast<int64_t>(h.size());
  Status s = b.grow(ctx.alloc(), (n > 0 ? n : 1) * dev_dtype_size(t), "test buffer");
  if (!s.is_ok()) record_failure(__FILE__, __LINE__, s.to_string());
  if (t == DevDType::kF32) {
    s = ctx.upload(b.get(), h.data(), n * 4, "test upload");
  } else {
    std::vector<bf16> bits(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) bits[i] = f32_to_bf16(h[i]);
    s = ctx.upload(b.get(), bits.data(), n * 2, "test upload");
    if (s.is_ok()) s = ctx.sync("test upload");
  }
  if (!s.is_ok()) record_failure(__FILE__, __LINE__, s.to_string());
  return b;
}

inline DeviceBuffer to_device_i32(CudaContext& ctx, const std::vector<int32_t>& h) {
  DeviceBuffer b;
  const int64_t n = static_cast<int64_t>(h.size());
  Status s = b.grow(ctx.alloc(), (n > 0 ? n : 1) * 4, "test buffer");
  if (s.is_ok()) s = ctx.upload(b.get(), h.data(), n * 4, "test upload");
  if (!s.is_ok()) record_failure(__FILE__, __LINE__, s.to_string());
  return b;
}

// Device buffer of type t (n elements) -> host fp32.
inline std::vector<float> to_host(CudaContext& ctx, const DeviceBuffer& b, int64_t n, DevDType t) {
  std::vector<float> h(static_cast<size_t>(n));
  Status s;
  if (t == DevDType::kF32) {
    s = ctx.download(h.data(), b.get(), n * 4, "test download");
  } else {
    std::vector<bf16> bits(static_cast<size_t>(n));
    s = ctx.download(bits.data(), b.get(), n * 2, "test download");
    for (int64_t i = 0; i < n; ++i) h[i] = bf16_to_f32(bits[i]);
  }
  if (!s.is_ok()) record_failure(__FILE__, __LINE__, s.to_string());
  return h;
}

// Device buffer of n elements of type t filled with NaN (poisoned outputs).
inline DeviceBuffer poisoned_device(CudaContext& ctx, int64_t n, DevDType t) {
  return to_device(ctx, std::vector<float>(static_cast<size_t>(n), NAN), t);
}

// Restores the shared context's GEMM path when a case ends.
struct GemmPathScope {
  CudaContext& ctx;
  CudaGemmPath saved;
  explicit GemmPathScope(CudaContext& c) : ctx(c), saved(c.gemm_path) {}
  ~GemmPathScope() { ctx.gemm_path = saved; }
};

// The GEMM paths this host can run: the hand-written kernels always, cuBLAS where linked.
inline std::vector<CudaGemmPath> gemm_paths(const CudaContext& ctx) {
  std::vector<CudaGemmPath> p{CudaGemmPath::kKernel};
  if (ctx.has_cublas()) p.push_back(CudaGemmPath::kCublas);
  return p;
}

}  // namespace npr::test
