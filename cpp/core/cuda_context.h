// The CUDA backend's runtime objects, in plain C++ (no CUDA headers): element types on the
// device, one allocator for every device buffer (weights, activations, gradients, workspace),
// RAII device buffers, and the context every CUDA launcher takes (stream, cuBLAS handle when the
// build has cuBLAS, allocator, deterministic switch).
//
// Running out of device memory is a Status (kOutOfMemory) naming what was asked for, the bytes
// asked and the bytes free; never a crash. No managed memory anywhere. Not here: multi-GPU,
// memory pools beyond what cudaMalloc gives (buffers are grown once and reused by their owners).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/host_staging.h"
#include "core/status.h"

namespace npr {

// Element type of activations and compute copies on the device. Accumulation is always fp32.
enum class DevDType : uint8_t { kF32 = 0, kBF16 = 1 };
inline int64_t dev_dtype_size(DevDType t) {
  return t == DevDType::kF32 ? 4 : 2;
}
const char* dev_dtype_name(DevDType t);

// Which GEMM a CUDA launcher uses: cuBLAS when linked, else the hand-written kernels. Tests force
// kKernel to check the fallback on hosts that have cuBLAS.
enum class CudaGemmPath : uint8_t { kAuto = 0, kCublas = 1, kKernel = 2 };

class DeviceAllocator {
 public:
  // *out = device memory of `bytes` (> 0). On failure: kOutOfMemory "<what>: could not allocate
  // N bytes on the device (M bytes free of T)", or kCuda for other errors. *out untouched then.
  Status alloc(int64_t bytes, const char* what, void** out);
  void release(void* p, int64_t bytes);
  int64_t bytes_in_use() const { return in_use_; }
  int64_t peak_bytes() const { return peak_; }

 private:
  int64_t in_use_ = 0, peak_ = 0;
};

// A device allocation owned by one object; grow() keeps the old one when it is large enough.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept { swap(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    reset();
    swap(o);
    return *this;
  }
  ~DeviceBuffer() { reset(); }

  // Ensures at least `bytes` (contents not kept when it reallocates).
  Status grow(DeviceAllocator& a, int64_t bytes, const char* what);
  void reset();
  void* get() const { return ptr_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  int64_t bytes() const { return bytes_; }

 private:
  void swap(DeviceBuffer& o) noexcept;
  DeviceAllocator* owner_ = nullptr;
  void* ptr_ = nullptr;
  int64_t bytes_ = 0;
};

class CudaContext {
 public:
  // Device 0 (the only one used): a non-blocking stream and, where linked, a cuBLAS handle on
  // it. kUnavailable when no device answers (the reason from cuda_info()).
  static Status create(std::unique_ptr<CudaContext>* out);
  ~CudaContext();
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;

  void* stream() const { return stream_; }  // cudaStream_t
  void* blas() const { return blas_; }      // cublasHandle_t, or null without cuBLAS
  bool has_cublas() const { return blas_ != nullptr; }
  DeviceAllocator& alloc() { return alloc_; }

  // GEMM path (kAuto: cuBLAS when present) and the deterministic switch (no floating-point
  // atomics anywhere a reduction order could change between runs); both default as shown.
  CudaGemmPath gemm_path = CudaGemmPath::kAuto;
  bool deterministic = true;
  // The attention on Hopper's wgmma (parallel_attention_wgmma.h) where it can run: 0 off (the
  // context's default; models set 1); 1 the pipelined one-CTA-an-SM forward, 2 the two-CTA
  // one, 3 the pipelined one loading K/V two tiles ahead, 4 that with Q in registers, 5 and 6
  // variants 1 and 4 with the warpgroups ping-ponging (the backward's dK/dV and deterministic
  // dQ kernels either way).
  int attention_wgmma = 0;
  // The wgmma backward's dK / dV and dQ kernels: 64 keys / queries a CTA (one warpgroup, the
  // measured default) or 128 (two warpgroups sharing each stage's loads, head_dim 128 only;
  // elsewhere 64).
  int attention_wgmma_keys = 64;
  bool use_cublas() const { return has_cublas() && gemm_path != CudaGemmPath::kKernel; }

  // Waits for the stream; a kernel fault surfaces here as kCuda naming `what`.
  Status sync(const char* what) const;
  // Host <-> device copies on the stream. upload returns once src may be reused (the copy may
  // still be queued); download returns once dst holds the bytes. Copies of up to
  // HostStaging::kBlockBytes go through the context's page-locked staging (host_staging.h).
  Status upload(void* dst, const void* src, int64_t bytes, const char* what);
  Status download(void* dst, const void* src, int64_t bytes, const char* what);
  const HostStaging& staging() const { return staging_; }
  Status zero(void* dst, int64_t bytes, const char* what) const;

  // Reusable scratch owned by the context, one buffer per slot, grown on demand (a grow frees
  // the old buffer, and cudaFree waits for the device, so queued kernels never see it vanish).
  // Slots: kScratchHead (logprob head), kScratchAttention (attention backward), kScratchReduce
  // (deterministic reductions: norm weight grads, sums of squares), kScratchGemm (GEMM fallback,
  // cuBLAS workspace), kScratchModel (the model's per-step temporaries).
  enum ScratchSlot {
    kScratchHead = 0,
    kScratchAttention,
    kScratchReduce,
    kScratchGemm,
    kScratchModel,
    kScratchSlots
  };
  Status scratch(ScratchSlot slot, int64_t bytes, void** out);

 private:
  CudaContext() = default;
  void* stream_ = nullptr;
  void* blas_ = nullptr;
  DeviceAllocator alloc_;
  DeviceBuffer scratch_[kScratchSlots];
  HostStaging staging_;
};

// Bytes free and total on the current device (0, 0 when none answers).
void cuda_memory_info(int64_t* free_bytes, int64_t* total_bytes);

}  // namespace npr
