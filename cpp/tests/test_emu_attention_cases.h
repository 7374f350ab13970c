// What the emulated attention tests share (test_emu_attention.cpp, test_emu_attention_cuda.cpp):
// bf16 bits, the plan's arrays for the emulator, the two emulator modes, the random Structures
// and inputs, the CPU references, and the registration of a test's buffers. Emulator builds only.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/parallel_attention.h"
#include "tests/emu/emu_attention.h"
#include "tests/emu/emu_runtime.h"
#include "tests/harness.h"
#include "tests/test_structures.h"
#include "tests/test_util.h"

namespace npr::test {

inline std::vector<uint16_t> bits_of(const std::vector<float>& v) {
  std::vector<uint16_t> b(v.size());
  for (size_t i = 0; i < v.size(); ++i) b[i] = f32_to_bf16(v[i]).bits;
  return b;
}
inline std::vector<float> floats_of(const std::vector<uint16_t>& b) {
  std::vector<float> v(b.size());
  for (size_t i = 0; i < b.size(); ++i) v[i] = bf16_to_f32(bf16{b[i]});
  return v;
}

inline emu::PlanArrays arrays_of(const AttentionPlan& p) {
  static_assert(sizeof(AttnTilePair) == 8, "AttnTilePair is two int32");
  return emu::PlanArrays{p.seq_start.data(),
                         p.seq_len.data(),
                         p.seq_tile0.data(),
                         p.tile_seq.data(),
                         p.row_ptr.data(),
                         p.col_ptr.data(),
                         reinterpret_cast<const int32_t*>(p.row_pairs.data()),
                         reinterpret_cast<const int32_t*>(p.col_pairs.data()),
                         p.masks.data(),
                         p.tiles,
                         p.tokens,
                         static_cast<int64_t>(p.seq_start.size()),
                         static_cast<int64_t>(p.masks.size()) / kAttnTile};
}

struct Mode {
  emu::Options opt;
  const char* name;
};
// Both kinds of asynchronous work at their waits (what a wgmma's registers may not be touched
// while it is in flight is checked there); then copies at issue with the MMAs still at their
// waits and the threads last-first: a stage buffer refilled while an MMA in flight reads it
// changes the result.
inline const Mode kModes[] = {
    {emu::Options{false, false, 0x90}, "async at waits"},
    {emu::Options{true, true, 0x410, true}, "copies at issue, MMAs at waits, threads last-first"}};

// Odd lengths (short last tiles, single tokens) and random Structures, small enough that the
// emulated kernels take seconds.
inline std::vector<RandomStructure> structures(Rng& rng) {
  return {structure_of_lengths(rng, {17, 97, 200}, 3),
          structure_of_lengths(rng, {1, 63, 64, 65}, 2), random_structure(rng, 2, 2, 5, 50)};
}

// structures() and, last, one sequence of 450 tokens (8 tiles) whose rows are long enough for
// the kernels' K/V (and Q/dO) rings to wrap; *n_short: how many come before it.
inline std::vector<RandomStructure> structures_and_a_long_one(Rng& rng, size_t* n_short) {
  std::vector<RandomStructure> all = structures(rng);
  *n_short = all.size();
  all.push_back(structure_of_lengths(rng, {450}, 2));
  return all;
}

struct EmuCase {
  AttentionShape sh;
  std::vector<float> q, k, v, dout, out, lse;  // bf16-exact inputs; the CPU forward
};
inline EmuCase make_case(Rng& rng, const AttentionPlan& plan, int64_t heads, int64_t kv_heads,
                         int64_t dim) {
  const int64_t T = plan.tokens;
  EmuCase x;
  x.sh = AttentionShape{heads, kv_heads, dim,
                        static_cast<float>(1.0 / std::sqrt(static_cast<double>(dim)))};
  x.q = random_vector(rng, T * heads * dim);
  for (auto& e : x.q) e *= 2.0f;  // sharper softmax
  x.q = bf16_rounded(x.q);
  x.k = bf16_rounded(random_vector(rng, T * kv_heads * dim));
  x.v = bf16_rounded(random_vector(rng, T * kv_heads * dim));
  x.dout = bf16_rounded(random_vector(rng, T * heads * dim));
  x.out.assign(static_cast<size_t>(T * heads * dim), 0.0f);
  x.lse.assign(static_cast<size_t>(T * heads), 0.0f);
  CpuContext cpu{nullptr, detect_simd()};
  CHECK_OK(attention_forward_fused(cpu, plan, x.out.data(), x.lse.data(), x.q.data(), x.k.data(),
                                   x.v.data(), x.sh));
  return x;
}

inline emu::AttnDims dims_of(const AttentionShape& s) {
  return emu::AttnDims{static_cast<int>(s.heads), static_cast<int>(s.kv_heads),
                       static_cast<int>(s.head_dim), s.scale};
}

struct Registered {  // the test's buffers, for the emulator's global-memory checks
  template <typename... V>
  explicit Registered(const V&... v) {
    (emu::register_global(v.data(), v.size() * sizeof(v[0])), ...);
  }
  ~Registered() { emu::clear_globals(); }
};

// The CPU fused backward's gradients for a case (its forward's out, rounded as a bf16 forward
// stores it).
struct CpuGrads {
  std::vector<float> dq, dk, dv;
};
inline CpuGrads cpu_grads(const AttentionPlan& plan, const EmuCase& x) {
  const std::vector<float> out = bf16_rounded(x.out);
  CpuGrads g{std::vector<float>(x.q.size()), std::vector<float>(x.k.size()),
             std::vector<float>(x.v.size())};
  CpuContext cpu{nullptr, detect_simd()};
  CHECK_OK(attention_backward_fused(cpu, plan, g.dq.data(), g.dk.data(), g.dv.data(), x.dout.data(),
                                    x.q.data(), x.k.data(), x.v.data(), out.data(), x.lse.data(),
                                    x.sh));
  return g;
}

}  // namespace npr::test
