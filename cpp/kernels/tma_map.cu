// make_tma_map_bf16_2d (tma_map.h): cuTensorMapEncodeTiled, found once through the runtime's
// driver entry point; in the emulator build, the emulator's encoding (emu_ptx.h TensorMap2d).
#include "kernels/tma_map.h"

#include <cstring>
#include <string>

#if !defined(NPR_EMU)  // the emulator build has emu::ptx force-included (cuda_emu.h)
#include <cuda.h>
#include <cuda_runtime.h>

#include <mutex>

#include "core/cuda_check.cuh"
#endif

namespace npr {

namespace {

Status check_args(const void* base, int64_t inner, int64_t rows, int64_t ld, int box_rows) {
  const std::string what = "make_tma_map_bf16_2d: ";
  if (base == nullptr || reinterpret_cast<uintptr_t>(base) % 16 != 0)
    return Status::invalid(what + "the base address must be non-null and 16-byte aligned");
  if (inner < 64 || rows < 1 || ld < inner || ld % 8 != 0)
    return Status::invalid(what + "inner " + std::to_string(inner) + ", rows " +
                           std::to_string(rows) + ", ld " + std::to_string(ld) +
                           " (inner >= 64, rows >= 1, ld >= inner and a multiple of 8)");
  if (box_rows < 1 || box_rows > 256)
    return Status::invalid(what + "box rows " + std::to_string(box_rows) + " (1..256)");
  if (rows > (int64_t{1} << 32) || ld * 2 >= (int64_t{1} << 40))
    return Status::out_of_range(what + "the matrix is past what a tensor map addresses");
  return Status::ok();
}

#if !defined(NPR_EMU)
using EncodeTiled = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*,
                                 const cuuint64_t*, const cuuint64_t*, const cuuint32_t*,
                                 const cuuint32_t*, CUtensorMapInterleave, CUtensorMapSwizzle,
                                 CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

// The driver's encoder, looked up once; null with the reason in *why where the driver lacks it.
EncodeTiled encoder(std::string* why) {
  static std::once_flag once;
  static EncodeTiled fn = nullptr;
  static std::string err;
  std::call_once(once, [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
#if CUDART_VERSION >= 12050
    const cudaError_t e = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000,
                                                           cudaEnableDefault, &q);
#else
    const cudaError_t e = cudaGetDriverEntryPoint("cuTensorMapEncodeTiled", &p, cudaEnableDefault, &q);
#endif
    if (e != cudaSuccess || q != cudaDriverEntryPointSuccess || p == nullptr) {
      (void)cudaGetLastError();
      err = std::string("the CUDA driver has no cuTensorMapEncodeTiled (") + cudaGetErrorName(e) +
            ", query result " + std::to_string(static_cast<int>(q)) + ")";
      return;
    }
    fn = reinterpret_cast<EncodeTiled>(p);
  });
  if (!fn) *why = err;
  return fn;
}
#endif

}  // namespace

Status make_tma_map_bf16_2d(TmaMap2d* out, const void* base, int64_t inner, int64_t rows,
                            int64_t ld, int box_rows) {
  NPR_TRY(check_args(base, inner, rows, ld, box_rows));
#if defined(NPR_EMU)
  emu::ptx::TensorMap2d t{};
  t.magic = emu::ptx::TensorMap2d::kMagic;
  t.elem_bytes = 2;
  t.base = base;
  t.inner = inner;
  t.rows = rows;
  t.row_bytes = ld * 2;
  t.box_inner = 64;
  t.box_rows = box_rows;
  static_assert(sizeof(t) <= sizeof(TmaMap2d), "the emulator's map fits a CUtensorMap");
  std::memset(out->bytes, 0, sizeof(out->bytes));
  std::memcpy(out->bytes, &t, sizeof(t));
  return Status::ok();
#else
  static_assert(sizeof(CUtensorMap) == sizeof(TmaMap2d), "TmaMap2d holds a CUtensorMap");
  std::string why;
  const EncodeTiled encode = encoder(&why);
  if (!encode) return Status::unavailable("make_tma_map_bf16_2d: " + why);
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(inner), static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(ld * 2)};  // bytes, dims 1..
  const cuuint32_t box[2] = {64, static_cast<cuuint32_t>(box_rows)};
  const cuuint32_t steps[2] = {1, 1};
  auto* map = reinterpret_cast<CUtensorMap*>(out->bytes);
  const CUresult r =
      encode(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<void*>(base), dims, strides, box,
             steps, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
             CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    return Status::internal("make_tma_map_bf16_2d: cuTensorMapEncodeTiled failed with CUresult " +
                            std::to_string(static_cast<int>(r)));
  return Status::ok();
#endif
}

bool tma_maps_available() {
#if defined(NPR_EMU)
  return true;
#else
  std::string why;
  return encoder(&why) != nullptr;
#endif
}

}  // namespace npr
