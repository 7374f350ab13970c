// Small kernels that break one rule each, for the test that the emulator (emu_runtime.h,
// emu_ptx.h) catches what it claims to: each returns the launch's fault, or for the copy that
// is read before its wait, the value the kernel read.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace emu {

// kind: "wgmma_no_fence", "accumulator_in_flight", "a_registers_in_flight", "exit_at_barrier",
// "unpublished_cp_async", "divergent_collective", "deadlock", "shared_out_of_window",
// "copy_outside_buffers", "read_before_wait", "read_only_path_of_output",
// "named_barrier_counts" (warps name two thread counts for one barrier), "bulk_misaligned" (an
// 8-byte bulk reduction), "clean"; and with a value: "named_barrier_halves" (the two halves of
// the block each meet at a barrier of their own, from different code: 7), "bulk_read_at_wait"
// (a bulk reduction of 1.0 whose source becomes 2.0 before its wait: what it added). `value`
// gets what read_before_wait read (and clean's first accumulator).
std::string run_selftest(const std::string& kind, float* value);

// Hopper mbarriers and bulk loads (emu_ptx.h), one 128-thread block: thread 0 initialises an
// mbarrier and loads a phase's 512 bytes with two bulk loads, every thread waits and checks its
// word. kind: "two_loads"; "second_phase" (a second phase on the same mbarrier, waited with
// parity 1, its loads issued before their expect_tx); "read_before_wait" (thread 0 reads the
// destination between its loads and its wait: `early` gets what it read; its wait must land
// the loads itself, passing with no other thread moving meanwhile); "count_two" (count 2,
// the second arrival from thread 64: no thread may pass before it); "producer_never_waits" (the
// producer warp leaves, the others wait: the loads must still land); faults: "tx_never_zero"
// (16 bytes more announced than loaded: a deadlock), "misaligned_dst", "misaligned_src",
// "bytes_not_16", "source_outside_buffers", "uninitialised_wait", "uninitialised_load",
// "never_waited" (nobody waits: loads left in flight). wrong gets how many threads found their
// word (or the arrival order) wrong after a wait.
std::string run_mbarrier_selftest(const std::string& kind, int* wrong, uint32_t* early);

// The grid barrier of the one-kernel decode step (core/grid_barrier.cuh), cooperatively
// launched over `blocks` blocks: each block's thread 0 writes a slot per phase, passes the
// barrier, and sums every block's slot of that phase into sums (phases, blocks). kind:
// "barrier"; "no_barrier" (the sums race); "missing_block" (block 1 never arrives: the barrier
// must time out, set the flags and let the rest finish). broken: the device and the host flag.
std::string run_grid_selftest(const std::string& kind, int blocks, int phases,
                              std::vector<int32_t>* sums, int32_t broken[2]);

// Static __shared__ arrays (NPR_STATIC_SHARED) over `blocks` resident blocks of 64 threads:
// seen (blocks, 64) gets, per thread, what its block wrote into a 4-slot array (its block id).
// big: a second array of 160 KB as well, which with `dynamic_smem` bytes may pass a block's
// limit (then the fault).
std::string run_static_shared_selftest(int blocks, int dynamic_smem, bool big,
                                       std::vector<int32_t>* seen);

// The emulated runtime API (emu_cuda_api.h) answering as the CUDA runtime would, through
// CudaContext where the product goes through it. kind: "poisoned" (a fresh allocation reads
// 0xff), "write_past_end" (a kernel writes one float past an allocation), "copy_past_end" (an
// upload longer than its allocation), "out_of_memory" (more than the device's 1 MB),
// "cooperative_too_large" (one block more than the device holds at once),
// "shared_without_opt_in" (64 KB of dynamic shared memory without the attribute),
// "error_then_launch" (a failed upload, then a launch that must go through: the upload's error
// is not left for the launch's check), "fault_is_sticky" (a kernel writes past its buffer: what
// the launch, the checks and the calls after it return, in order), "block_3d" (a block of (8, 4, 2)
// threads, numbered and grouped into warps as CUDA does), "block_scan" (core/block_reduce.cuh's
// block_exclusive_sum against a running sum, and a shuffle where each lane names its own source
// lane), "staged_copies" (uploads and downloads through the page-locked staging, sources reused
// at once, the ring coming round, a copy too large for it), "block_too_large" (2048 threads a
// block),
// "clean" (a cooperative launch that fits, its result read back). Returns the Status's or the
// launch's message, "" when all went through; afterwards nothing may stay allocated.
std::string run_cuda_api_selftest(const std::string& kind);

// A producer writes x = 2 (x held 1), letting its dependents launch first thing, then a
// programmatic consumer reads x and writes what it read into every thread's output; *seen gets
// that value. kind: "read_after_wait" (2), "read_before_wait" (1: the consumer may run before the
// producer has), "untriggered" (read before the wait, but the producer never lets the consumer
// launch early: 2), "not_programmatic"
// (read before the wait, but launched plainly: 2), "unchecked" (read_before_wait with the check
// off: 2), "write_before_wait" (the consumer writes x before its wait: the fault), "chain" (a
// programmatic kernel between, which lets its dependents launch before it waits: the consumer's
// early read may still overlap the producer, 1), "chain_late" (that kernel lets them launch only
// after its wait: 2), "no_wait" (the producer lets the consumer launch early and no consumer
// thread waits: the fault), "no_wait_untriggered" (the same where the producer does not: 2).
// Returns "" or the launch's or a check's message.
std::string run_pdl_selftest(const std::string& kind, float* seen);

// pdl::prefetch_l2_share over `grid` blocks of `threads`: each block prefetches its share of
// bytes `bytes` starting `offset` bytes into a buffer (only those bytes registered as global, so a
// prefetch outside them faults). lines gets the 128-byte lines touched, numbered from the line
// holding the range's first byte (so the range's own lines are 0 .. (offset % 128 + bytes - 1) /
// 128).
std::string run_prefetch_share(int64_t offset, int64_t bytes, int grid, int threads,
                               std::vector<uint64_t>* lines);

}  // namespace emu
