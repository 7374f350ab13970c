// Small kernels that break one rule each, for the test that the emulator (emu_runtime.h,
// emu_ptx.h) catches what it claims to: each returns the launch's fault, or for the copy that
// is read before its wait, the value the kernel read.
#pragma once

#include <string>

namespace emu {

// kind: "wgmma_no_fence", "accumulator_in_flight", "a_registers_in_flight", "exit_at_barrier",
// "unpublished_cp_async", "divergent_collective", "deadlock", "shared_out_of_window",
// "copy_outside_buffers", "read_before_wait", "clean". `value` gets what read_before_wait read
// (and clean's first accumulator).
std::string run_selftest(const std::string& kind, float* value);

}  // namespace emu
