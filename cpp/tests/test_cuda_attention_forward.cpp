// The CUDA forward of the fused block-sparse attention (parallel_attention_cuda.h) against the
// CPU fused kernel (attention_forward_fused, itself tested against the double reference): random
// Structures (prefixes, blocks of 1..8 steps, several sequences), odd and empty sequences
// (17, 97, 513, 0, 1), GQA 1/2/4, head dims 64 and 128 (tensor cores in bf16 mode) and 8, 16, 24
// (the SIMT kernel), a dense causal plan; fp32 mode within 1e-5 of max |ref|, bf16 mode within
// 1e-2 (relative norm) of the fp32 CPU result on bf16-rounded inputs; outputs poisoned first;
// lse compared too. Also: the plan's upload round-trips, two runs are bit-identical, sibling
// steps are isolated bit for bit, misaligned bf16 tensors fall back to the SIMT kernel, bad
// shapes are refused. Runs where a CUDA device answers; elsewhere every case skips.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/parallel_attention.h"
#include "tests/harness.h"
#include "tests/test_structures.h"
#include "tests/test_util.h"
#if defined(NPR_WITH_CUDA)
#include "kernels/parallel_attention_cuda.h"
#include "tests/test_cuda_util.h"
#endif

namespace npr::test {

#if defined(NPR_WITH_CUDA)

namespace {

struct HeadCase {
  int64_t heads, kv_heads, dim;
};

// Depth-1 structure over sequences of the given lengths (zero allowed) made of random runs of
// 1..max_run tokens, each shared or a step 0..2 of one of two blocks of its sequence.
struct OddStructure {
  std::vector<int32_t> cu, block, step;
  int64_t tokens = 0;
  StructureView view() const {
    return StructureView{
        tokens, static_cast<int64_t>(cu.size()) - 1, cu.data(), 1, block.data(), step.data()};
  }
};
OddStructure odd_structure(Rng& rng, const std::vector<int>& lengths, int max_run) {
  OddStructure s;
  s.cu.push_back(0);
  for (size_t q = 0; q < lengths.size(); ++q) {
    for (int t = 0; t < lengths[q];) {
      const int n = std::min<int>(lengths[q] - t, 1 + static_cast<int>(rng.below(max_run)));
      const bool inside = rng.below(3) != 0;
      const int32_t b = inside ? static_cast<int32_t>(2 * q + rng.below(2)) : -1;
      const int32_t st = inside ? static_cast<int32_t>(rng.below(3)) : -1;
      for (int i = 0; i < n; ++i, ++t) s.block.push_back(b), s.step.push_back(st);
    }
    s.tokens += lengths[q];
    s.cu.push_back(static_cast<int32_t>(s.tokens));
  }
  return s;
}

AttentionShape shape_of(const HeadCase& c) {
  return AttentionShape{c.heads, c.kv_heads, c.dim,
                        static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.dim)))};
}

std::string describe(const HeadCase& c, int64_t T, DevDType t) {
  return std::string(dev_dtype_name(t)) + " heads " + std::to_string(c.heads) + "/" +
         std::to_string(c.kv_heads) + " D " + std::to_string(c.dim) + " T " + std::to_string(T);
}

struct Inputs {
  std::vector<float> q, k, v;  // (T, H, D), (T, KV, D), (T, KV, D)
};
Inputs random_inputs(Rng& rng, int64_t T, const HeadCase& c, DevDType t) {
  Inputs in{random_vector(rng, T * c.heads * c.dim), random_vector(rng, T * c.kv_heads * c.dim),
            random_vector(rng, T * c.kv_heads * c.dim)};
  for (auto& x : in.q) x *= 2.0f;  // sharper softmax
  if (t == DevDType::kBF16) {      // the oracle sees exactly what the device sees
    in.q = bf16_rounded(in.q);
    in.k = bf16_rounded(in.k);
    in.v = bf16_rounded(in.v);
  }
  return in;
}

struct Outputs {
  std::vector<float> out, lse;  // (T, H, D), (T, H)
};

Outputs run_cpu(const AttentionPlan& plan, const Inputs& in, const AttentionShape& sh) {
  const int64_t T = plan.tokens;
  Outputs r{poisoned(T * sh.heads * sh.head_dim), poisoned(T * sh.heads)};
  CpuContext cpu{nullptr, detect_simd()};
  CHECK_OK(attention_forward_fused(cpu, plan, r.out.data(), r.lse.data(), in.q.data(), in.k.data(),
                                   in.v.data(), sh));
  return r;
}

// The CUDA forward in mode t; outputs poisoned (NaN) before the run.
Outputs run_cuda(CudaContext& ctx, DevDType t, const DeviceAttentionPlan& dp, const Inputs& in,
                 const AttentionShape& sh) {
  const int64_t T = dp.tokens(), nq = T * sh.heads * sh.head_dim;
  DeviceBuffer q = to_device(ctx, in.q, t), k = to_device(ctx, in.k, t),
               v = to_device(ctx, in.v, t);
  DeviceBuffer out = poisoned_device(ctx, nq, t),
               lse = poisoned_device(ctx, T * sh.heads, DevDType::kF32);
  CHECK_OK(attention_forward_cuda(ctx, t, dp, out.get(), lse.as<float>(), q.get(), k.get(), v.get(),
                                  sh));
  CHECK_OK(ctx.sync("attention_forward_cuda"));
  return Outputs{to_host(ctx, out, nq, t), to_host(ctx, lse, T * sh.heads, DevDType::kF32)};
}

void check_close(const Outputs& got, const Outputs& ref, DevDType t, const std::string& what) {
  if (t == DevDType::kF32) {
    CHECK_MSG(max_rel(got.out, ref.out) < 1e-5,
              what + ": out " + std::to_string(max_rel(got.out, ref.out)));
    CHECK_MSG(max_rel(got.lse, ref.lse) < 1e-5,
              what + ": lse " + std::to_string(max_rel(got.lse, ref.lse)));
  } else {
    CHECK_MSG(rel_norm_error(got.out, ref.out) < 1e-2,
              what + ": out " + std::to_string(rel_norm_error(got.out, ref.out)));
    // The scores and their sums stay fp32 in bf16 mode: lse is nearly exact.
    CHECK_MSG(max_rel(got.lse, ref.lse) < 1e-3,
              what + ": lse " + std::to_string(max_rel(got.lse, ref.lse)));
  }
}

// CUDA forward (mode t) against the CPU on `st`; returns the (full, partial, skip) tile counts.
std::vector<int64_t> check_against_cpu(CudaContext& ctx, Rng& rng, const StructureView& st,
                                       const HeadCase& c, DevDType t, bool dense = false) {
  AttentionPlan plan;
  CHECK_OK(attention_plan(st, &plan, dense));
  DeviceAttentionPlan dp;
  CHECK_OK(dp.upload(ctx, plan));
  const AttentionShape sh = shape_of(c);
  const Inputs in = random_inputs(rng, st.tokens, c, t);
  check_close(run_cuda(ctx, t, dp, in, sh), run_cpu(plan, in, sh), t,
              describe(c, st.tokens, t) + (dense ? " dense" : ""));
  return {plan.tiles_full, plan.tiles_partial, plan.tiles_skip};
}

void random_structures_case(DevDType t, uint64_t seed) {
  CudaContext& ctx = cuda_test_context();
  Rng rng(seed);
  const HeadCase cases[] = {{2, 2, 64},  {4, 2, 128}, {8, 2, 64}, {4, 1, 128},
                            {8, 2, 128}, {8, 2, 8},   {4, 4, 16}, {6, 3, 24}};
  std::vector<int64_t> kinds(3, 0);
  int i = 0;
  for (const HeadCase& c : cases) {
    RandomStructure rs = random_structure(rng, 1 + i % 3, 2, 8, 97);
    const auto k = check_against_cpu(ctx, rng, rs.view(), c, t);
    for (int j = 0; j < 3; ++j) kinds[j] += k[j];
    ++i;
  }
  CHECK_MSG(kinds[0] > 0 && kinds[1] > 0 && kinds[2] > 0,
            "full " + std::to_string(kinds[0]) + " partial " + std::to_string(kinds[1]) + " skip " +
                std::to_string(kinds[2]));
}

bool bits_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST(cuda_attention_plan_upload_round_trips) {
  CudaContext& ctx = cuda_test_context();
  Rng rng(80);
  OddStructure os = odd_structure(rng, {17, 0, 513, 97, 1, 130}, 40);
  AttentionPlan plan;
  CHECK_OK(attention_plan(os.view(), &plan));
  DeviceAttentionPlan dp;
  CHECK_OK(dp.upload(ctx, plan));
  CHECK(dp.tokens() == plan.tokens && dp.tiles() == plan.tiles);
  CHECK(dp.sequences == 6 && dp.partial_tiles == plan.tiles_partial);
  auto back = [&](const DeviceBuffer& b, const auto& host) {
    using V = typename std::decay_t<decltype(host)>::value_type;
    std::vector<V> h(host.size());
    CHECK_OK(ctx.download(h.data(), b.get(), static_cast<int64_t>(h.size() * sizeof(V)), "plan"));
    return std::memcmp(h.data(), host.data(), h.size() * sizeof(V)) == 0;
  };
  CHECK(back(dp.seq_start, plan.seq_start) && back(dp.seq_len, plan.seq_len) &&
        back(dp.seq_tile0, plan.seq_tile0) && back(dp.tile_seq, plan.tile_seq));
  CHECK(back(dp.row_ptr, plan.row_ptr) && back(dp.col_ptr, plan.col_ptr));
  CHECK(back(dp.row_pairs, plan.row_pairs) && back(dp.col_pairs, plan.col_pairs));
  CHECK(back(dp.masks, plan.masks));
  const int64_t want =
      8 * static_cast<int64_t>(plan.seq_start.size() * 3 + plan.row_ptr.size() * 2 +
                               plan.row_pairs.size() * 2 + plan.masks.size()) +
      4 * static_cast<int64_t>(plan.tile_seq.size());
  CHECK_MSG(dp.bytes() == want, std::to_string(dp.bytes()) + " != " + std::to_string(want));
  // A second, smaller plan reuses the buffers (every array fits in the first plan's).
  RandomStructure rs = random_structure(rng, 1, 1, 2, 9);
  AttentionPlan small;
  CHECK_OK(attention_plan(rs.view(), &small));
  CHECK_OK(dp.upload(ctx, small));
  CHECK(dp.tokens() == small.tokens && dp.tiles() == small.tiles && dp.bytes() == want);
  CHECK(back(dp.row_pairs, small.row_pairs) && back(dp.masks, small.masks));
}

TEST(cuda_attention_forward_fp32_matches_cpu_on_random_structures) {
  random_structures_case(DevDType::kF32, 81);
}

TEST(cuda_attention_forward_bf16_matches_cpu_on_random_structures) {
  random_structures_case(DevDType::kBF16, 82);
}

TEST(cuda_attention_forward_matches_cpu_on_odd_and_empty_sequences) {
  CudaContext& ctx = cuda_test_context();
  Rng rng(83);
  for (DevDType t : {DevDType::kF32, DevDType::kBF16}) {
    OddStructure a = odd_structure(rng, {17, 0, 97, 1, 130}, 40);
    check_against_cpu(ctx, rng, a.view(), HeadCase{4, 2, 64}, t);
    check_against_cpu(ctx, rng, a.view(), HeadCase{4, 1, 16}, t);
    OddStructure b = odd_structure(rng, {513}, 200);
    check_against_cpu(ctx, rng, b.view(), HeadCase{8, 2, 128}, t);
    OddStructure c = odd_structure(rng, {1, 2, 0, 63, 64, 65}, 5);
    check_against_cpu(ctx, rng, c.view(), HeadCase{2, 1, 128}, t);
  }
}

TEST(cuda_attention_forward_dense_causal_plan_is_plain_causal_attention) {
  CudaContext& ctx = cuda_test_context();
  Rng rng(84);
  RandomStructure rs = random_structure(rng, 2, 2, 4, 61);
  for (DevDType t : {DevDType::kF32, DevDType::kBF16}) {
    check_against_cpu(ctx, rng, rs.view(), HeadCase{4, 2, 64}, t, true);
    check_against_cpu(ctx, rng, rs.view(), HeadCase{8, 2, 128}, t, true);
  }
}

TEST(cuda_attention_forward_is_deterministic) {
  CudaContext& ctx = cuda_test_context();
  Rng rng(85);
  RandomStructure rs = random_structure(rng, 2, 2, 8, 97);
  AttentionPlan plan;
  CHECK_OK(attention_plan(rs.view(), &plan));
  DeviceAttentionPlan dp;
  CHECK_OK(dp.upload(ctx, plan));
  for (DevDType t : {DevDType::kF32, DevDType::kBF16})
    for (const HeadCase& c : {HeadCase{8, 2, 128}, HeadCase{4, 2, 24}}) {
      const Inputs in = random_inputs(rng, rs.tokens, c, t);
      const Outputs a = run_cuda(ctx, t, dp, in, shape_of(c));
      const Outputs b = run_cuda(ctx, t, dp, in, shape_of(c));
      CHECK_MSG(bits_equal(a.out, b.out) && bits_equal(a.lse, b.lse),
                describe(c, rs.tokens, t) + ": two runs differ");
    }
}

TEST(cuda_attention_forward_siblings_are_isolated_bit_for_bit) {
  CudaContext& ctx = cuda_test_context();
  Rng rng(86);
  RandomStructure rs;
  do rs = random_structure(rng, 1, 1, 6, 97);
  while (*std::max_element(rs.step.begin(), rs.step.end()) < 1);  // at least two steps
  const int64_t T = rs.tokens;
  AttentionPlan plan;
  CHECK_OK(attention_plan(rs.view(), &plan));
  DeviceAttentionPlan dp;
  CHECK_OK(dp.upload(ctx, plan));
  const std::pair<DevDType, int64_t> modes[] = {
      {DevDType::kF32, 64}, {DevDType::kBF16, 64}, {DevDType::kBF16, 128}, {DevDType::kBF16, 16}};
  for (const auto& [t, D] : modes) {
    const HeadCase c{4, 2, D};
    const int64_t H = c.heads, KV = c.kv_heads;
    const Inputs in = random_inputs(rng, T, c, t);
    Inputs in2 = in;  // step 0 perturbed: no other step may move
    for (int64_t tok = 0; tok < T; ++tok)
      if (rs.step[tok] == 0) {
        for (int64_t i = 0; i < H * D; ++i) in2.q[tok * H * D + i] += 0.5f;
        for (int64_t i = 0; i < KV * D; ++i)
          in2.k[tok * KV * D + i] -= 0.375f, in2.v[tok * KV * D + i] += 0.75f;
      }
    const Outputs a = run_cuda(ctx, t, dp, in, shape_of(c));
    const Outputs b = run_cuda(ctx, t, dp, in2, shape_of(c));
    bool sibling_ok = true, after_changed = false;
    for (int64_t tok = 0; tok < T; ++tok) {
      const bool sibling = rs.step[tok] >= 1;
      for (int64_t i = 0; i < H * D; ++i) {
        const size_t x = static_cast<size_t>(tok * H * D + i);
        if (sibling) sibling_ok &= std::memcmp(&a.out[x], &b.out[x], sizeof(float)) == 0;
        if (rs.block[tok] == -1 && tok > 0 && rs.block[tok - 1] >= 0)
          after_changed |= a.out[x] != b.out[x];
      }
      if (sibling)
        sibling_ok &= std::memcmp(&a.lse[tok * H], &b.lse[tok * H], H * sizeof(float)) == 0;
    }
    CHECK_MSG(sibling_ok, describe(c, T, t) + ": a sibling step moved");
    CHECK_MSG(after_changed, describe(c, T, t) + ": the token after the block must change");
  }
}

TEST(cuda_attention_forward_misaligned_bf16_falls_back_to_simt) {
  // bf16 tensors one element off a 16-byte boundary cannot use cp.async: the SIMT kernel runs
  // and must agree with the CPU as well.
  CudaContext& ctx = cuda_test_context();
  Rng rng(87);
  RandomStructure rs = random_structure(rng, 2, 2, 4, 97);
  AttentionPlan plan;
  CHECK_OK(attention_plan(rs.view(), &plan));
  DeviceAttentionPlan dp;
  CHECK_OK(dp.upload(ctx, plan));
  const HeadCase c{4, 2, 128};
  const AttentionShape sh = shape_of(c);
  const int64_t T = rs.tokens, nq = T * c.heads * c.dim;
  const Inputs in = random_inputs(rng, T, c, DevDType::kBF16);
  auto shifted = [](std::vector<float> x) {
    x.insert(x.begin(), 0.0f);
    return x;
  };
  DeviceBuffer q = to_device(ctx, shifted(in.q), DevDType::kBF16);
  DeviceBuffer k = to_device(ctx, shifted(in.k), DevDType::kBF16);
  DeviceBuffer v = to_device(ctx, shifted(in.v), DevDType::kBF16);
  DeviceBuffer out = poisoned_device(ctx, nq + 1, DevDType::kBF16);
  DeviceBuffer lse = poisoned_device(ctx, T * c.heads, DevDType::kF32);
  auto at1 = [](const DeviceBuffer& b) { return static_cast<char*>(b.get()) + 2; };
  CHECK_OK(attention_forward_cuda(ctx, DevDType::kBF16, dp, at1(out), lse.as<float>(), at1(q),
                                  at1(k), at1(v), sh));
  CHECK_OK(ctx.sync("attention_forward_cuda"));
  std::vector<float> o = to_host(ctx, out, nq + 1, DevDType::kBF16);
  o.erase(o.begin());
  check_close(Outputs{o, to_host(ctx, lse, T * c.heads, DevDType::kF32)}, run_cpu(plan, in, sh),
              DevDType::kBF16, "misaligned " + describe(c, T, DevDType::kBF16));
}

TEST(cuda_attention_forward_rejects_bad_shapes) {
  CudaContext& ctx = cuda_test_context();
  Rng rng(88);
  RandomStructure rs = random_structure(rng, 1, 1, 2, 9);
  AttentionPlan plan;
  CHECK_OK(attention_plan(rs.view(), &plan));
  DeviceAttentionPlan dp;
  DeviceBuffer buf = poisoned_device(ctx, rs.tokens * 8 * 512, DevDType::kF32);
  float* b = buf.as<float>();
  const auto run = [&](DevDType t, const AttentionShape& sh) {
    return attention_forward_cuda(ctx, t, dp, b, b, b, b, b, sh);
  };
  CHECK(run(DevDType::kF32, AttentionShape{2, 1, 16, 0.25f}).code() ==
        StatusCode::kInvalidArgument);  // not uploaded yet
  CHECK_OK(dp.upload(ctx, plan));
  for (DevDType t : {DevDType::kF32, DevDType::kBF16}) {
    CHECK(run(t, AttentionShape{3, 2, 16, 0.25f}).code() == StatusCode::kInvalidArgument);
    CHECK(run(t, AttentionShape{2, 0, 16, 0.25f}).code() == StatusCode::kInvalidArgument);
    CHECK(run(t, AttentionShape{2, 1, 0, 0.25f}).code() == StatusCode::kInvalidArgument);
    CHECK(run(t, AttentionShape{2, 1, 320, 0.25f}).code() == StatusCode::kInvalidArgument);
    CHECK(run(t, AttentionShape{2, 1, 16, 0.0f}).code() == StatusCode::kInvalidArgument);
  }
  CHECK_OK(ctx.sync("after refused launches"));
  AttentionPlan broken = plan;
  broken.row_ptr.pop_back();
  CHECK(dp.upload(ctx, broken).code() == StatusCode::kInvalidArgument);
}

#else  // !NPR_WITH_CUDA

TEST(cuda_attention_plan_upload_round_trips) {
  SKIP("CUDA not compiled into this build");
}
TEST(cuda_attention_forward_fp32_matches_cpu_on_random_structures) {
  SKIP("CUDA not compiled into this build");
}
TEST(cuda_attention_forward_bf16_matches_cpu_on_random_structures) {
  SKIP("CUDA not compiled into this build");
}
TEST(cuda_attention_forward_matches_cpu_on_odd_and_empty_sequences) {
  SKIP("CUDA not compiled into this build");
}
TEST(cuda_attention_forward_dense_causal_plan_is_plain_causal_attention) {
  SKIP("CUDA not compiled into this build");
}
TEST(cuda_attention_forward_is_deterministic) {
  SKIP("CUDA not compiled into this build");
}
TEST(cuda_attention_forward_siblings_are_isolated_bit_for_bit) {
  SKIP("CUDA not compiled into this build");
}
TEST(cuda_attention_forward_misaligned_bf16_falls_back_to_simt) {
  SKIP("CUDA not compiled into this build");
}
TEST(cuda_attention_forward_rejects_bad_shapes) {
  SKIP("CUDA not compiled into this build");
}

#endif

}  // namespace npr::test
