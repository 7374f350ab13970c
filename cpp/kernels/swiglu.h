// SwiGLU activation of the MLP: h = silu(gate) * up, silu(g) = g * sigmoid(g).
// Backward: dgate = dh * up * sigmoid(g) * (1 + g * (1 - sigmoid(g))), dup = dh * silu(g).
#pragma once

#include <cstdint>

#include "core/cpu_info.h"

namespace npr {

// h (n) <- gate (n), up (n): elementwise over n = tokens * intermediate.
void swiglu_forward(const CpuContext& ctx, float* h, const float* gate, const float* up, int64_t n);
// h (rows, inter) <- gu (rows, 2 * inter): each row's gate then its up, as one GEMM against the
// stacked gate and up weights writes them (the decode step's fused projection).
void swiglu_forward_stacked(const CpuContext& ctx, float* h, const float* gu, int64_t rows,
                            int64_t inter);
// dgate, dup (n) <- dh, gate, up. dgate/dup may alias gate/up only if the caller no longer
// needs them (they are read before written, element by element).
void swiglu_backward(const CpuContext& ctx, float* dgate, float* dup, const float* dh,
                     const float* gate, const float* up, int64_t n);

void swiglu_forward_reference(float* h, const float* gate, const float* up, int64_t n);
void swiglu_backward_reference(float* dgate, float* dup, const float* dh, const float* gate,
                               const float* up, int64_t n);

}  // namespace npr
