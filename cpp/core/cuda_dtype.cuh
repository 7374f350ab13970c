// Inside .cu files only: loads and stores of the device element types through fp32, so one
// kernel template serves the fp32 mode (T = float) and the bf16 mode (T = __nv_bfloat16).
#pragma once

#include <cuda_bf16.h>

namespace npr {

__device__ __forceinline__ float to_f32(float x) {
  return x;
}
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) {
  return __bfloat162float(x);
}

template <typename T>
__device__ __forceinline__ T from_f32(float x);
template <>
__device__ __forceinline__ float from_f32<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

}  // namespace npr
