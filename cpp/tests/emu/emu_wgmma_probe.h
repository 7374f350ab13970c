// The wgmma probe's kernel (kernels/wgmma_probe_kernel.cuh) under the emulator, for
// test_emu_wgmma_probe.cpp: kind a kernels/wgmma_probe.h WgmmaProbe value, a, b bf16 bits, d
// the probe's fp32 output (its size as that header says); "" or the fault.
#pragma once

#include <cstdint>
#include <string>

namespace emu {

std::string wgmma_probe(int kind, const uint16_t* a, size_t a_elems, const uint16_t* b,
                        size_t b_elems, float* d, size_t d_elems);

}  // namespace emu
