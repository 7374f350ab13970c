// CudaContext, DeviceAllocator and DeviceBuffer (see cuda_context.h).
#include <cuda_runtime.h>
#if defined(NPR_HAVE_CUBLAS)
#include <cublas_v2.h>
#endif

#include <cstring>
#include <string>
#include <utility>

#include "core/cuda_check.cuh"
#include "core/cuda_context.h"
#include "core/cuda_device.h"

namespace npr {

const char* dev_dtype_name(DevDType t) {
  return t == DevDType::kF32 ? "fp32" : "bf16";
}

void cuda_memory_info(int64_t* free_bytes, int64_t* total_bytes) {
  size_t f = 0, t = 0;
  if (cuda_info().devices == 0 || cudaMemGetInfo(&f, &t) != cudaSuccess) {
    cudaGetLastError();
    f = t = 0;
  }
  *free_bytes = static_cast<int64_t>(f);
  *total_bytes = static_cast<int64_t>(t);
}

Status DeviceAllocator::alloc(int64_t bytes, const char* what, void** out) {
  if (bytes <= 0)
    return Status::invalid(std::string(what) + ": device allocation of " + std::to_string(bytes) +
                           " bytes");
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, static_cast<size_t>(bytes));
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // not sticky: clear it so the next call starts clean
    int64_t free_b = 0, total_b = 0;
    cuda_memory_info(&free_b, &total_b);
    return Status::oom(std::string(what) + ": could not allocate " + std::to_string(bytes) +
                       " bytes on the device (" + std::to_string(free_b) + " bytes free of " +
                       std::to_string(total_b) + ", " + std::to_string(in_use_) +
                       " held by this process's npr buffers)");
  }
  NPR_CUDA_TRY(err, what);
  in_use_ += bytes;
  if (in_use_ > peak_) peak_ = in_use_;
  *out = p;
  return Status::ok();
}

void DeviceAllocator::release(void* p, int64_t bytes) {
  if (!p) return;
  cudaFree(p);
  in_use_ -= bytes;
}

Status DeviceBuffer::grow(DeviceAllocator& a, int64_t bytes, const char* what) {
  if (bytes <= bytes_ && owner_ == &a) return Status::ok();
  reset();
  if (bytes <= 0) return Status::ok();
  void* p = nullptr;
  NPR_TRY(a.alloc(bytes, what, &p));
  owner_ = &a;
  ptr_ = p;
  bytes_ = bytes;
  return Status::ok();
}

void DeviceBuffer::reset() {
  if (owner_ && ptr_) owner_->release(ptr_, bytes_);
  owner_ = nullptr;
  ptr_ = nullptr;
  bytes_ = 0;
}

void DeviceBuffer::swap(DeviceBuffer& o) noexcept {
  std::swap(owner_, o.owner_);
  std::swap(ptr_, o.ptr_);
  std::swap(bytes_, o.bytes_);
}

Status CudaContext::create(std::unique_ptr<CudaContext>* out) {
  const CudaInfo& info = cuda_info();
  if (info.devices == 0)
    return Status::unavailable("CUDA backend: no CUDA device answers (" + info.reason + ")");
  std::unique_ptr<CudaContext> c(new CudaContext());
  NPR_CUDA_TRY(cudaSetDevice(0), "cudaSetDevice(0)");
  cudaStream_t s = nullptr;
  NPR_CUDA_TRY(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
  c->stream_ = s;
#if defined(NPR_HAVE_CUBLAS)
  cublasHandle_t h = nullptr;
  if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS)
    return Status(StatusCode::kCuda, "CUDA backend: cublasCreate failed");
  cublasSetStream(h, s);
  // Default math: bf16 GEMMs use tensor cores, and fp32 GEMMs stay true fp32 (TF32 is only
  // used under CUBLAS_TF32_TENSOR_OP_MATH, which is never set): fp32 is the parity mode.
  cublasSetMathMode(h, CUBLAS_DEFAULT_MATH);
  c->blas_ = h;
#endif
  *out = std::move(c);
  return Status::ok();
}

CudaContext::~CudaContext() {
  // Queued copies may still read the staging, which goes with the context.
  if (stream_) cudaStreamSynchronize(static_cast<cudaStream_t>(stream_));
  for (DeviceBuffer& b : scratch_) b.reset();
#if defined(NPR_HAVE_CUBLAS)
  if (blas_) cublasDestroy(static_cast<cublasHandle_t>(blas_));
#endif
  if (stream_) cudaStreamDestroy(static_cast<cudaStream_t>(stream_));
}

Status CudaContext::scratch(ScratchSlot slot, int64_t bytes, void** out) {
  static const char* const names[kScratchSlots] = {"scratch (logprob head)", "scratch (attention)",
                                                   "scratch (reductions)", "scratch (gemm)",
                                                   "scratch (model)"};
  NPR_TRY(scratch_[slot].grow(alloc_, bytes < 256 ? 256 : bytes, names[slot]));
  *out = scratch_[slot].get();
  return Status::ok();
}

Status CudaContext::sync(const char* what) const {
  NPR_CUDA_TRY(cudaStreamSynchronize(static_cast<cudaStream_t>(stream_)), what);
  return cuda_launch_status(what);
}

Status CudaContext::upload(void* dst, const void* src, int64_t bytes, const char* what) {
  if (bytes <= 0) return Status::ok();
  const void* from = nullptr;
  NPR_TRY(staging_.stage(stream_, src, bytes, &from));
  NPR_CUDA_TRY(cudaMemcpyAsync(dst, from ? from : src, static_cast<size_t>(bytes),
                               cudaMemcpyHostToDevice, static_cast<cudaStream_t>(stream_)),
               what);
  return Status::ok();
}

Status CudaContext::download(void* dst, const void* src, int64_t bytes, const char* what) {
  if (bytes <= 0) return Status::ok();
  void* landing = nullptr;
  NPR_TRY(staging_.landing(bytes, &landing));
  NPR_CUDA_TRY(cudaMemcpyAsync(landing ? landing : dst, src, static_cast<size_t>(bytes),
                               cudaMemcpyDeviceToHost, static_cast<cudaStream_t>(stream_)),
               what);
  NPR_TRY(sync(what));
  if (landing) std::memcpy(dst, landing, static_cast<size_t>(bytes));
  return Status::ok();
}

Status CudaContext::zero(void* dst, int64_t bytes, const char* what) const {
  if (bytes <= 0) return Status::ok();
  NPR_CUDA_TRY(
      cudaMemsetAsync(dst, 0, static_cast<size_t>(bytes), static_cast<cudaStream_t>(stream_)),
      what);
  return Status::ok();
}

}  // namespace npr
