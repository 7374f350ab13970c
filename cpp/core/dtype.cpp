#include "core/dtype.h"

namespace npr {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "f32";
    case DType::kBF16: return "bf16";
    case DType::kI32: return "i32";
  }
  return "unknown";
}

}  // namespace npr
