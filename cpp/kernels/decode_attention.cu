// Paged decode attention on the device (see decode_attention_cuda.h): split-KV work items, each
// folding a run of pages into the online-softmax states of its query rows, then a merge of each
// query's partial states by log-sum-exp. fp32 math throughout; pages and q/out of type t.
#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>

#include "core/cuda_check.cuh"
#include "core/cuda_dtype.cuh"
#include "core/cuda_launch.cuh"
#include "kernels/decode_attend_new_tokens.cuh"
#include "kernels/decode_attention_cuda.h"
#include "kernels/decode_attention_mma.cuh"
#include "kernels/decode_merge_staged.cuh"
#include "kernels/pdl.cuh"

namespace npr {

namespace {

constexpr int kTile = 16;      // keys staged in shared memory at a time
constexpr int kThreads = 128;  // 4 warps

int64_t attend_smem_bytes(int64_t rows, int64_t D) {
  return 4 * (2 * rows * D + 2 * kTile * D + rows * kTile + 3 * rows);
}

// grid (launch items, kv_heads). Item i folds its pages into the states of its q_count query
// rows x G heads of kv head blockIdx.y and writes them as partial rows.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    decode_attend_kernel(const int32_t* header, const int32_t* items, const int32_t* q_order,
                         const int32_t* indices, const T* q, const T* kp, const T* vp,
                         float* part_m, float* part_l, float* part_acc, int heads, int kv_heads,
                         int D, int B, float scale) {
  if (static_cast<int>(blockIdx.x) >= header[0]) return;  // idle item of a replayed graph
  const int h = blockIdx.y, G = heads / kv_heads, tid = threadIdx.x;
  const int warp = tid >> 5, lane = tid & 31;
  const int32_t* it = items + DecodeWork::kItemFields * blockIdx.x;
  const int q_begin = it[0], qc = it[1], page_begin = it[2], page_count = it[3], last_len = it[4],
            part_begin = it[5];
  const int R = qc * G;
  NPR_DYNAMIC_SHARED_AS(float, sm);
  float* qs = sm;              // (R, D)
  float* acc = qs + R * D;     // (R, D)
  float* ks = acc + R * D;     // (kTile, D)
  float* vs = ks + kTile * D;  // (kTile, D)
  float* s = vs + kTile * D;   // (R, kTile) scores, then weights
  float* m = s + R * kTile;    // (R)
  float* l = m + R;            // (R)
  float* f = l + R;            // (R) rescale of this tile
  for (int idx = tid; idx < R * D; idx += kThreads) {
    const int r = idx / D, d = idx % D;
    const int64_t row = q_order[q_begin + r / G];
    qs[idx] = to_f32(q[(row * heads + h * G + r % G) * D + d]);
    acc[idx] = 0.0f;
  }
  for (int r = tid; r < R; r += kThreads) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
  }
  const int n_keys = (page_count - 1) * B + last_len;
  const int64_t row_stride = static_cast<int64_t>(kv_heads) * D;
  for (int j0 = 0; j0 < n_keys; j0 += kTile) {
    const int tn = min(kTile, n_keys - j0);
    __syncthreads();  // the previous tile is done with ks, vs, s
    for (int idx = tid; idx < tn * D; idx += kThreads) {
      const int j = idx / D, d = idx % D, key = j0 + j;
      const int64_t blk = indices[page_begin + key / B];
      const int64_t off = (blk * B + key % B) * row_stride + static_cast<int64_t>(h) * D + d;
      ks[idx] = to_f32(kp[off]);
      vs[idx] = to_f32(vp[off]);
    }
    __syncthreads();
    for (int pair = warp; pair < R * tn; pair += kThreads / 32) {  // a warp per (row, key)
      const int r = pair / tn, j = pair % tn;
      float sum = 0.0f;
      for (int d = lane; d < D; d += 32) sum += qs[r * D + d] * ks[j * D + d];
      for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
      if (lane == 0) s[r * kTile + j] = sum * scale;
    }
    __syncthreads();
    for (int r = tid; r < R; r += kThreads) {
      float mx = m[r];
      for (int j = 0; j < tn; ++j) mx = fmaxf(mx, s[r * kTile + j]);
      const float fr = __expf(m[r] - mx);  // 0 while m is -inf
      float sum = 0.0f;
      for (int j = 0; j < tn; ++j) {
        const float p = __expf(s[r * kTile + j] - mx);
        s[r * kTile + j] = p;
        sum += p;
      }
      l[r] = l[r] * fr + sum;
      m[r] = mx;
      f[r] = fr;
    }
    __syncthreads();
    for (int idx = tid; idx < R * D; idx += kThreads) {
      const int r = idx / D, d = idx % D;
      float a = acc[idx] * f[r];
      for (int j = 0; j < tn; ++j) a += s[r * kTile + j] * vs[j * D + d];
      acc[idx] = a;
    }
  }
  __syncthreads();
  for (int idx = tid; idx < R * D; idx += kThreads) {
    const int r = idx / D, d = idx % D;
    const int64_t p = part_begin + r / G, head = h * G + r % G;
    part_acc[(p * heads + head) * D + d] = acc[idx];
    if (d == 0) {
      part_m[p * heads + head] = m[r];
      part_l[p * heads + head] = l[r];
    }
  }
}

// grid (queries, heads): the query's partial states merged in key order.
template <typename T>
__global__ void decode_merge_kernel(const int32_t* merge_ptr, const int32_t* merge_rows,
                                    const float* part_m, const float* part_l, const float* part_acc,
                                    T* out, float* lse, int heads, int D) {
  const int64_t qi = blockIdx.x, head = blockIdx.y;
  const int r0 = merge_ptr[qi], r1 = merge_ptr[qi + 1];
  float M = -INFINITY;
  for (int i = r0; i < r1; ++i)
    M = fmaxf(M, part_m[merge_rows[i] * static_cast<int64_t>(heads) + head]);
  float L = 0.0f;
  for (int i = r0; i < r1; ++i) {
    const int64_t at = merge_rows[i] * static_cast<int64_t>(heads) + head;
    L += part_l[at] * __expf(part_m[at] - M);
  }
  const float inv = 1.0f / L;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float o = 0.0f;
    for (int i = r0; i < r1; ++i) {
      const int64_t at = merge_rows[i] * static_cast<int64_t>(heads) + head;
      o += part_acc[at * D + d] * __expf(part_m[at] - M);
    }
    out[(qi * heads + head) * D + d] = from_f32<T>(o * inv);
  }
  if (lse && threadIdx.x == 0) lse[qi * heads + head] = M + logf(L);
}

}  // namespace

bool decode_attention_mma_applies(DevDType t, int64_t head_dim, int64_t max_rows) {
  return t == DevDType::kBF16 && (head_dim == 64 || head_dim == 128) &&
         max_rows <= decode_mma::kRows;
}

namespace {

template <typename T>
Status launch_attend_simt(const DeviceDecodePlan& plan, const void* q, const DevicePagedKv& kv,
                          int64_t heads, int64_t D, float scale, int64_t smem, dim3 grid,
                          cudaStream_t st) {
  auto kernel = decode_attend_kernel<T>;
  if (smem > 48 * 1024)
    NPR_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      static_cast<int>(smem)),
                 "decode attention (cuda): shared memory size");
  NPR_LAUNCH(grid, kThreads, smem, st, kernel)
  (plan.header, plan.items, plan.q_order, plan.indices, static_cast<const T*>(q),
   static_cast<const T*>(kv.k), static_cast<const T*>(kv.v), plan.part_m, plan.part_l,
   plan.part_acc, static_cast<int>(heads), static_cast<int>(kv.kv_heads), static_cast<int>(D),
   kv.block_tokens, scale);
  return cuda_launch_status("decode attention (cuda): attend");
}

// The tensor-core attend kernel for head dim D (its shared memory is above the default 48 KB,
// allowed once per process before the first launch, which is always an eager one).
template <int D, bool PDL>
Status launch_attend_mma(const DeviceDecodePlan& plan, const void* q, const DevicePagedKv& kv,
                         int64_t heads, float scale, dim3 grid, cudaStream_t st) {
  using bf16_t = __nv_bfloat16;
  constexpr int kBytes = decode_mma::Smem<D>::kBytes;
  auto* kernel = decode_mma::attend_kernel<D, PDL>;
  static const cudaError_t allowed =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kBytes);
  NPR_CUDA_TRY(allowed, "decode attention (cuda): tensor-core kernel shared memory size");
  const auto* qb = static_cast<const bf16_t*>(q);
  const auto* kb = static_cast<const bf16_t*>(kv.k);
  const auto* vb = static_cast<const bf16_t*>(kv.v);
  const int h = static_cast<int>(heads), kvh = static_cast<int>(kv.kv_heads);
  if (PDL) {
    NPR_CUDA_TRY(
        pdl::launch(true, kernel, grid, dim3(decode_mma::kThreads), kBytes, st, plan.header,
                    plan.items, plan.q_order, plan.indices, qb, kb, vb, plan.part_m, plan.part_l,
                    plan.part_acc, h, kvh, kv.block_tokens, scale),
        "decode attention (cuda): attend (tensor cores, pdl)");
  } else {
    NPR_LAUNCH(grid, decode_mma::kThreads, kBytes, st, kernel)
    (plan.header, plan.items, plan.q_order, plan.indices, qb, kb, vb, plan.part_m, plan.part_l,
     plan.part_acc, h, kvh, kv.block_tokens, scale);
  }
  return cuda_launch_status("decode attention (cuda): attend (tensor cores)");
}

// The tensor-core attend kernel with its query rows and the new tokens' K and V from the
// stacked projection (decode_attend_new_tokens.cuh); shared memory as launch_attend_mma's.
template <int D, bool PDL, bool KV_AHEAD = false>
Status launch_attend_new(const DeviceDecodePlan& plan, const DecodeNewTokens& f,
                         const DevicePagedKv& kv, int64_t heads, float scale, dim3 grid,
                         cudaStream_t st) {
  using bf16_t = __nv_bfloat16;
  constexpr int kBytes = decode_mma::Smem<D>::kBytes;
  auto* kernel = decode_new::attend_new_kernel<D, PDL, KV_AHEAD>;
  static const cudaError_t allowed =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kBytes);
  NPR_CUDA_TRY(allowed, "decode attention (cuda): new-token kernel shared memory size");
  const decode_new::NewTokens nt{static_cast<const bf16_t*>(f.qkv),
                                 f.q_norm,
                                 f.k_norm,
                                 f.cos,
                                 f.sin,
                                 f.slots,
                                 static_cast<bf16_t*>(f.k_pages),
                                 static_cast<bf16_t*>(f.v_pages),
                                 static_cast<int>(heads),
                                 static_cast<int>(kv.kv_heads),
                                 kv.block_tokens,
                                 f.eps};
  NPR_CUDA_TRY(pdl::launch(PDL, kernel, grid, dim3(decode_mma::kThreads), kBytes, st, plan.header,
                           plan.items, plan.q_order, plan.indices, nt, plan.part_m, plan.part_l,
                           plan.part_acc, scale),
               "decode attention (cuda): attend (tensor cores, new tokens)");
  return cuda_launch_status("decode attention (cuda): attend (tensor cores, new tokens)");
}

}  // namespace

Status decode_attention_cuda(CudaContext& ctx, DevDType t, const DeviceDecodePlan& plan, void* out,
                             float* lse, const void* q, int64_t heads, const DevicePagedKv& kv,
                             float scale, int64_t launch_items, DecodeAttnKernel kernel,
                             DecodeMerge merge, bool pdl, const DecodeNewTokens* fresh) {
  if (heads <= 0 || kv.kv_heads <= 0 || heads % kv.kv_heads != 0)
    return Status::invalid("decode attention (cuda): heads must be a multiple of kv_heads");
  if (!plan.header) return Status::invalid("decode attention (cuda): no plan uploaded");
  const int64_t items = launch_items > 0 ? launch_items : plan.items_in_use();
  if (plan.queries() <= 0) return Status::ok();
  // No items: every query's states are the plan's chunk rows (decode_chunk_cuda.h); merge them.
  if (items <= 0 && plan.chunk_rows() < 0) return Status::ok();
  const int64_t D = kv.head_dim;
  const int64_t smem = attend_smem_bytes(plan.max_rows(), D);
  cudaStream_t st = static_cast<cudaStream_t>(ctx.stream());
  const dim3 grid(static_cast<unsigned>(items), static_cast<unsigned>(kv.kv_heads));
  const dim3 mgrid(static_cast<unsigned>(plan.queries()), static_cast<unsigned>(heads));
  const int mthreads = D >= 128 ? 128 : 32;
  const bool mma_fits = decode_attention_mma_applies(t, D, plan.max_rows());
  if (kernel == DecodeAttnKernel::kMma && !mma_fits)
    return Status::invalid(
        "decode attention (cuda): the tensor-core kernel needs bf16, head dim 64 or 128 and at "
        "most 16 query rows per item (got " +
        std::string(dev_dtype_name(t)) + ", head dim " + std::to_string(D) + ", " +
        std::to_string(plan.max_rows()) + " rows)");
  const bool use_mma = mma_fits && kernel != DecodeAttnKernel::kSimt;
  if (fresh && !use_mma)
    return Status::invalid(
        "decode attention (cuda): the new tokens from the projection need the tensor-core "
        "kernel (bf16, head dim 64 or 128, at most 16 query rows per item; got " +
        std::string(dev_dtype_name(t)) + ", head dim " + std::to_string(D) + ", " +
        std::to_string(plan.max_rows()) + " rows" +
        (kernel == DecodeAttnKernel::kSimt ? ", the SIMT kernel asked for)" : ")"));
  if (fresh && (!fresh->qkv || !fresh->q_norm || !fresh->k_norm || !fresh->cos || !fresh->sin ||
                !fresh->slots || !fresh->k_pages || !fresh->v_pages))
    return Status::invalid("decode attention (cuda): a null pointer in the new tokens' source");
  // The items folded into their partial states (none to fold: the states are all chunk rows).
  auto attend_items = [&](auto tag) -> Status {
    using T = decltype(tag);
    if (items <= 0) return Status::ok();
    if (fresh) {
      auto attend = [&](auto d, auto with_pdl, auto ahead) {
        return launch_attend_new<decltype(d)::value, decltype(with_pdl)::value,
                                 decltype(ahead)::value>(plan, *fresh, kv, heads, scale, grid, st);
      };
      using D64 = std::integral_constant<int, 64>;
      using D128 = std::integral_constant<int, 128>;
      using On = std::true_type;
      using Off = std::false_type;
      const bool ahead = pdl && fresh->kv_ahead;
      const Status attended =
          ahead ? (D == 64 ? attend(D64{}, On{}, On{}) : attend(D128{}, On{}, On{}))
          : pdl ? (D == 64 ? attend(D64{}, On{}, Off{}) : attend(D128{}, On{}, Off{}))
                : (D == 64 ? attend(D64{}, Off{}, Off{}) : attend(D128{}, Off{}, Off{}));
      NPR_TRY(attended);
    } else if (use_mma) {
      const Status attended =
          pdl ? (D == 64 ? launch_attend_mma<64, true>(plan, q, kv, heads, scale, grid, st)
                         : launch_attend_mma<128, true>(plan, q, kv, heads, scale, grid, st))
              : (D == 64 ? launch_attend_mma<64, false>(plan, q, kv, heads, scale, grid, st)
                         : launch_attend_mma<128, false>(plan, q, kv, heads, scale, grid, st));
      NPR_TRY(attended);
    } else {
      NPR_TRY(launch_attend_simt<T>(plan, q, kv, heads, D, scale, smem, grid, st));
    }
    return Status::ok();
  };
  auto run = [&](auto tag) -> Status {
    using T = decltype(tag);
    NPR_TRY(attend_items(tag));
    const int dpt = static_cast<int>((D + mthreads - 1) / mthreads);
    if (merge == DecodeMerge::kStaged && dpt <= decode_merge::kMaxDPerThread) {
      auto pick = [&](auto with_pdl) {
        constexpr bool P = decltype(with_pdl)::value;
        return dpt == 1   ? decode_merge::staged_kernel<T, 1, P>
               : dpt == 2 ? decode_merge::staged_kernel<T, 2, P>
               : dpt <= 4 ? decode_merge::staged_kernel<T, 4, P>
                          : decode_merge::staged_kernel<T, 8, P>;
      };
      auto staged = pdl ? pick(std::true_type{}) : pick(std::false_type{});
      NPR_CUDA_TRY(
          pdl::launch(pdl, staged, mgrid, dim3(mthreads), 0, st, plan.merge_ptr, plan.merge_rows,
                      plan.part_m, plan.part_l, plan.part_acc, static_cast<T*>(out), lse,
                      static_cast<int>(heads), static_cast<int>(D)),
          "decode attention (cuda): staged merge");
      return cuda_launch_status("decode attention (cuda): staged merge");
    }
    NPR_LAUNCH(mgrid, mthreads, 0, st, decode_merge_kernel<T>)
    (plan.merge_ptr, plan.merge_rows, plan.part_m, plan.part_l, plan.part_acc, static_cast<T*>(out),
     lse, static_cast<int>(heads), static_cast<int>(D));
    return cuda_launch_status("decode attention (cuda): merge");
  };
  return t == DevDType::kF32 ? run(float{}) : run(__nv_bfloat16{});
}

}  // namespace npr
