// The kernel emulator (cpp/tests/emu) catches what it claims to: one small kernel per broken
// rule (emu_selftest.cpp), each failing with its reason, and a clean one computing the right
// product; in the mode where asynchronous work lands at its wait, a copy read before its wait
// reads the poison, and registers of a wgmma in flight must stay untouched. Without these, a
// kernel the emulator passes could be passing because a check never fires.
#include <cmath>
#include <string>

#include "tests/harness.h"
#if defined(NPR_HAVE_EMU)
#include "tests/emu/emu_runtime.h"
#include "tests/emu/emu_selftest.h"
#endif

namespace npr::test {

TEST(emu_faults_name_the_broken_rule) {
#if !defined(NPR_HAVE_EMU)
  SKIP("the build found no CUDA toolkit headers (cuda_bf16.h): the kernel emulator is not built");
#else
  struct Expect {
    const char *kind, *fault;
    bool deferred_only;
  };
  const Expect cases[] = {
      {"wgmma_no_fence", "no wgmma.fence", false},
      {"accumulator_in_flight", "changed the accumulator registers", true},
      {"a_registers_in_flight", "changed the A registers", true},
      {"exit_at_barrier", "left the kernel", false},
      {"unpublished_cp_async", "no fence.proxy.async", false},
      {"divergent_collective", "divergent collective", false},
      {"deadlock", "deadlock", false},
      {"shared_out_of_window", "outside the block's dynamic shared memory", false},
      {"copy_outside_buffers", "outside every buffer", false},
  };
  for (const bool eager : {false, true}) {
    emu::set_options(emu::Options{eager, eager, eager ? 0x410u : 0x90u});
    const std::string mode = eager ? " (async at issue)" : " (async at waits)";
    for (const Expect& e : cases) {
      float value = 0.0f;
      const std::string fault = emu::run_selftest(e.kind, &value);
      if (eager && e.deferred_only) {
        CHECK_MSG(fault.empty(), std::string(e.kind) + mode + ": " + fault);
        continue;
      }
      CHECK_MSG(fault.find(e.fault) != std::string::npos,
                std::string(e.kind) + mode + ": expected a fault with \"" + e.fault + "\", got \"" +
                    fault + "\"");
    }
    float value = 0.0f;
    CHECK_MSG(emu::run_selftest("clean", &value).empty(), "clean" + mode);
    CHECK_MSG(value == 16.0f,
              "clean" + mode + ": ones times ones over k 16 gave " + std::to_string(value));
    value = 0.0f;
    CHECK(emu::run_selftest("read_before_wait", &value).empty());
    // Landing at the wait, the copy is not there yet: the poison (NaN) is read.
    CHECK_MSG(eager ? value == 1.0f : std::isnan(value),
              "read_before_wait" + mode + " read " + std::to_string(value));
  }
  emu::set_options(emu::Options{});
#endif
}

}  // namespace npr::test
