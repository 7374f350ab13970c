// TensorView: a non-owning view of a strided n-d array (pointer, shape, strides, dtype).
//
// Strides are in elements, not bytes. A view never allocates or frees; ownership stays with
// whoever made the buffer (a JS typed array, the model's arena, a device allocator). Checks
// return a Status naming the tensor so that callers can pass errors straight to the user.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>

#include "core/dtype.h"
#include "core/status.h"

namespace npr {

constexpr int kMaxDims = 6;

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::kF32;
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};  // elements

  // A contiguous row-major view over `data` with the given shape.
  static TensorView contiguous(void* data, DType dtype, std::initializer_list<int64_t> shape);

  int64_t numel() const;
  bool is_contiguous() const;
  // "[2, 3] f32", for messages.
  std::string describe() const;

  template <typename T>
  T* as() const {
    return static_cast<T*>(data);
  }
};

// Ok when `t` has dtype `dtype` and exactly `shape`; otherwise an InvalidArgument naming `name`.
Status check_tensor(const TensorView& t, const char* name, DType dtype,
                    std::initializer_list<int64_t> shape);

// a * b for non-negative sizes, or false when the product overflows int64.
bool mul_overflows(int64_t a, int64_t b, int64_t* out);

}  // namespace npr
