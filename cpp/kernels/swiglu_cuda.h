// SwiGLU on the device (CUDA twin of swiglu.h), elementwise in fp32 over type-t buffers.
#pragma once

#include <cstdint>

#include "core/cuda_context.h"
#include "core/status.h"

namespace npr {

// h (n) <- silu(gate) * up.
Status swiglu_forward_cuda(CudaContext& ctx, DevDType t, void* h, const void* gate, const void* up,
                           int64_t n);
// dgate, dup (n) <- dh, gate, up; dgate/dup may alias gate/up (each element read before written).
Status swiglu_backward_cuda(CudaContext& ctx, DevDType t, void* dgate, void* dup, const void* dh,
                            const void* gate, const void* up, int64_t n);

}  // namespace npr
