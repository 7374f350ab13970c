// The emulator build's own (namespace npr is npr_emu there): an AttentionPlan's arrays and the
// dims as the backward kernels' PlanView and Dims, for emu_attention.cpp and
// emu_attention_backward.cpp.
#pragma once

#include "kernels/parallel_attention_bwd.cuh"
#include "tests/emu/emu_attention.h"

namespace emu {

struct BwdArgs {
  npr::attn_bwd::PlanView p;
  npr::attn_bwd::Dims d;
};
BwdArgs bwd_args(const PlanArrays& a, const AttnDims& d);

}  // namespace emu
