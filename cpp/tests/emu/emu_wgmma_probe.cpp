// emu_wgmma_probe.h in the emulator build: the probe kernel on one block of 128 threads, as
// wgmma_probe_sm90a.cu launches it.
#include "tests/emu/emu_wgmma_probe.h"

#include "kernels/wgmma_probe_kernel.cuh"
#include "tests/emu/emu_runtime.h"

namespace emu {

std::string wgmma_probe(int kind, const uint16_t* a, size_t a_elems, const uint16_t* b,
                        size_t b_elems, float* d, size_t d_elems) {
  clear_globals();
  register_global(a, a_elems * 2);
  register_global(b, b_elems * 2);
  register_global(d, d_elems * 4, true);
  const std::string fault =
      launch(1, 128, 0, [&] { npr::wgmma_probe_dev::probe_kernel(kind, a, b, d); });
  clear_globals();
  return fault;
}

}  // namespace emu
