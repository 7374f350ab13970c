// The kernel emulator (cpp/tests/emu) catches what it claims to: one small kernel per broken
// rule (emu_selftest.cpp), each failing with its reason, and a clean one computing the right
// product; in the mode where asynchronous work lands at its wait, a copy read before its wait
// reads the poison, and registers of a wgmma in flight must stay untouched. Without these, a
// kernel the emulator passes could be passing because a check never fires.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "tests/harness.h"
#if defined(NPR_HAVE_EMU)
#include "tests/emu/emu_ptx.h"
#include "tests/emu/emu_runtime.h"
#include "tests/emu/emu_selftest.h"
#endif

namespace npr::test {

#if defined(NPR_HAVE_EMU)
namespace {
// A self-test kernel that breaks a rule, the words its fault must contain, and whether it
// faults only where asynchronous work lands at its wait.
struct Expect {
  const char *kind, *fault;
  bool deferred_only;
};
}  // namespace
#endif

TEST(emu_faults_name_the_broken_rule) {
#if !defined(NPR_HAVE_EMU)
  SKIP("the kernel emulator is not built (no CUDA toolkit headers, or NPR_EMU=off)");
#else
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
      {"read_only_path_of_output", "the read-only path) of a buffer the kernel writes", false},
      {"named_barrier_counts", " in one phase", false},
      {"bulk_misaligned", "not a positive multiple of 16", false},
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
    value = 0.0f;
    CHECK(emu::run_selftest("named_barrier_halves", &value).empty());
    CHECK_MSG(value == 7.0f, "named_barrier_halves" + mode + " gave " + std::to_string(value));
    // A bulk reduction reads its source at issue or at its wait: a kernel that rewrites the
    // source before waiting adds what the deferred mode shows (2), not what it staged (1).
    value = 0.0f;
    CHECK(emu::run_selftest("bulk_read_at_wait", &value).empty());
    CHECK_MSG(value == (eager ? 1.0f : 2.0f),
              "bulk_read_at_wait" + mode + " added " + std::to_string(value));
  }
  emu::set_options(emu::Options{});
#endif
}

// Hopper mbarriers and the bulk loads they track (emu_mbarrier.cpp), in every mode: the data is
// there after the wait, a second phase works with parity 1, a count of 2 holds every thread until
// the second arrival, loads whose producer never waits still land, in the deferred mode a read
// before the wait sees the poison (the loads land at the wait), and each broken rule is a fault
// naming it, a wait that can never end the deadlock fault rather than a hang.
TEST(emu_mbarrier_bulk_loads_land_at_the_wait_and_faults_name_the_rule) {
#if !defined(NPR_HAVE_EMU)
  SKIP("the kernel emulator is not built (no CUDA toolkit headers, or NPR_EMU=off)");
#else
  const Expect faults[] = {
      {"tx_never_zero", "deadlock", false},
      {"misaligned_dst", "shared destination 216 is not 16-aligned", false},
      {"misaligned_src", "global source address", false},
      {"bytes_not_16", "cp.async.bulk of 24 bytes: the size must be a positive multiple of 16",
       false},
      {"source_outside_buffers", "cp.async.bulk source: 16 bytes of global memory outside", false},
      {"uninitialised_wait",
       "mbarrier.try_wait.parity: the mbarrier at shared address 144 was never", false},
      {"uninitialised_load", "cp.async.bulk (its mbarrier): the mbarrier at shared address 152 was",
       false},
      {"never_waited", "2 cp.async.bulk load(s) left in flight at block end", true},
  };
  const char* const clean[] = {"two_loads", "second_phase", "count_two", "producer_never_waits"};
  for (const bool eager : {false, true})
    for (const bool reverse : {false, true}) {
      emu::set_options(emu::Options{eager, reverse, 0x90u});
      const std::string mode = std::string(eager ? " (async at issue" : " (async at waits") +
                               (reverse ? ", last-first)" : ", first-first)");
      int wrong = 0;
      uint32_t early = 0;
      for (const char* kind : clean) {
        emu::ptx::reset_traffic();
        const std::string fault = emu::run_mbarrier_selftest(kind, &wrong, &early);
        CHECK_MSG(fault.empty(), std::string(kind) + mode + ": " + fault);
        CHECK_MSG(wrong == 0, std::string(kind) + mode + ": " + std::to_string(wrong) +
                                  " threads read wrong data (or passed too soon)");
        const uint64_t loaded = emu::ptx::traffic().bulk_load_bytes;
        CHECK_MSG(loaded == (std::string(kind) == "second_phase" ? 1024u : 512u),
                  std::string(kind) + mode + ": " + std::to_string(loaded) + " bulk bytes counted");
      }
      // Thread 0 reads the destination between its loads and its wait: the poison while they
      // wait for a wait, phase 0's first word when they land at issue.
      CHECK(emu::run_mbarrier_selftest("read_before_wait", &wrong, &early).empty());
      CHECK_MSG(early == (eager ? 0x1000u : 0xffffffffu),
                "read_before_wait" + mode + " read " + std::to_string(early));
      CHECK_MSG(wrong == 0, "read_before_wait" + mode +
                                ": wrong data after the wait, or a wait that gave way first");
      for (const Expect& e : faults) {
        const std::string fault = emu::run_mbarrier_selftest(e.kind, &wrong, &early);
        if (!eager && !reverse) std::printf("    %s: %s\n", e.kind, fault.c_str());
        if (eager && e.deferred_only) {
          CHECK_MSG(fault.empty(), std::string(e.kind) + mode + ": " + fault);
          continue;
        }
        CHECK_MSG(fault.find(e.fault) != std::string::npos,
                  std::string(e.kind) + mode + ": expected a fault with \"" + e.fault +
                      "\", got \"" + fault + "\"");
      }
    }
  emu::set_options(emu::Options{});
#endif
}

TEST(emu_grid_barrier_orders_the_blocks_and_times_out_instead_of_hanging) {
#if !defined(NPR_HAVE_EMU)
  SKIP("the kernel emulator is not built (no CUDA toolkit headers, or NPR_EMU=off)");
#else
  const int blocks = 6, phases = 3;
  const auto want = [&](int e) {
    int32_t s = 0;
    for (int b = 0; b < blocks; ++b) s += (e + 1) * 1000 + b;
    return s;
  };
  for (const bool eager : {false, true}) {
    emu::set_options(emu::Options{eager, eager, 0x90u});
    const std::string mode = eager ? " (last-first)" : " (first-first)";
    std::vector<int32_t> sums;
    int32_t broken[2];
    // Every block sees every block's slot of the phase: the barrier held them all.
    std::string fault = emu::run_grid_selftest("barrier", blocks, phases, &sums, broken);
    CHECK_MSG(fault.empty(), "barrier" + mode + ": " + fault);
    CHECK_MSG(broken[0] == 0 && broken[1] == 0, "barrier" + mode + ": a flag was set");
    for (int e = 0; e < phases; ++e)
      for (int b = 0; b < blocks; ++b)
        CHECK_MSG(sums[static_cast<size_t>(e * blocks + b)] == want(e),
                  "barrier" + mode + ": phase " + std::to_string(e) + " block " +
                      std::to_string(b) + " summed " +
                      std::to_string(sums[static_cast<size_t>(e * blocks + b)]));
    // Without it the blocks race (the emulator interleaves them): some sum misses a slot.
    fault = emu::run_grid_selftest("no_barrier", blocks, phases, &sums, broken);
    CHECK_MSG(fault.empty(), "no_barrier" + mode + ": " + fault);
    bool raced = false;
    for (int e = 0; e < phases; ++e)
      for (int b = 0; b < blocks; ++b)
        raced = raced || sums[static_cast<size_t>(e * blocks + b)] != want(e);
    CHECK_MSG(raced, "no_barrier" + mode + ": every sum was right without a barrier");
    // A block that never arrives: the waits time out (5 s of emulated clock), both flags are
    // set, and the launch ends instead of hanging.
    fault = emu::run_grid_selftest("missing_block", blocks, phases, &sums, broken);
    CHECK_MSG(fault.empty(), "missing_block" + mode + ": " + fault);
    CHECK_MSG(broken[0] == 1 && broken[1] == 1, "missing_block" + mode + ": flags " +
                                                    std::to_string(broken[0]) + ", " +
                                                    std::to_string(broken[1]));
  }
  emu::set_options(emu::Options{});
#endif
}

TEST(emu_static_shared_arrays_are_one_per_block_and_count_against_its_limit) {
#if !defined(NPR_HAVE_EMU)
  SKIP("the kernel emulator is not built (no CUDA toolkit headers, or NPR_EMU=off)");
#else
  std::vector<int32_t> seen;
  for (const bool reverse : {false, true}) {
    emu::set_options(emu::Options{false, reverse, 0x90u});
    const std::string fault = emu::run_static_shared_selftest(5, 1024, false, &seen);
    CHECK_MSG(fault.empty(), fault);
    for (size_t i = 0; i < seen.size(); ++i)
      CHECK_MSG(seen[i] == static_cast<int32_t>(i / 64),
                "block " + std::to_string(i / 64) + " thread " + std::to_string(i % 64) + " read " +
                    std::to_string(seen[i]) + " from its block's array");
  }
  emu::set_options(emu::Options{});
  // 160 KB of static arrays fit beside 64 KB of dynamic shared memory, not beside 96 KB.
  CHECK_MSG(emu::run_static_shared_selftest(2, 64 * 1024, true, &seen).empty(), "160 + 64 KB");
  const std::string fault = emu::run_static_shared_selftest(2, 96 * 1024, true, &seen);
  CHECK_MSG(fault.find("passes the 232448 bytes a block may have") != std::string::npos,
            "160 + 96 KB: " + fault);
#endif
}

// The emulated CUDA runtime API (emu_cuda_api.h), which the emulated launchers and CudaContext
// call, answers as the runtime does: poisoned allocations, guards that catch a write past an
// allocation's end, copies checked against their allocation, out of memory as CudaContext's
// named error, the cooperative limit, the shared-memory opt-in and the block-size limit, threads
// of 3-D blocks numbered as CUDA numbers them, a block scan and per-lane shuffles, copies through
// the page-locked staging, a kernel's fault found by the calls after its launch and sticky; and
// nothing left allocated.
TEST(emu_cuda_runtime_api_answers_as_the_cuda_runtime_does) {
#if !defined(NPR_HAVE_EMU)
  SKIP("the kernel emulator is not built (no CUDA toolkit headers, or NPR_EMU=off)");
#else
  struct ApiCase {
    const char *kind, *message;
  };
  const ApiCase cases[] = {
      {"poisoned", ""},
      {"clean", ""},
      {"error_then_launch", ""},
      {"block_3d", ""},
      {"block_scan", ""},
      {"staged_copies", ""},
      {"staged_copies_unsynced", ""},
      {"deferred", ""},
      {"eager", ""},
      {"block_too_large", "selftest 3-D block launch failed: cudaErrorInvalidValue"},
      {"grid_y_too_large", "selftest 65,536-row grid launch failed: cudaErrorInvalidConfiguration"},
      {"write_past_end",
       "selftest download failed: cudaErrorLaunchFailure (a write 0 bytes past the end of a "
       "device allocation of 256 bytes)"},
      {"fault_is_sticky",
       "launch: cudaSuccess; launch check: cudaSuccess; download: cudaErrorLaunchFailure; next "
       "launch: cudaErrorLaunchFailure; last error: cudaErrorLaunchFailure; again: "
       "cudaErrorLaunchFailure"},
      {"copy_past_end", "selftest upload failed: cudaErrorInvalidValue"},
      {"out_of_memory",
       "selftest big buffer: could not allocate 2097152 bytes on the device (1048320 bytes free "
       "of 1048576"},
      {"cooperative_too_large", "cudaErrorCooperativeLaunchTooLarge"},
      {"shared_without_opt_in", "selftest launch failed: cudaErrorInvalidValue"},
  };
  for (const ApiCase& e : cases) {
    const std::string got = emu::run_cuda_api_selftest(e.kind);
    std::printf("    %s: %s\n", e.kind, got.empty() ? "went through" : got.c_str());
    if (e.message[0] == '\0')
      CHECK_MSG(got.empty(), std::string(e.kind) + ": " + got);
    else
      CHECK_MSG(got.find(e.message) != std::string::npos &&
                    got.find("left allocated") == std::string::npos,
                std::string(e.kind) + ": got \"" + got + "\"");
  }
#endif
}

// Deferred mode runs a programmatic launch's blocks, up to their griddepcontrol.wait, against
// memory without the changes of the kernels they may overlap (emu_pdl_check.h): an early read of
// a producer's output gets the bytes from before it, a write there before the wait is a fault,
// and a read after the wait, or by a plain launch, gets the producer's.
TEST(emu_programmatic_launches_read_before_their_wait_what_was_there_before) {
#if !defined(NPR_HAVE_EMU)
  SKIP("the kernel emulator is not built (no CUDA toolkit headers, or NPR_EMU=off)");
#else
  struct PdlCase {
    const char* kind;
    float seen;
    const char* message;
  };
  const PdlCase cases[] = {
      {"read_after_wait", 2.0f, ""},
      {"read_before_wait", 1.0f, ""},
      {"untriggered", 2.0f, ""},
      {"not_programmatic", 2.0f, ""},
      {"unchecked", 2.0f, ""},
      {"chain", 1.0f, ""},
      {"chain_late", 2.0f, ""},
      {"no_wait_untriggered", 2.0f, ""},
      {"no_wait", 0.0f,
       "CUDA_ERROR: selftest out failed: cudaErrorLaunchFailure (a programmatic launch none of "
       "whose threads waited (griddepcontrol.wait) after a kernel that let it launch early "
       "(griddepcontrol.launch_dependents): it may run, and end, before that kernel)"},
      // x's first float went from 1.0f (3f800000) to 2.0f (40000000); -1.0f (bf800000) first
      // differs from the 1.0f put back in its place at its byte 3.
      {"write_before_wait", 0.0f,
       "CUDA_ERROR: selftest out failed: cudaErrorLaunchFailure (block 0: wrote, before its "
       "griddepcontrol.wait, byte 3 of a buffer of 384 bytes, which a kernel it may overlap "
       "writes too (a race on a GPU))"},
  };
  for (const PdlCase& e : cases) {
    float seen = 0.0f;
    const std::string got = emu::run_pdl_selftest(e.kind, &seen);
    std::printf("    %s: %s, read %g\n", e.kind, got.empty() ? "went through" : got.c_str(), seen);
    CHECK_MSG(got == e.message, std::string(e.kind) + ": got \"" + got + "\"");
    if (e.message[0] == '\0') CHECK_MSG(seen == e.seen, e.kind);
  }
#endif
}

}  // namespace npr::test
