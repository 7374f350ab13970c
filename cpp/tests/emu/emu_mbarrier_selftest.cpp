// emu_selftest.h's run_mbarrier_selftest: one 128-thread kernel, written straight against
// emu::ptx (no kernel wraps mbarriers yet), a branch per rule of emu_mbarrier.cpp. Thread 0
// initialises an mbarrier and loads a phase's 512 bytes (one word per thread) with two bulk
// loads; every thread waits on it and checks its word.
#include <cstdint>
#include <string>
#include <vector>

#include "tests/emu/emu_ptx.h"
#include "tests/emu/emu_runtime.h"
#include "tests/emu/emu_selftest.h"

namespace emu {

namespace {

enum Kind {
  kTwoLoads,
  kSecondPhase,
  kReadBeforeWait,
  kTxNeverZero,
  kMisalignedDst,
  kMisalignedSrc,
  kBytesNot16,
  kSourceOutsideBuffers,
  kUninitialisedWait,
  kUninitialisedLoad,
  kNeverWaited,
  kCountTwo,
  kProducerNeverWaits
};
const char* const kNames[] = {"two_loads",           "second_phase",           "read_before_wait",
                              "tx_never_zero",       "misaligned_dst",         "misaligned_src",
                              "bytes_not_16",        "source_outside_buffers", "uninitialised_wait",
                              "uninitialised_load",  "never_waited",           "count_two",
                              "producer_never_waits"};

constexpr unsigned kThreads = 128;
constexpr uint32_t kLoadBytes = 256;        // one bulk load
constexpr uint32_t kPhaseWords = kThreads;  // a phase's two loads: a word per thread
constexpr uint32_t kLoadWords = kLoadBytes / 4;
constexpr int kSmem = 1024;

struct Out {
  int wrong = 0;                // words (and orders) a thread found wrong after its wait
  uint32_t early = 0;           // what thread 0 read of the destination before its wait
  bool second_arrived = false;  // count_two: the second arrival has happened
  int at_wait = 0;              // threads that have reached their phase-0 wait
};

// Thread 0's loads of one phase: src (kPhaseWords) into data, two loads on bar.
void load_phase(uint32_t data, const uint32_t* src, uint32_t bar) {
  ptx::bulk_load(data, src, kLoadBytes, bar);
  ptx::bulk_load(data + kLoadBytes, src + kLoadWords, kLoadBytes, bar);
}

// src: (2, kPhaseWords), phase 0's words then phase 1's (16-byte aligned, registered);
// stray: 16-byte aligned words in no registered buffer.
void kernel(int kind, const uint32_t* src, const uint32_t* stray, Out* out) {
  const unsigned tid = thread_idx().x;
  const uint32_t bar = shared_address(dynamic_shared());  // 16-aligned (Options)
  const uint32_t data = bar + 64;
  const auto* words = reinterpret_cast<const uint32_t*>(
      shared_bytes(data, 4 * kPhaseWords, "mbarrier self-test data"));
  if (kind == kUninitialisedWait) {
    ptx::mbarrier_wait_parity(bar, 0);
    return;
  }
  if (tid == 0) ptx::mbarrier_init(bar, kind == kCountTwo ? 2 : 1);
  sync_threads();
  // The phase before the first has completed: parity 1 returns at once. (After phase 0 ends it
  // would wait for phase 1, hence the barrier before any arrival.)
  ptx::mbarrier_wait_parity(bar, 1);
  sync_threads();
  if (kind == kProducerNeverWaits && tid < 32) {  // the producer warp leaves without waiting
    if (tid == 0) {
      ptx::mbarrier_arrive_expect_tx(bar, 2 * kLoadBytes);
      load_phase(data, src, bar);
    }
    return;
  }
  if (tid == 0) {
    const uint32_t extra = kind == kTxNeverZero ? 16 : 0;  // announced, never loaded
    ptx::mbarrier_arrive_expect_tx(bar, 2 * kLoadBytes + extra);
    if (kind == kMisalignedDst) ptx::bulk_load(data + 8, src, kLoadBytes, bar);
    if (kind == kMisalignedSrc) ptx::bulk_load(data, src + 2, kLoadBytes, bar);
    if (kind == kBytesNot16) ptx::bulk_load(data, src, 24, bar);
    if (kind == kSourceOutsideBuffers) ptx::bulk_load(data, stray, 16, bar);
    if (kind == kUninitialisedLoad) ptx::bulk_load(data, src, kLoadBytes, bar + 8);
    load_phase(data, src, bar);
    if (kind == kReadBeforeWait) out->early = words[0];
  }
  if (kind == kCountTwo && tid == 64) {  // the second arrival, from another warp
    out->second_arrived = true;
    ptx::mbarrier_arrive(bar);
  }
  if (kind == kNeverWaited) return;
  const int before = ++out->at_wait;
  ptx::mbarrier_wait_parity(bar, 0);
  // A wait that can land its own loads (the deferred mode) passes without giving way: no other
  // thread reaches its wait meanwhile.
  if (kind == kReadBeforeWait && tid == 0 && out->at_wait != before) ++out->wrong;
  if (words[tid] != src[tid]) ++out->wrong;
  if (kind == kCountTwo && !out->second_arrived) ++out->wrong;  // the phase ended too soon
  if (kind != kSecondPhase) return;
  sync_threads();  // every thread has read phase 0's words before phase 1 overwrites them
  if (tid == 0) {  // the loads before their expect_tx: the count dips below zero meanwhile
    load_phase(data, src + kPhaseWords, bar);
    ptx::mbarrier_arrive_expect_tx(bar, 2 * kLoadBytes);
  }
  ptx::mbarrier_wait_parity(bar, 1);
  if (words[tid] != src[kPhaseWords + tid]) ++out->wrong;
}

}  // namespace

std::string run_mbarrier_selftest(const std::string& kind, int* wrong, uint32_t* early) {
  constexpr int kKinds = static_cast<int>(sizeof(kNames) / sizeof(kNames[0]));
  int k = -1;
  for (int i = 0; i < kKinds; ++i)
    if (kind == kNames[i]) k = i;
  if (k < 0) return "unknown mbarrier self-test " + kind;
  struct alignas(16) Words {
    uint32_t w[2 * kPhaseWords];
  };
  Words src, stray;
  for (uint32_t i = 0; i < 2 * kPhaseWords; ++i) {
    src.w[i] = 0x1000u * (i / kPhaseWords + 1) + i;  // phase 1's words differ from phase 0's
    stray.w[i] = 0;
  }
  Out out;
  clear_globals();
  register_global(src.w, sizeof(src.w));
  const std::string fault = launch(1, kThreads, kSmem, [&] { kernel(k, src.w, stray.w, &out); });
  clear_globals();
  *wrong = out.wrong;
  *early = out.early;
  return fault;
}

}  // namespace emu
