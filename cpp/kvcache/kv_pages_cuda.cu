// KvPagesCuda: the page pool in one device allocation; fork/join copies applied by one launch.
#include <cstring>
#include <string>

#include "core/cuda_check.cuh"
#include "core/cuda_launch.cuh"
#include "kvcache/kv_pages_cuda.h"

namespace npr {

namespace {

// One thread block per (layer, K or V) plane walks the copy list in order, a slot at a time, in
// 2-byte units (both page types are a whole number of them). A left shift inside one block runs
// in ascending slots, a right shift in descending ones: every slot is read before the copy that
// could overwrite it. A barrier after each slot orders the list like the CPU's memmoves.
__global__ void apply_copies_kernel(uint16_t* pages, const int32_t* copies, int32_t n_copies,
                                    int64_t plane_units, int64_t slot_units, int32_t block_tokens) {
  uint16_t* plane = pages + static_cast<int64_t>(blockIdx.x) * plane_units;
  for (int32_t c = 0; c < n_copies; ++c) {
    const int32_t* cp = copies + 5 * c;
    const int32_t src_b = cp[0], src_s = cp[1], dst_b = cp[2], dst_s = cp[3], count = cp[4];
    const bool descending = src_b == dst_b && dst_s > src_s;
    for (int32_t i = 0; i < count; ++i) {
      const int32_t j = descending ? count - 1 - i : i;
      const uint16_t* src =
          plane + (static_cast<int64_t>(src_b) * block_tokens + src_s + j) * slot_units;
      uint16_t* dst = plane + (static_cast<int64_t>(dst_b) * block_tokens + dst_s + j) * slot_units;
      for (int64_t e = threadIdx.x; e < slot_units; e += blockDim.x) dst[e] = src[e];
      __syncthreads();
    }
  }
}

// grid (n, 2): token n's K (y = 0) or V (y = 1) row into its slot.
__global__ void write_slots_kernel(uint16_t* k_plane, uint16_t* v_plane, const uint16_t* k,
                                   const uint16_t* v, const int32_t* slots, int64_t slot_units) {
  const int64_t t = blockIdx.x;
  uint16_t* dst = (blockIdx.y == 0 ? k_plane : v_plane) + slots[t] * slot_units;
  const uint16_t* src = (blockIdx.y == 0 ? k : v) + t * slot_units;
  for (int64_t e = threadIdx.x; e < slot_units; e += blockDim.x) dst[e] = src[e];
}

// grid (n, 2): the K (y = 0) or V (y = 1) row in token n's slot into row n.
__global__ void read_slots_kernel(uint16_t* k, uint16_t* v, const uint16_t* k_plane,
                                  const uint16_t* v_plane, const int32_t* slots,
                                  int64_t slot_units) {
  const int64_t t = blockIdx.x;
  const uint16_t* src = (blockIdx.y == 0 ? k_plane : v_plane) + slots[t] * slot_units;
  uint16_t* dst = (blockIdx.y == 0 ? k : v) + t * slot_units;
  for (int64_t e = threadIdx.x; e < slot_units; e += blockDim.x) dst[e] = src[e];
}

}  // namespace

int64_t KvPagesCuda::block_bytes(DevDType t, int64_t layers, int32_t block_tokens, int64_t kv_heads,
                                 int64_t head_dim) {
  return 2 * layers * block_tokens * kv_heads * head_dim * dev_dtype_size(t);
}

int32_t KvPagesCuda::blocks_for_budget(int64_t budget_bytes, int64_t block_bytes) {
  if (block_bytes <= 0 || budget_bytes < 2 * block_bytes) return 0;
  const int64_t n = budget_bytes / block_bytes - 1;  // one block of the budget is the pad block
  return static_cast<int32_t>(n > (int64_t{1} << 24) ? (int64_t{1} << 24) : n);
}

int64_t KvPagesCuda::budget_from_free_fraction(double fraction) {
  int64_t free_bytes = 0, total = 0;
  cuda_memory_info(&free_bytes, &total);
  if (!(fraction > 0.0) || fraction > 1.0) return 0;
  return static_cast<int64_t>(static_cast<double>(free_bytes) * fraction);
}

Status KvPagesCuda::create(CudaContext& ctx, DevDType t, int64_t layers, int32_t num_blocks,
                           int32_t block_tokens, int64_t kv_heads, int64_t head_dim,
                           std::unique_ptr<KvPagesCuda>* out) {
  if (layers <= 0 || num_blocks <= 0 || block_tokens <= 0 || kv_heads <= 0 || head_dim <= 0)
    return Status::invalid("kv pages (cuda): every dimension must be positive");
  std::unique_ptr<KvPagesCuda> p(new KvPagesCuda());
  p->ctx_ = &ctx;
  p->t_ = t;
  p->layers_ = layers;
  p->num_blocks_ = num_blocks;
  p->block_tokens_ = block_tokens;
  p->kv_heads_ = kv_heads;
  p->head_dim_ = head_dim;
  const int64_t bytes = layers * 2 * p->plane_elems() * dev_dtype_size(t);
  NPR_TRY(p->pages_.grow(ctx.alloc(), bytes,
                         ("kv pages (cuda): " + std::to_string(num_blocks) + " blocks of " +
                          std::to_string(block_tokens) + " tokens")
                             .c_str()));
  NPR_TRY(ctx.zero(p->pages_.get(), bytes, "kv pages (cuda): clear"));
  *out = std::move(p);
  return Status::ok();
}

Status KvPagesCuda::apply(const std::vector<SlotCopy>& copies) {
  if (copies.empty()) return Status::ok();
  staging_.clear();
  for (const SlotCopy& c : copies) {
    const int32_t B = block_tokens_;
    if (c.src_block < 0 || c.src_block > num_blocks_ || c.dst_block < 0 ||
        c.dst_block > num_blocks_ || c.count < 0 || c.src_slot < 0 || c.dst_slot < 0 ||
        c.src_slot + c.count > B || c.dst_slot + c.count > B)
      return Status::out_of_range("kv pages (cuda): a slot copy leaves the pool");
    staging_.insert(staging_.end(), {c.src_block, c.src_slot, c.dst_block, c.dst_slot, c.count});
  }
  const int64_t n = static_cast<int64_t>(copies.size());
  NPR_TRY(copies_.grow(ctx_->alloc(), 20 * n, "kv pages (cuda): copy list"));
  NPR_TRY(ctx_->upload(copies_.get(), staging_.data(), 20 * n, "kv pages (cuda): copy list"));
  const int64_t unit = dev_dtype_size(t_) / 2;
  NPR_LAUNCH(static_cast<unsigned>(layers_ * 2), 256, 0, static_cast<cudaStream_t>(ctx_->stream()),
             apply_copies_kernel)
  (pages_.as<uint16_t>(), copies_.as<int32_t>(), static_cast<int32_t>(n), plane_elems() * unit,
   slot_elems() * unit, block_tokens_);
  return cuda_launch_status("kv pages (cuda): apply copies");
}

Status KvPagesCuda::write(int64_t layer, const void* k, const void* v, const int32_t* slots,
                          int64_t n) {
  if (n <= 0) return Status::ok();
  if (layer < 0 || layer >= layers_) return Status::out_of_range("kv pages (cuda): bad layer");
  const int64_t unit = dev_dtype_size(t_) / 2;
  NPR_LAUNCH(dim3(static_cast<unsigned>(n), 2), 128, 0, static_cast<cudaStream_t>(ctx_->stream()),
             write_slots_kernel)
  (static_cast<uint16_t*>(this->k(layer)), static_cast<uint16_t*>(this->v(layer)),
   static_cast<const uint16_t*>(k), static_cast<const uint16_t*>(v), slots, slot_elems() * unit);
  return cuda_launch_status("kv pages (cuda): write new tokens");
}

Status KvPagesCuda::read(int64_t layer, void* k, void* v, const int32_t* slots, int64_t n) const {
  if (n <= 0) return Status::ok();
  if (layer < 0 || layer >= layers_) return Status::out_of_range("kv pages (cuda): bad layer");
  const int64_t unit = dev_dtype_size(t_) / 2;
  NPR_LAUNCH(dim3(static_cast<unsigned>(n), 2), 128, 0, static_cast<cudaStream_t>(ctx_->stream()),
             read_slots_kernel)
  (static_cast<uint16_t*>(k), static_cast<uint16_t*>(v),
   static_cast<const uint16_t*>(this->k(layer)), static_cast<const uint16_t*>(this->v(layer)),
   slots, slot_elems() * unit);
  return cuda_launch_status("kv pages (cuda): read new tokens");
}

Status KvPagesCuda::download(int64_t layer, std::vector<float>* k, std::vector<float>* v) {
  const int64_t n = static_cast<int64_t>(num_blocks_) * block_tokens_ * slot_elems();
  for (int kv = 0; kv < 2; ++kv) {
    std::vector<float>& dst = kv == 0 ? *k : *v;
    dst.resize(static_cast<size_t>(n));
    if (t_ == DevDType::kF32) {
      NPR_TRY(ctx_->download(dst.data(), at(layer, kv), 4 * n, "kv pages (cuda): download"));
    } else {
      std::vector<uint16_t> bits(static_cast<size_t>(n));
      NPR_TRY(ctx_->download(bits.data(), at(layer, kv), 2 * n, "kv pages (cuda): download"));
      NPR_TRY(ctx_->sync("kv pages (cuda): download"));
      for (int64_t i = 0; i < n; ++i) {
        const uint32_t u = static_cast<uint32_t>(bits[i]) << 16;
        float f;
        memcpy(&f, &u, 4);
        dst[i] = f;
      }
    }
  }
  return ctx_->sync("kv pages (cuda): download");
}

namespace {

// The fastest of reps timed copies a -> b of `bytes` (after one warm-up), in ms, into *best.
Status fastest_copy_ms(cudaStream_t st, cudaEvent_t e0, cudaEvent_t e1, void* b, const void* a,
                       int64_t bytes, int reps, float* best) {
  *best = 0.0f;
  for (int r = 0; r <= reps; ++r) {  // the first copy warms up
    NPR_CUDA_TRY(cudaEventRecord(e0, st), "copy bandwidth: event");
    NPR_CUDA_TRY(cudaMemcpyAsync(b, a, static_cast<size_t>(bytes), cudaMemcpyDeviceToDevice, st),
                 "copy bandwidth: copy");
    NPR_CUDA_TRY(cudaEventRecord(e1, st), "copy bandwidth: event");
    NPR_CUDA_TRY(cudaEventSynchronize(e1), "copy bandwidth: wait");
    float ms = 0.0f;
    NPR_CUDA_TRY(cudaEventElapsedTime(&ms, e0, e1), "copy bandwidth: time");
    if (r > 0 && (*best == 0.0f || ms < *best)) *best = ms;
  }
  return Status::ok();
}

}  // namespace

Status device_copy_bandwidth(CudaContext& ctx, int64_t bytes, int reps, double* gbps) {
  DeviceBuffer a, b;
  NPR_TRY(a.grow(ctx.alloc(), bytes, "copy bandwidth: source"));
  NPR_TRY(b.grow(ctx.alloc(), bytes, "copy bandwidth: destination"));
  NPR_TRY(ctx.zero(a.get(), bytes, "copy bandwidth: clear"));
  cudaStream_t st = static_cast<cudaStream_t>(ctx.stream());
  cudaEvent_t e0, e1;
  NPR_CUDA_TRY(cudaEventCreate(&e0), "copy bandwidth: event");
  const cudaError_t made = cudaEventCreate(&e1);
  if (made != cudaSuccess) {
    cudaEventDestroy(e0);
    return cuda_status(made, "copy bandwidth: event");
  }
  float best = 0.0f;
  const Status timed = fastest_copy_ms(st, e0, e1, b.get(), a.get(), bytes, reps, &best);
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  NPR_TRY(timed);
  *gbps = best > 0.0f ? 2.0 * static_cast<double>(bytes) / (best * 1e-3) / 1e9 : 0.0;
  return Status::ok();
}

}  // namespace npr
