#include "core/tensor.h"

#include <limits>

namespace npr {

TensorView TensorView::contiguous(void* data, DType dtype, std::initializer_list<int64_t> shape) {
  TensorView t;
  t.data = data;
  t.dtype = dtype;
  t.ndim = static_cast<int>(shape.size());
  int i = 0;
  for (int64_t s : shape) t.shape[i++] = s;
  int64_t stride = 1;
  for (int d = t.ndim - 1; d >= 0; --d) {
    t.strides[d] = stride;
    stride *= t.shape[d];
  }
  return t;
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int d = 0; d < ndim; ++d) n *= shape[d];
  return n;
}

bool TensorView::is_contiguous() const {
  int64_t stride = 1;
  for (int d = ndim - 1; d >= 0; --d) {
    if (shape[d] != 1 && strides[d] != stride) return false;
    stride *= shape[d];
  }
  return true;
}

std::string TensorView::describe() const {
  std::string s = "[";
  for (int d = 0; d < ndim; ++d) {
    if (d) s += ", ";
    s += std::to_string(shape[d]);
  }
  return s + "] " + dtype_name(dtype);
}

Status check_tensor(const TensorView& t, const char* name, DType dtype,
                    std::initializer_list<int64_t> shape) {
  bool same = t.dtype == dtype && t.ndim == static_cast<int>(shape.size());
  int d = 0;
  for (int64_t s : shape) {
    if (!same) break;
    same = t.shape[d++] == s;
  }
  if (same) return Status::ok();
  TensorView want;
  want.dtype = dtype;
  want.ndim = static_cast<int>(shape.size());
  d = 0;
  for (int64_t s : shape) want.shape[d++] = s;
  return Status::invalid(std::string(name) + ": expected " + want.describe() + ", got " +
                         t.describe());
}

bool mul_overflows(int64_t a, int64_t b, int64_t* out) {
  if (a < 0 || b < 0) return true;
  if (a != 0 && b > std::numeric_limits<int64_t>::max() / a) return true;
  *out = a * b;
  return false;
}

}  // namespace npr
