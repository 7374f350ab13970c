// DeviceDecodePlan's host side (see decode_attention_cuda.h): the plan's one fixed-capacity
// device buffer and the per-step upload of its int part. No kernels: the emulator build
// (cpp/tests/emu) runs it too.
#include <algorithm>
#include <vector>

#include "kernels/decode_attention_cuda.h"

namespace npr {

Status DeviceDecodePlan::reserve(CudaContext& ctx, int64_t n_items, int64_t n_partials,
                                 int64_t n_queries, int64_t n_indices, int64_t heads,
                                 int64_t head_dim) {
  if (buf_.get() && n_items <= cap_items_ && n_partials <= cap_partials_ &&
      n_queries <= cap_queries_ && n_indices <= cap_indices_ && heads == heads_ &&
      head_dim == head_dim_)
    return Status::ok();
  auto up = [](int64_t want, int64_t have) {  // grow by half again to keep regrowth rare
    return std::max(want, have + have / 2);
  };
  cap_items_ = up(n_items, cap_items_);
  cap_partials_ = up(n_partials, cap_partials_);
  cap_queries_ = up(n_queries, cap_queries_);
  cap_indices_ = up(n_indices, cap_indices_);
  heads_ = heads;
  head_dim_ = head_dim;
  const int64_t ints = 4 + DecodeWork::kItemFields * cap_items_ + cap_partials_ +
                       (cap_queries_ + 1) + cap_partials_ + cap_indices_;
  int_bytes_ = (4 * ints + 255) / 256 * 256;
  const int64_t floats = cap_partials_ * heads * (2 + head_dim);
  buf_.reset();
  NPR_TRY(buf_.grow(ctx.alloc(), int_bytes_ + 4 * floats, "decode attention (cuda): plan"));
  int32_t* p = buf_.as<int32_t>();
  header = p;
  items = header + 4;
  q_order = items + DecodeWork::kItemFields * cap_items_;
  merge_ptr = q_order + cap_partials_;
  merge_rows = merge_ptr + cap_queries_ + 1;
  indices = merge_rows + cap_partials_;
  part_m = reinterpret_cast<float*>(static_cast<char*>(buf_.get()) + int_bytes_);
  part_l = part_m + cap_partials_ * heads;
  part_acc = part_l + cap_partials_ * heads;
  ++generation_;
  return Status::ok();
}

Status DeviceDecodePlan::upload(CudaContext& ctx, const DecodeWork& w, const PageTable& t,
                                int64_t heads, int64_t head_dim) {
  const int64_t n_idx = t.indptr[t.sequences];
  NPR_TRY(reserve(ctx, w.n_items(), w.partials, w.queries, n_idx, heads, head_dim));
  // Up to the last index in use (indices is the last array): a one-token step after a long
  // prefill uses a small part of the capacity the prefill left.
  const int64_t used_ints = (indices - header) + n_idx;
  staging_.assign(static_cast<size_t>(used_ints), 0);
  auto put = [&](const int32_t* dst, const int32_t* src, size_t n) {
    std::copy(src, src + n, staging_.begin() + (dst - header));
  };
  staging_[0] = static_cast<int32_t>(w.n_items());
  put(items, w.items.data(), w.items.size());
  put(q_order, w.q_order.data(), w.q_order.size());
  put(merge_ptr, w.merge_ptr.data(), w.merge_ptr.size());
  put(merge_rows, w.merge_rows.data(), w.merge_rows.size());
  put(indices, t.indices, static_cast<size_t>(n_idx));
  queries_ = w.queries;
  max_rows_ = w.max_rows;
  items_ = w.n_items();
  chunk_rows_ = w.chunk_rows;
  return ctx.upload(header, staging_.data(), 4 * used_ints, "decode attention (cuda): plan");
}

}  // namespace npr
