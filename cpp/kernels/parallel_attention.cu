// The fused block-sparse attention on the device, forward half (see parallel_attention_cuda.h):
// DeviceAttentionPlan (the host plan's arrays copied once per batch) and attention_forward_cuda,
// which checks the shapes and picks a kernel from parallel_attention_fwd.cuh: tensor cores for
// bf16 with head_dim 64 or 128 (16-byte aligned tensors), the SIMT kernel for everything else;
// with the context's attention_wgmma switch on, the Hopper kernel (parallel_attention_wgmma.h)
// for the paired-head shapes where it can run.
//
// Deliberately not here: the backward (parallel_attention_backward.cu), the plan itself (built on
// the host by attention_plan), split-KV for very long single rows. The forward needs no
// workspace, no atomics: every run is bit-identical.
#include <cuda_runtime.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/cuda_check.cuh"
#include "core/cuda_launch.cuh"
#include "kernels/parallel_attention_cuda.h"
#include "kernels/parallel_attention_fwd.cuh"
#include "kernels/parallel_attention_fwd_pair.cuh"
#include "kernels/parallel_attention_fwd_simt.cuh"
#include "kernels/parallel_attention_wgmma.h"

namespace npr {

namespace {

template <typename V>
Status put(CudaContext& ctx, DeviceBuffer* dst, const std::vector<V>& src, const char* what) {
  const int64_t bytes = static_cast<int64_t>(src.size() * sizeof(V));
  NPR_TRY(dst->grow(ctx.alloc(), bytes, what));
  return ctx.upload(dst->get(), src.data(), bytes, what);
}

}  // namespace

Status DeviceAttentionPlan::upload(CudaContext& ctx, const AttentionPlan& plan) {
  const size_t seqs = plan.seq_start.size(), tiles = static_cast<size_t>(plan.tiles);
  if (plan.row_ptr.size() != tiles + 1 || plan.col_ptr.size() != tiles + 1 ||
      plan.tile_seq.size() != tiles || plan.seq_len.size() != seqs ||
      plan.seq_tile0.size() != seqs || plan.masks.size() % kAttnTile != 0 ||
      plan.col_pairs.size() != plan.row_pairs.size())
    return Status::invalid(
        "DeviceAttentionPlan::upload: the plan's arrays are inconsistent (tiles " +
        std::to_string(plan.tiles) + ", row_ptr " + std::to_string(plan.row_ptr.size()) +
        ", tile_seq " + std::to_string(plan.tile_seq.size()) + "); build it with attention_plan");
  static_assert(sizeof(AttnTilePair) == 8, "AttnTilePair is two int32 on host and device");
  NPR_TRY(put(ctx, &seq_start, plan.seq_start, "attention plan upload (seq_start)"));
  NPR_TRY(put(ctx, &seq_len, plan.seq_len, "attention plan upload (seq_len)"));
  NPR_TRY(put(ctx, &seq_tile0, plan.seq_tile0, "attention plan upload (seq_tile0)"));
  NPR_TRY(put(ctx, &tile_seq, plan.tile_seq, "attention plan upload (tile_seq)"));
  NPR_TRY(put(ctx, &row_ptr, plan.row_ptr, "attention plan upload (row_ptr)"));
  NPR_TRY(put(ctx, &col_ptr, plan.col_ptr, "attention plan upload (col_ptr)"));
  NPR_TRY(put(ctx, &row_pairs, plan.row_pairs, "attention plan upload (row_pairs)"));
  NPR_TRY(put(ctx, &col_pairs, plan.col_pairs, "attention plan upload (col_pairs)"));
  NPR_TRY(put(ctx, &masks, plan.masks, "attention plan upload (masks)"));
  // The copies are stream-ordered before any kernel that reads them; the host vectors may go
  // away now (pageable copies are staged before cudaMemcpyAsync returns).
  sequences = static_cast<int64_t>(seqs);
  partial_tiles = static_cast<int64_t>(plan.masks.size()) / kAttnTile;
  tokens_ = plan.tokens;
  tiles_ = plan.tiles;
  return Status::ok();
}

int64_t DeviceAttentionPlan::bytes() const {
  return seq_start.bytes() + seq_len.bytes() + seq_tile0.bytes() + tile_seq.bytes() +
         row_ptr.bytes() + col_ptr.bytes() + row_pairs.bytes() + col_pairs.bytes() + masks.bytes();
}

namespace {

using attn_fwd::FwdParams;

bool aligned16(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & 15u) == 0;
}

// Opts the kernel into `bytes` of dynamic shared memory and launches it on the context's stream.
template <typename Kernel>
Status launch(CudaContext& ctx, Kernel kernel, int64_t blocks, int threads, int bytes,
              const FwdParams& p, const char* what) {
  int dev = 0, optin = 0;
  NPR_CUDA_TRY(cudaGetDevice(&dev), what);
  NPR_CUDA_TRY(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev), what);
  if (bytes > optin)
    return Status::unavailable(std::string(what) + ": needs " + std::to_string(bytes) +
                               " bytes of shared memory per block, the device allows " +
                               std::to_string(optin) + "; use a smaller head_dim");
  NPR_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes),
               what);
  NPR_LAUNCH(static_cast<unsigned>(blocks), threads, bytes, static_cast<cudaStream_t>(ctx.stream()),
             kernel)
  (p);
  return cuda_launch_status(what);
}

template <typename T>
Status launch_simt(CudaContext& ctx, int64_t blocks, const FwdParams& p) {
  const int D = p.head_dim, threads = attn_fwd::kSimtThreads;
  const char* what = "attention_forward_cuda (simt kernel)";
  if (D <= 32)
    return launch(ctx, attn_fwd::attn_fwd_simt<T, 32>, blocks, threads,
                  attn_fwd::simt_smem_bytes(D, 32), p, what);
  if (D <= 64)
    return launch(ctx, attn_fwd::attn_fwd_simt<T, 64>, blocks, threads,
                  attn_fwd::simt_smem_bytes(D, 64), p, what);
  if (D <= 128)
    return launch(ctx, attn_fwd::attn_fwd_simt<T, 128>, blocks, threads,
                  attn_fwd::simt_smem_bytes(D, 128), p, what);
  return launch(ctx, attn_fwd::attn_fwd_simt<T, 256>, blocks, threads,
                attn_fwd::simt_smem_bytes(D, 256), p, what);
}

}  // namespace

#if !defined(NPR_HAVE_SM90A)
// This build has no sm_90a kernel (no 90 among its CUDA architectures, or an nvcc before 12).
bool attention_wgmma_compiled() {
  return false;
}
Status attention_forward_wgmma(void*, const FwdParams&, int64_t, int) {
  return Status::unavailable(
      "attention_forward_wgmma: this build has no sm_90a kernel (build with CUDA architecture 90 "
      "and nvcc 12 or later)");
}
Status attention_backward_dkdv_wgmma(void*, const attn_bwd::PlanView&, const attn_bwd::Dims&, void*,
                                     void*, float*, const void*, const void*, const void*,
                                     const void*, const float*, bool) {
  return Status::unavailable(
      "attention_backward_dkdv_wgmma: this build has no sm_90a kernel (build with CUDA "
      "architecture 90 and nvcc 12 or later)");
}
Status attention_backward_dkdv_wgmma_wide(void*, const attn_bwd::PlanView&, const attn_bwd::Dims&,
                                          void*, void*, float*, const void*, const void*,
                                          const void*, const void*, const float*) {
  return Status::unavailable(
      "attention_backward_dkdv_wgmma_wide: this build has no sm_90a kernel (build with CUDA "
      "architecture 90 and nvcc 12 or later)");
}
Status attention_backward_dq_from_tile_acc(void*, const attn_bwd::PlanView&, const attn_bwd::Dims&,
                                           void*, const float*) {
  return Status::unavailable(
      "attention_backward_dq_from_tile_acc: this build has no sm_90a kernel (build with CUDA "
      "architecture 90 and nvcc 12 or later)");
}
Status attention_backward_dq_wgmma_wide(void*, const attn_bwd::PlanView&, const attn_bwd::Dims&,
                                        void*, const void*, const void*, const void*, const void*,
                                        const float*) {
  return Status::unavailable(
      "attention_backward_dq_wgmma_wide: this build has no sm_90a kernel (build with CUDA "
      "architecture 90 and nvcc 12 or later)");
}
Status attention_backward_dq_wgmma(void*, const attn_bwd::PlanView&, const attn_bwd::Dims&, void*,
                                   const void*, const void*, const void*, const void*,
                                   const float*) {
  return Status::unavailable(
      "attention_backward_dq_wgmma: this build has no sm_90a kernel (build with CUDA "
      "architecture 90 and nvcc 12 or later)");
}
Status attention_backward_dq_wgmma_ws(void*, const attn_bwd::PlanView&, const attn_bwd::Dims&,
                                      void*, const void*, const void*, const void*, const void*,
                                      const float*) {
  return Status::unavailable(
      "attention_backward_dq_wgmma_ws: this build has no sm_90a kernel (build with CUDA "
      "architecture 90 and nvcc 12 or later)");
}
#endif

bool attention_wgmma_available() {
  if (!attention_wgmma_compiled()) return false;
  int dev = 0, major = 0, minor = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess)
    return false;
  return major == 9 && minor == 0;
}

bool attention_forward_uses_wgmma(const CudaContext& ctx, DevDType t, const AttentionShape& s) {
  return ctx.attention_wgmma != 0 && t == DevDType::kBF16 && s.kv_heads > 0 &&
         s.heads % s.kv_heads == 0 && (s.heads / s.kv_heads) % 2 == 0 &&
         (s.head_dim == 64 || s.head_dim == 128) && attention_wgmma_available();
}

Status attention_forward_cuda(CudaContext& ctx, DevDType t, const DeviceAttentionPlan& plan,
                              void* out, float* lse, const void* q, const void* k, const void* v,
                              const AttentionShape& shape) {
  const AttentionShape& s = shape;
  if (s.heads <= 0 || s.kv_heads <= 0 || s.heads % s.kv_heads != 0)
    return Status::invalid("attention_forward_cuda: heads (" + std::to_string(s.heads) +
                           ") must be a positive multiple of kv_heads (" +
                           std::to_string(s.kv_heads) + ")");
  if (s.head_dim <= 0 || s.head_dim > 256)
    return Status::invalid("attention_forward_cuda: head_dim " + std::to_string(s.head_dim) +
                           " is outside 1..256");
  if (!(s.scale > 0.0f) || !std::isfinite(s.scale))
    return Status::invalid("attention_forward_cuda: scale " + std::to_string(s.scale) +
                           " must be positive and finite (usually 1 / sqrt(head_dim))");
  if (plan.row_ptr.get() == nullptr)
    return Status::invalid(
        "attention_forward_cuda: the plan is not on the device; call DeviceAttentionPlan::upload");
  const int64_t blocks = plan.tiles() * s.heads;
  if (blocks == 0) return Status::ok();  // no tokens
  if (!out || !lse || !q || !k || !v)
    return Status::invalid("attention_forward_cuda: a null tensor pointer");
  if (blocks > 0x7fffffff)
    return Status::out_of_range("attention_forward_cuda: " + std::to_string(blocks) +
                                " (tile, head) items exceed one launch; split the batch");

  FwdParams p;
  p.seq_start = plan.seq_start.as<int64_t>();
  p.seq_len = plan.seq_len.as<int64_t>();
  p.seq_tile0 = plan.seq_tile0.as<int64_t>();
  p.tile_seq = plan.tile_seq.as<int32_t>();
  p.row_ptr = plan.row_ptr.as<int64_t>();
  p.row_pairs = plan.row_pairs.as<AttnTilePair>();
  p.masks = plan.masks.as<uint64_t>();
  p.tiles = plan.tiles();
  p.tokens = plan.tokens();
  p.heads = static_cast<int>(s.heads);
  p.group = static_cast<int>(s.heads / s.kv_heads);
  p.head_dim = static_cast<int>(s.head_dim);
  p.ldq = s.heads * s.head_dim;
  p.ldk = s.kv_heads * s.head_dim;
  p.scale_log2 = s.scale * 1.4426950408889634f;
  p.out = out;
  p.lse = lse;
  p.q = q;
  p.k = k;
  p.v = v;

  if (t == DevDType::kF32) return launch_simt<float>(ctx, blocks, p);
  const bool vec_ok = aligned16(out) && aligned16(q) && aligned16(k) && aligned16(v);
  const char* what = "attention_forward_cuda (tensor-core kernel)";
  if (vec_ok && p.group % 2 == 0 && (s.head_dim == 64 || s.head_dim == 128)) {
    const int64_t pair_blocks = plan.tiles() * (s.heads / 2);  // heads of a pair share K/V
    if (attention_forward_uses_wgmma(ctx, t, s))
      return attention_forward_wgmma(ctx.stream(), p, pair_blocks, ctx.attention_wgmma);
    if (s.head_dim == 64)
      return launch(ctx, attn_fwd::attn_fwd_mma2<64>, pair_blocks, attn_fwd::kMmaThreads,
                    attn_fwd::Mma2Smem<64>::kBytes, p, what);
    return launch(ctx, attn_fwd::attn_fwd_mma2<128>, pair_blocks, attn_fwd::kMmaThreads,
                  attn_fwd::Mma2Smem<128>::kBytes, p, what);
  }
  if (vec_ok && s.head_dim == 64)
    return launch(ctx, attn_fwd::attn_fwd_mma<64>, blocks, attn_fwd::kMmaThreads,
                  attn_fwd::MmaSmem<64>::kBytes, p, what);
  if (vec_ok && s.head_dim == 128)
    return launch(ctx, attn_fwd::attn_fwd_mma<128>, blocks, attn_fwd::kMmaThreads,
                  attn_fwd::MmaSmem<128>::kBytes, p, what);
  return launch_simt<__nv_bfloat16>(ctx, blocks, p);
}

}  // namespace npr
