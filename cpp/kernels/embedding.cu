// Embedding gather and deterministic index-add on the device (see embedding_cuda.h).
//
// index_add_plan is a host counting sort: destinations ascending, each one's sources in source
// order (stable). index_add_rows_cuda gives each destination group a warp (dim <= 256, 8 groups
// per block) or a 256-thread block (larger dims); lanes stride the columns and each lane adds,
// starting from the destination's current value, the group's sources one after the other in
// source order: exactly the sequence of additions of the CPU embedding_backward, so fp32 results
// match it bit for bit and repeat bit for bit. Indices < 0 are skipped (forward: a NaN row);
// upper bounds are the caller's to check (no row count crosses this interface).
#include <cuda_runtime.h>

#include <algorithm>
#include <string>

#include "core/cuda_check.cuh"
#include "core/cuda_dtype.cuh"
#include "core/cuda_launch.cuh"
#include "kernels/embedding_cuda.h"

namespace npr {

IndexAddPlan index_add_plan(const int32_t* index, int64_t n) {
  IndexAddPlan plan;
  if (n <= 0 || !index) {
    plan.ptr.assign(1, 0);
    return plan;
  }
  const int32_t lo = *std::min_element(index, index + n);
  const int32_t hi = *std::max_element(index, index + n);
  const int64_t span = static_cast<int64_t>(hi) - lo + 1;
  plan.src.resize(static_cast<size_t>(n));
  if (span <= 4 * n + 1024) {
    // Counting sort over [lo, hi]: stable by construction.
    std::vector<int32_t> start(static_cast<size_t>(span + 1), 0);  // (span + 1)
    for (int64_t i = 0; i < n; ++i) ++start[static_cast<size_t>(int64_t{index[i]} - lo) + 1];
    for (int64_t k = 0; k < span; ++k) start[k + 1] += start[k];
    for (int64_t k = 0; k < span; ++k) {
      if (start[k + 1] == start[k]) continue;
      plan.dest.push_back(static_cast<int32_t>(lo + k));
      plan.ptr.push_back(start[k]);
    }
    for (int64_t i = 0; i < n; ++i)
      plan.src[static_cast<size_t>(start[static_cast<size_t>(int64_t{index[i]} - lo)]++)] =
          static_cast<int32_t>(i);
  } else {
    // Sparse indices: a stable sort of source numbers by destination.
    for (int64_t i = 0; i < n; ++i) plan.src[i] = static_cast<int32_t>(i);
    std::stable_sort(plan.src.begin(), plan.src.end(),
                     [&](int32_t a, int32_t b) { return index[a] < index[b]; });
    for (int64_t j = 0; j < n; ++j) {
      const int32_t d = index[plan.src[j]];
      if (j == 0 || d != plan.dest.back()) {
        plan.dest.push_back(d);
        plan.ptr.push_back(static_cast<int32_t>(j));
      }
    }
  }
  plan.ptr.push_back(static_cast<int32_t>(n));
  return plan;
}

Status DeviceIndexAddPlan::upload(CudaContext& ctx, const IndexAddPlan& plan) {
  const int64_t g = static_cast<int64_t>(plan.dest.size());
  const int64_t count = static_cast<int64_t>(plan.src.size());
  if (static_cast<int64_t>(plan.ptr.size()) != g + 1 || plan.ptr.front() != 0 ||
      plan.ptr.back() != count)
    return Status::invalid(
        "DeviceIndexAddPlan::upload: ptr must have groups + 1 entries from 0 "
        "to n; build the plan with index_add_plan");
  NPR_TRY(dest.grow(ctx.alloc(), std::max<int64_t>(g, 1) * 4, "index-add plan (dest)"));
  NPR_TRY(ptr.grow(ctx.alloc(), (g + 1) * 4, "index-add plan (ptr)"));
  NPR_TRY(src.grow(ctx.alloc(), std::max<int64_t>(count, 1) * 4, "index-add plan (src)"));
  // Pageable host memory: each copy returns once the host data is staged, so the plan may be
  // freed or rebuilt right after.
  NPR_TRY(ctx.upload(dest.get(), plan.dest.data(), g * 4, "index-add plan upload (dest)"));
  NPR_TRY(ctx.upload(ptr.get(), plan.ptr.data(), (g + 1) * 4, "index-add plan upload (ptr)"));
  NPR_TRY(ctx.upload(src.get(), plan.src.data(), count * 4, "index-add plan upload (src)"));
  groups = g;
  n = count;
  return Status::ok();
}

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535;
constexpr int kWarpGroupMaxDim = 256;

template <typename T>
__global__ void embedding_forward_kernel(float* out, const T* table, const int32_t* ids,
                                         int64_t tokens, int64_t dim) {
  const int64_t total = tokens * dim;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += stride) {
    const int64_t t = e / dim, c = e % dim;
    const int64_t id = ids[t];
    out[e] = id >= 0 ? to_f32(table[id * dim + c]) : __int_as_float(0x7fc00000);
  }
}

// Block (lanes, groups_per_block): threadIdx.y picks the group, threadIdx.x strides columns.
__global__ void index_add_rows_kernel(float* dst, const float* src, const int32_t* dest,
                                      const int32_t* ptr, const int32_t* srcs, int64_t groups,
                                      int64_t n, int64_t dim) {
  const int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  if (g >= groups) return;
  const int64_t d = dest[g];
  if (d < 0) return;
  const int64_t j0 = ptr[g], j1 = ptr[g + 1] < n ? ptr[g + 1] : n;
  float* row = dst + d * dim;
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) {
    float acc = row[c];
    for (int64_t j = j0; j < j1; ++j) {
      const int64_t s = srcs[j];
      if (s >= 0 && s < n) acc += src[s * dim + c];
    }
    row[c] = acc;
  }
}

}  // namespace

Status embedding_forward_cuda(CudaContext& ctx, DevDType t, float* out, const void* table,
                              const int32_t* ids, int64_t tokens, int64_t dim) {
  if (tokens < 0 || dim <= 0)
    return Status::invalid("embedding_forward_cuda: expected tokens >= 0 and dim > 0, got tokens " +
                           std::to_string(tokens) + ", dim " + std::to_string(dim));
  if (tokens == 0) return Status::ok();
  if (!out || !table || !ids)
    return Status::invalid("embedding_forward_cuda: null device pointer (out, table or ids)");
  int64_t blocks = (tokens * dim + kThreads - 1) / kThreads;
  if (blocks > kMaxBlocks) blocks = kMaxBlocks;
  cudaStream_t st = static_cast<cudaStream_t>(ctx.stream());
  if (t == DevDType::kF32) {
    NPR_LAUNCH(static_cast<unsigned>(blocks), kThreads, 0, st, embedding_forward_kernel<float>)
    (out, static_cast<const float*>(table), ids, tokens, dim);
  } else {
    NPR_LAUNCH(static_cast<unsigned>(blocks), kThreads, 0, st,
               embedding_forward_kernel<__nv_bfloat16>)
    (out, static_cast<const __nv_bfloat16*>(table), ids, tokens, dim);
  }
  return cuda_launch_status("embedding_forward_cuda");
}

Status index_add_rows_cuda(CudaContext& ctx, float* dst, const float* src,
                           const DeviceIndexAddPlan& plan, int64_t dim) {
  if (dim <= 0)
    return Status::invalid("index_add_rows_cuda: dim must be > 0, got " + std::to_string(dim));
  if (plan.groups < 0 || plan.n < 0)
    return Status::invalid("index_add_rows_cuda: the plan is not uploaded");
  if (plan.groups == 0) return Status::ok();
  if (!dst || !src || !plan.dest.get() || !plan.ptr.get() || !plan.src.get())
    return Status::invalid("index_add_rows_cuda: null device pointer (dst, src or the plan's)");
  const int lanes = dim <= kWarpGroupMaxDim ? 32 : kThreads;
  const int per_block = kThreads / lanes;
  const int64_t blocks = (plan.groups + per_block - 1) / per_block;
  if (blocks > 0x7fffffffLL)
    return Status::out_of_range("index_add_rows_cuda: too many groups for one launch");
  NPR_LAUNCH(static_cast<unsigned>(blocks), dim3(lanes, per_block), 0,
             static_cast<cudaStream_t>(ctx.stream()), index_add_rows_kernel)
  (dst, src, plan.dest.as<int32_t>(), plan.ptr.as<int32_t>(), plan.src.as<int32_t>(), plan.groups,
   plan.n, dim);
  return cuda_launch_status("index_add_rows_cuda");
}

}  // namespace npr
