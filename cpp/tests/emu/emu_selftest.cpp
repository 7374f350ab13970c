// emu_selftest.h in the emulator build: one 128-thread kernel, a branch per broken rule, built
// from the same wrappers (kernels/wgmma.cuh, kernels/mma_bf16.cuh) the attention kernels use.
#include "tests/emu/emu_selftest.h"

#include <vector>

#include "core/dynamic_shared.cuh"
#include "core/grid_barrier.cuh"
#include "kernels/bulk_reduce.cuh"
#include "kernels/mma_bf16.cuh"
#include "kernels/named_barrier.cuh"
#include "kernels/pdl.cuh"
#include "kernels/wgmma.cuh"

namespace emu {

namespace {

enum Kind {
  kClean,
  kNoFence,
  kAccInFlight,
  kARegsInFlight,
  kExitAtBarrier,
  kUnpublished,
  kDivergent,
  kDeadlock,
  kOutOfWindow,
  kOutsideBuffers,
  kReadBeforeWait,
  kReadOnlyOfOutput,
  kNamedCounts,
  kNamedHalves,
  kBulkReadAtWait,
  kBulkMisaligned
};
constexpr int kTileBytes = 64 * 64 * 2;  // one (64, 64) bf16 sw128 tile
constexpr int kSmem = 2 * kTileBytes + 1024;

// src: (64, 64) fp32 ones; out: 1 float; sums: 4 floats (16-byte aligned, zeros).
void selftest_kernel(int kind, const __nv_bfloat16* src, float* out, float* sums) {
  NPR_DYNAMIC_SHARED(smem_raw);
  const uint32_t raw = static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw));
  const uint32_t base = (raw + 1023u) & ~1023u;
  const int tid = static_cast<int>(threadIdx.x);
  float* const stage = reinterpret_cast<float*>(smem_raw + (base - raw));  // 1024-aligned
  if (kind == kNamedCounts) {  // warps 0 and 2 say 64 threads, 1 and 3 say 128
    npr::named_barrier::sync(1, (tid / 32) % 2 == 0 ? 64 : 128);
    return;
  }
  if (kind == kNamedHalves) {  // each half meets at its own barrier, from its own code
    if (tid < 64) {
      if (tid == 0) stage[0] = 1.0f;
      npr::named_barrier::sync(1, 64);
      if (tid == 63) stage[1] = stage[0] + 1.0f;
      npr::named_barrier::sync(1, 64);
    } else {
      npr::named_barrier::sync(2, 64);
      if (tid == 127) stage[2] = 5.0f;
      npr::named_barrier::sync(2, 64);
    }
    __syncthreads();
    if (tid == 0) *out = stage[1] + stage[2];  // 7
    return;
  }
  if (kind == kBulkReadAtWait || kind == kBulkMisaligned) {
    if (tid < 4) stage[tid] = 1.0f;
    npr::wgmma::fence_proxy_async_shared();
    __syncthreads();
    if (tid == 0) {
      npr::bulk::add_f32(sums, base, kind == kBulkMisaligned ? 8u : 16u);
      npr::bulk::commit();
      stage[0] = 2.0f;  // before the wait: the copy engine may not have read it yet
      npr::bulk::wait_read<0>();
      npr::bulk::wait_all<0>();
    }
    return;
  }
  if (kind == kExitAtBarrier) {
    if (tid < 64) __syncthreads();
    return;
  }
  if (kind == kDivergent) {
    if (tid % 32 < 16)
      (void)__shfl_xor_sync(0xffffffffu, 1.0f, 1);
    else
      (void)__any_sync(0xffffffffu, true);
    return;
  }
  if (kind == kDeadlock) {
    if (tid % 32 < 16)
      (void)__shfl_xor_sync(0xffffffffu, 1.0f, 1);
    else
      __syncthreads();
    return;
  }
  if (kind == kOutOfWindow) {
    uint32_t r[4];
    npr::ldmatrix_x4(r, smem_raw + kSmem + 16 * (tid % 32));
    return;
  }
  if (kind == kReadOnlyOfOutput) {  // out is written by the kernel
    if (tid == 0) *out = __ldg(out) + 1.0f;
    return;
  }
  if (kind == kOutsideBuffers) {
    npr::wgmma::load_tile_sw128<64, 64, 128>(base, src + 64 * 64, 64, 64, tid);
    npr::cp_async_commit();
    npr::cp_async_wait<0>();
    return;
  }
  // A and B tiles of ones by cp.async (zero fill past nothing), then D = A B^T.
  npr::wgmma::load_tile_sw128<64, 64, 128>(base, src, 64, 64, tid);
  npr::wgmma::load_tile_sw128<64, 64, 128>(base + kTileBytes, src, 64, 64, tid);
  npr::cp_async_commit();
  if (kind == kReadBeforeWait) {
    if (tid == 0)
      *out = __bfloat162float(*reinterpret_cast<const __nv_bfloat16*>(smem_raw + (base - raw)));
    npr::cp_async_wait<0>();
    return;
  }
  npr::cp_async_wait<0>();
  if (kind != kUnpublished) npr::wgmma::fence_proxy_async_shared();
  __syncthreads();
  float acc[8][4] = {};
  uint32_t a[4] = {0x3f803f80u, 0x3f803f80u, 0x3f803f80u, 0x3f803f80u};  // bf16 ones
  if (kind != kNoFence) npr::wgmma::fence();
  const uint64_t ad = npr::wgmma::k_major_desc(base, 64, 0);
  const uint64_t bd = npr::wgmma::k_major_desc(base + kTileBytes, 64, 0);
  if (kind == kARegsInFlight)
    npr::wgmma::wgmma_m64n64k16_rs_tb(acc, a, npr::wgmma::n_major_desc(base + kTileBytes, 64, 0));
  else
    npr::wgmma::wgmma_m64n64k16_ss_first(acc, ad, bd);
  npr::wgmma::commit();
  if (kind == kAccInFlight) acc[0][0] += 1.0f;
  if (kind == kARegsInFlight) a[0] = 0;
  npr::wgmma::wait<0>();
  if (tid == 0) *out = acc[0][0];
}

}  // namespace

std::string run_selftest(const std::string& kind, float* value) {
  static const char* const names[] = {"clean",
                                      "wgmma_no_fence",
                                      "accumulator_in_flight",
                                      "a_registers_in_flight",
                                      "exit_at_barrier",
                                      "unpublished_cp_async",
                                      "divergent_collective",
                                      "deadlock",
                                      "shared_out_of_window",
                                      "copy_outside_buffers",
                                      "read_before_wait",
                                      "read_only_path_of_output",
                                      "named_barrier_counts",
                                      "named_barrier_halves",
                                      "bulk_read_at_wait",
                                      "bulk_misaligned"};
  constexpr int kKinds = static_cast<int>(sizeof(names) / sizeof(names[0]));
  int k = -1;
  for (int i = 0; i < kKinds; ++i)
    if (kind == names[i]) k = i;
  if (k < 0) return "unknown self-test " + kind;
  std::vector<__nv_bfloat16> src(64 * 64, __float2bfloat16(1.0f));
  alignas(16) float sums[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  clear_globals();
  register_global(src.data(), src.size() * sizeof(src[0]));
  register_global(value, sizeof(float), true);
  register_global(sums, sizeof(sums), true);
  const std::string fault =
      launch(1, 128, kSmem, [&] { selftest_kernel(k, src.data(), value, sums); });
  clear_globals();
  if (k == kBulkReadAtWait) *value = sums[0];
  return fault;
}

namespace {

// slots, sums: (phases, gridDim.x).
void grid_kernel(npr::grid::Barrier bar, int phases, int32_t* slots, int32_t* sums, bool barrier,
                 int missing) {
  if (static_cast<int>(blockIdx.x) == missing) return;  // never arrives
  uint32_t epoch = 0;
  const int n = static_cast<int>(gridDim.x);
  for (int e = 0; e < phases; ++e) {
    if (threadIdx.x == 0) slots[e * n + blockIdx.x] = (e + 1) * 1000 + static_cast<int>(blockIdx.x);
    if (barrier) npr::grid::sync(bar, epoch);
    if (threadIdx.x == 0) {
      int32_t s = 0;
      for (int b = 0; b < n; ++b) s += slots[e * n + b];
      sums[e * n + blockIdx.x] = s;
    }
  }
}

}  // namespace

std::string run_grid_selftest(const std::string& kind, int blocks, int phases,
                              std::vector<int32_t>* sums, int32_t broken[2]) {
  if (kind != "barrier" && kind != "no_barrier" && kind != "missing_block")
    return "unknown grid self-test " + kind;
  std::vector<int32_t> slots(static_cast<size_t>(phases * blocks), 0);
  sums->assign(static_cast<size_t>(phases * blocks), -1);
  uint32_t count = 0;
  broken[0] = broken[1] = 0;
  const npr::grid::Barrier bar{&count, &broken[0], &broken[1], 5000000000ull};
  clear_globals();
  register_global(slots.data(), slots.size() * 4);
  register_global(sums->data(), sums->size() * 4);
  register_global(&count, 4);
  const std::string fault = launch_cooperative(static_cast<unsigned>(blocks), 64, 0, [&] {
    grid_kernel(bar, phases, slots.data(), sums->data(), kind != "no_barrier",
                kind == "missing_block" ? 1 : -1);
  });
  clear_globals();
  return fault;
}

namespace {

// Two static arrays: threads 0..3 of each block write their block's id into `ids`, every thread
// then reads its slot back (after the barrier) into seen (blocks, threads); `big` (bytes of its
// own) is only touched, to ask for room.
constexpr int kBigBytes = 160 * 1024;
void static_shared_kernel(int32_t* seen, bool big) {
  NPR_STATIC_SHARED(int32_t, ids, [4]);
  if (threadIdx.x < 4) ids[threadIdx.x] = static_cast<int32_t>(blockIdx.x);
  if (big) {
    NPR_STATIC_SHARED(unsigned char, room, [kBigBytes]);
    room[threadIdx.x] = 1;
  }
  __syncthreads();
  seen[blockIdx.x * blockDim.x + threadIdx.x] = ids[threadIdx.x % 4];
}

}  // namespace

std::string run_static_shared_selftest(int blocks, int dynamic_smem, bool big,
                                       std::vector<int32_t>* seen) {
  seen->assign(static_cast<size_t>(blocks * 64), -1);
  clear_globals();
  register_global(seen->data(), seen->size() * 4, true);
  const std::string fault = launch_cooperative(static_cast<unsigned>(blocks), 64, dynamic_smem,
                                               [&] { static_shared_kernel(seen->data(), big); });
  clear_globals();
  return fault;
}

std::string run_prefetch_share(int64_t offset, int64_t bytes, int grid, int threads,
                               std::vector<uint64_t>* lines) {
  // 128-byte aligned storage with room for the offset and a line after the range.
  std::vector<uint64_t> store(static_cast<size_t>((offset + bytes) / 8 + 48));
  const uintptr_t base = (reinterpret_cast<uintptr_t>(store.data()) + 127) & ~uintptr_t{127};
  const char* p = reinterpret_cast<const char*>(base) + offset;
  clear_globals();
  if (bytes > 0) register_global(p, static_cast<size_t>(bytes));
  ptx::record_prefetches(true);
  const std::string fault = launch(static_cast<unsigned>(grid), static_cast<unsigned>(threads), 0,
                                   [&] { npr::pdl::prefetch_l2_share(p, bytes); });
  ptx::record_prefetches(false);
  clear_globals();
  const uint64_t first = reinterpret_cast<uintptr_t>(p) / 128;
  lines->clear();
  for (uint64_t l : ptx::prefetched_lines()) lines->push_back(l - first);
  return fault;
}

}  // namespace emu
