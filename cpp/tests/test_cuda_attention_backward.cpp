// attention_backward_cuda (parallel_attention_cuda.h) against the CPU fused backward
// (attention_backward_fused), which is itself tested against the double reference.
//
// out and lse come from the CPU forward and are uploaded, so these tests do not depend on the
// device forward. Random Structures (several sequences, prefixes, blocks of 1..8 steps, odd
// lengths 17 / 97 / 513), GQA 1/2/4, head dims 64 and 128 (the bf16 tensor-core kernels) and
// small or odd ones (the SIMT kernels); fp32 within 1e-5 of max |ref|, bf16 within 1e-2 relative
// norm of the fp32 result on bf16-rounded inputs (bf16 out given to both); outputs poisoned with
// NaN first; two runs bit-identical; sibling steps' gradients bit-identical when one step's
// rows change (guards against atomics, reads of unlisted tiles and mask slips). With
// ctx.deterministic off, dq (atomic sums) against the CPU and the deterministic kernels.
#include <algorithm>
#include <cmath>
#include <string>
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

struct Inputs {
  std::vector<float> q, k, v, dout, out, lse;  // what both sides see (bf16-rounded in bf16 mode)
};

// Random q, k, v, dout (rounded through bf16 for the bf16 mode) and the CPU forward's out, lse.
Inputs make_inputs(Rng& rng, const AttentionPlan& plan, const AttentionShape& sh, DevDType t) {
  const int64_t T = plan.tokens, H = sh.heads, KV = sh.kv_heads, D = sh.head_dim;
  Inputs in;
  in.q = random_vector(rng, T * H * D);
  for (auto& x : in.q) x *= 2.0f;  // sharper softmax
  in.k = random_vector(rng, T * KV * D);
  in.v = random_vector(rng, T * KV * D);
  in.dout = random_vector(rng, T * H * D);
  if (t == DevDType::kBF16)
    for (auto* x : {&in.q, &in.k, &in.v, &in.dout}) *x = bf16_rounded(*x);
  return in;
}
void forward_on_cpu(const AttentionPlan& plan, const AttentionShape& sh, DevDType t, Inputs* in) {
  const int64_t T = plan.tokens;
  in->out.assign(T * sh.heads * sh.head_dim, 0.0f);
  in->lse.assign(T * sh.heads, 0.0f);
  CpuContext cpu{nullptr, detect_simd()};
  CHECK_OK(attention_forward_fused(cpu, plan, in->out.data(), in->lse.data(), in->q.data(),
                                   in->k.data(), in->v.data(), sh));
  if (t == DevDType::kBF16) in->out = bf16_rounded(in->out);  // what a bf16 forward stores
}

struct Grads {
  std::vector<float> dq, dk, dv;
};

Grads backward_on_cpu(const AttentionPlan& plan, const AttentionShape& sh, const Inputs& in) {
  const int64_t T = plan.tokens;
  Grads g{poisoned(T * sh.heads * sh.head_dim), poisoned(T * sh.kv_heads * sh.head_dim),
          poisoned(T * sh.kv_heads * sh.head_dim)};
  CpuContext cpu{nullptr, detect_simd()};
  CHECK_OK(attention_backward_fused(cpu, plan, g.dq.data(), g.dk.data(), g.dv.data(),
                                    in.dout.data(), in.q.data(), in.k.data(), in.v.data(),
                                    in.out.data(), in.lse.data(), sh));
  return g;
}

// The device backward of `in` (outputs poisoned first), downloaded as fp32.
Grads backward_on_device(CudaContext& ctx, const DeviceAttentionPlan& dplan,
                         const AttentionShape& sh, DevDType t, const Inputs& in) {
  const int64_t T = dplan.tokens(), nq = T * sh.heads * sh.head_dim,
                nk = T * sh.kv_heads * sh.head_dim;
  DeviceBuffer q = to_device(ctx, in.q, t), k = to_device(ctx, in.k, t),
               v = to_device(ctx, in.v, t), dout = to_device(ctx, in.dout, t),
               out = to_device(ctx, in.out, t), lse = to_device(ctx, in.lse, DevDType::kF32);
  DeviceBuffer dq = poisoned_device(ctx, nq, t), dk = poisoned_device(ctx, nk, t),
               dv = poisoned_device(ctx, nk, t);
  CHECK_OK(attention_backward_cuda(ctx, t, dplan, dq.get(), dk.get(), dv.get(), dout.get(), q.get(),
                                   k.get(), v.get(), out.get(), lse.as<float>(), sh));
  CHECK_OK(ctx.sync("attention backward test"));
  return Grads{to_host(ctx, dq, nq, t), to_host(ctx, dk, nk, t), to_host(ctx, dv, nk, t)};
}

std::string describe(const HeadCase& c, int64_t T, DevDType t) {
  return std::string(dev_dtype_name(t)) + " heads " + std::to_string(c.heads) + "/" +
         std::to_string(c.kv_heads) + " D " + std::to_string(c.dim) + " T " + std::to_string(T);
}

// Device vs CPU gradients on `st` for one head case and mode.
void check_case(Rng& rng, CudaContext& ctx, const StructureView& st, const HeadCase& c,
                DevDType t) {
  AttentionPlan plan;
  CHECK_OK(attention_plan(st, &plan));
  DeviceAttentionPlan dplan;
  CHECK_OK(dplan.upload(ctx, plan));
  const AttentionShape sh{c.heads, c.kv_heads, c.dim,
                          static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.dim)))};
  Inputs in = make_inputs(rng, plan, sh, t);
  forward_on_cpu(plan, sh, t, &in);
  const Grads ref = backward_on_cpu(plan, sh, in);
  const Grads got = backward_on_device(ctx, dplan, sh, t, in);
  const std::string what = describe(c, plan.tokens, t);
  const std::vector<float>* pairs[3][2] = {
      {&got.dq, &ref.dq}, {&got.dk, &ref.dk}, {&got.dv, &ref.dv}};
  const char* names[3] = {"dq", "dk", "dv"};
  for (int i = 0; i < 3; ++i) {
    const double err = t == DevDType::kF32 ? max_rel(*pairs[i][0], *pairs[i][1])
                                           : rel_norm_error(*pairs[i][0], *pairs[i][1]);
    const double tol = t == DevDType::kF32 ? 1e-5 : 1e-2;
    CHECK_MSG(err < tol, what + ": " + names[i] + " error " + std::to_string(err));
  }
}

}  // namespace
#endif

TEST(cuda_attention_backward_matches_cpu_on_random_structures) {
#if !defined(NPR_WITH_CUDA)
  SKIP("CUDA not compiled into this build");
#else
  CudaContext& ctx = cuda_test_context();
  Rng rng(91);
  // Tensor-core shapes (bf16 at D 64 / 128) and SIMT shapes (fp32 everywhere, bf16 small D).
  const HeadCase cases[] = {{2, 2, 64}, {4, 2, 128}, {8, 2, 64}, {4, 1, 128},
                            {4, 2, 16}, {2, 1, 8},   {4, 4, 24}};
  int i = 0;
  for (const HeadCase& c : cases) {
    for (DevDType t : {DevDType::kF32, DevDType::kBF16}) {
      RandomStructure rs = random_structure(rng, 1 + i % 3, 2, 8, 97);
      check_case(rng, ctx, rs.view(), c, t);
      ++i;
    }
  }
#endif
}

TEST(cuda_attention_backward_matches_cpu_on_odd_lengths) {
#if !defined(NPR_WITH_CUDA)
  SKIP("CUDA not compiled into this build");
#else
  CudaContext& ctx = cuda_test_context();
  Rng rng(92);
  for (int steps : {1, 3, 8}) {
    RandomStructure rs = structure_of_lengths(rng, {17, 97, 513}, steps);
    for (DevDType t : {DevDType::kF32, DevDType::kBF16}) {
      check_case(rng, ctx, rs.view(), HeadCase{4, 2, 64}, t);
      check_case(rng, ctx, rs.view(), HeadCase{4, 1, 128}, t);
      check_case(rng, ctx, rs.view(), HeadCase{2, 2, 16}, t);
    }
  }
  // One token, and a sequence of exactly one tile.
  RandomStructure tiny = structure_of_lengths(rng, {1, 64, 65}, 2);
  for (DevDType t : {DevDType::kF32, DevDType::kBF16})
    check_case(rng, ctx, tiny.view(), HeadCase{2, 1, 128}, t);
#endif
}

TEST(cuda_attention_backward_is_deterministic) {
#if !defined(NPR_WITH_CUDA)
  SKIP("CUDA not compiled into this build");
#else
  CudaContext& ctx = cuda_test_context();
  Rng rng(93);
  RandomStructure rs = random_structure(rng, 2, 2, 8, 97);
  AttentionPlan plan;
  CHECK_OK(attention_plan(rs.view(), &plan));
  DeviceAttentionPlan dplan;
  CHECK_OK(dplan.upload(ctx, plan));
  for (DevDType t : {DevDType::kF32, DevDType::kBF16})
    for (int64_t D : {64, 128, 16}) {
      const AttentionShape sh{8, 2, D, static_cast<float>(1.0 / std::sqrt(double(D)))};
      Inputs in = make_inputs(rng, plan, sh, t);
      forward_on_cpu(plan, sh, t, &in);
      const Grads a = backward_on_device(ctx, dplan, sh, t, in);
      const Grads b = backward_on_device(ctx, dplan, sh, t, in);
      const std::string what = std::string(dev_dtype_name(t)) + " D " + std::to_string(D);
      CHECK_MSG(a.dq == b.dq && a.dk == b.dk && a.dv == b.dv, what + ": two runs differ");
    }
#endif
}

TEST(cuda_attention_backward_siblings_are_isolated_bit_for_bit) {
#if !defined(NPR_WITH_CUDA)
  SKIP("CUDA not compiled into this build");
#else
  CudaContext& ctx = cuda_test_context();
  Rng rng(94);
  RandomStructure rs;
  do rs = random_structure(rng, 1, 1, 6, 97);
  while (*std::max_element(rs.step.begin(), rs.step.end()) < 1);  // at least two steps
  const int64_t T = rs.tokens, H = 4, KV = 2;
  AttentionPlan plan;
  CHECK_OK(attention_plan(rs.view(), &plan));
  DeviceAttentionPlan dplan;
  CHECK_OK(dplan.upload(ctx, plan));
  // dO only up to the end of the block: queries after it see every step, so their gradient
  // legitimately reaches the keys of all steps.
  int64_t block_end = 0;
  for (int64_t t = 0; t < T; ++t)
    if (rs.block[t] >= 0) block_end = t + 1;
  for (DevDType t : {DevDType::kF32, DevDType::kBF16})
    for (int64_t D : {64, 128, 16}) {
      const AttentionShape sh{H, KV, D, 0.125f};
      Inputs a = make_inputs(rng, plan, sh, t);
      for (int64_t i = block_end * H * D; i < T * H * D; ++i) a.dout[i] = 0.0f;
      Inputs b = a;  // step 0 perturbed (by bf16-exact amounts): no other step may move
      for (int64_t r = 0; r < T; ++r)
        if (rs.step[r] == 0) {
          for (int64_t i = 0; i < H * D; ++i)
            b.q[r * H * D + i] += 0.5f, b.dout[r * H * D + i] *= -1;
          for (int64_t i = 0; i < KV * D; ++i)
            b.k[r * KV * D + i] -= 0.25f, b.v[r * KV * D + i] += 0.75f;
        }
      if (t == DevDType::kBF16)
        for (auto* x : {&b.q, &b.k, &b.v}) *x = bf16_rounded(*x);
      forward_on_cpu(plan, sh, t, &a);
      forward_on_cpu(plan, sh, t, &b);
      const Grads ga = backward_on_device(ctx, dplan, sh, t, a);
      const Grads gb = backward_on_device(ctx, dplan, sh, t, b);
      bool sibling_ok = true, step0_changed = false;
      for (int64_t r = 0; r < T; ++r) {
        const bool sibling = rs.step[r] >= 1, step0 = rs.step[r] == 0;
        for (int64_t i = 0; i < H * D; ++i) {
          const int64_t j = r * H * D + i;
          if (sibling) sibling_ok &= ga.dq[j] == gb.dq[j];
          if (step0) step0_changed |= ga.dq[j] != gb.dq[j];
        }
        for (int64_t i = 0; i < KV * D; ++i) {
          const int64_t j = r * KV * D + i;
          if (sibling) sibling_ok &= ga.dk[j] == gb.dk[j] && ga.dv[j] == gb.dv[j];
        }
      }
      const std::string what = std::string(dev_dtype_name(t)) + " D " + std::to_string(D);
      CHECK_MSG(sibling_ok, what + ": a sibling step's gradient moved");
      CHECK_MSG(step0_changed, what + ": the perturbed step's dq did not change");
    }
#endif
}

TEST(cuda_attention_backward_atomic_dq_matches_the_deterministic_kernels) {
#if !defined(NPR_WITH_CUDA)
  SKIP("CUDA not compiled into this build");
#else
  CudaContext& ctx = cuda_test_context();
  struct Restore {
    CudaContext& c;
    ~Restore() { c.deterministic = true; }
  } restore{ctx};
  Rng rng(96);
  // bf16 at D 64 / 128 (the tensor-core kernels, where the atomic dQ lives), GQA 1 / 2 / 4, odd
  // lengths (short last tiles) and random Structures; fp32 and a SIMT shape ride along (they
  // stay deterministic whatever the switch says).
  std::vector<RandomStructure> structures;
  for (int steps : {1, 3, 8}) structures.push_back(structure_of_lengths(rng, {17, 97, 513}, steps));
  structures.push_back(random_structure(rng, 3, 2, 8, 97));
  structures.push_back(structure_of_lengths(rng, {1, 64, 65}, 2));
  const HeadCase cases[] = {{4, 2, 64}, {4, 1, 128}, {8, 2, 128}, {2, 2, 64}, {4, 2, 16}};
  for (const RandomStructure& rs : structures) {
    AttentionPlan plan;
    CHECK_OK(attention_plan(rs.view(), &plan));
    DeviceAttentionPlan dplan;
    CHECK_OK(dplan.upload(ctx, plan));
    for (const HeadCase& c : cases)
      for (DevDType t : {DevDType::kBF16, DevDType::kF32}) {
        if (t == DevDType::kF32 && c.dim != 64) continue;
        const AttentionShape sh{c.heads, c.kv_heads, c.dim,
                                static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.dim)))};
        Inputs in = make_inputs(rng, plan, sh, t);
        forward_on_cpu(plan, sh, t, &in);
        const Grads ref = backward_on_cpu(plan, sh, in);
        ctx.deterministic = true;
        const Grads det = backward_on_device(ctx, dplan, sh, t, in);
        ctx.deterministic = false;
        const Grads fast = backward_on_device(ctx, dplan, sh, t, in);
        const std::string what = describe(c, plan.tokens, t) + " (atomic dQ)";
        // dK, dV come from the same kernel code in both modes: the same bits.
        CHECK_MSG(fast.dk == det.dk && fast.dv == det.dv, what + ": dk / dv differ");
        // dQ: fp32 partial sums in another order, then one bf16 rounding. Against the CPU as the
        // deterministic kernels are, and close to them.
        const double err_cpu =
            t == DevDType::kF32 ? max_rel(fast.dq, ref.dq) : rel_norm_error(fast.dq, ref.dq);
        CHECK_MSG(err_cpu < (t == DevDType::kF32 ? 1e-5 : 1e-2),
                  what + ": dq error vs cpu " + std::to_string(err_cpu));
        const double err_det = rel_norm_error(fast.dq, det.dq);
        CHECK_MSG(err_det < 4e-3,
                  what + ": dq vs the deterministic kernels " + std::to_string(err_det));
      }
  }
#endif
}

TEST(cuda_attention_backward_rejects_bad_shapes) {
#if !defined(NPR_WITH_CUDA)
  SKIP("CUDA not compiled into this build");
#else
  CudaContext& ctx = cuda_test_context();
  Rng rng(95);
  RandomStructure rs = random_structure(rng, 1, 1, 2, 9);
  AttentionPlan plan;
  CHECK_OK(attention_plan(rs.view(), &plan));
  DeviceAttentionPlan dplan;
  CHECK_OK(dplan.upload(ctx, plan));
  DeviceBuffer buf = to_device(ctx, std::vector<float>(rs.tokens * 8 * 512, 0.0f), DevDType::kF32);
  void* p = buf.get();
  const float* f = buf.as<float>();
  for (const AttentionShape& bad : {AttentionShape{3, 2, 16, 0.25f}, AttentionShape{2, 0, 16, 1.0f},
                                    AttentionShape{2, 1, 0, 1.0f}, AttentionShape{2, 1, 300, 1.0f}})
    CHECK(!attention_backward_cuda(ctx, DevDType::kF32, dplan, p, p, p, p, p, p, p, p, f, bad)
               .is_ok());
  CHECK(!attention_backward_cuda(ctx, DevDType::kBF16, dplan, nullptr, p, p, p, p, p, p, p, f,
                                 AttentionShape{2, 1, 64, 0.125f})
             .is_ok());
#endif
}

}  // namespace npr::test
