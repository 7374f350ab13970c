// The Hopper forward (parallel_attention_wgmma.h) against the mma.sync forward and the CPU
// fused kernel, on the shapes it serves (bf16, head dims 64 and 128, even GQA groups), built
// for one CTA an SM (loading K/V one tile ahead, or two: the same bits) and for two: random
// Structures and odd lengths (1, 17, 63, 64, 65, 97, 513: short last tiles, single-token
// sequences), outputs poisoned first. The two forwards do the same arithmetic; the tensor cores may
// associate a k-step's products differently, so out and lse agree within fp32 rounding (relative
// norm 2e-3, lse 1e-4), and with the CPU within the bf16 tolerances of the other forward tests. The
// backward's wgmma dK / dV kernel likewise against the mma.sync one and the CPU, deterministic (run
// to run bit-identical, with the wgmma dQ kernel) and with the atomic dQ, and their two-warpgroup
// builds (128 keys, 128 queries) against them bit for bit. Skips unless the build has the sm_90a
// kernels and the device is an sm_90 one.
#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/parallel_attention.h"
#include "tests/harness.h"
#include "tests/test_structures.h"
#include "tests/test_util.h"
#if defined(NPR_WITH_CUDA)
#include "kernels/parallel_attention_cuda.h"
#include "kernels/parallel_attention_wgmma.h"
#include "tests/test_cuda_util.h"
#endif

namespace npr::test {

#if defined(NPR_WITH_CUDA)
namespace {

struct Forward {
  std::vector<float> out, lse;
};

Forward forward_on_device(CudaContext& ctx, const DeviceAttentionPlan& dp, const AttentionShape& sh,
                          const std::vector<float>& q, const std::vector<float>& k,
                          const std::vector<float>& v) {
  const DevDType t = DevDType::kBF16;
  const int64_t T = dp.tokens(), nq = T * sh.heads * sh.head_dim;
  DeviceBuffer dq = to_device(ctx, q, t), dk = to_device(ctx, k, t), dv = to_device(ctx, v, t);
  DeviceBuffer out = poisoned_device(ctx, nq, t),
               lse = poisoned_device(ctx, T * sh.heads, DevDType::kF32);
  CHECK_OK(attention_forward_cuda(ctx, t, dp, out.get(), lse.as<float>(), dq.get(), dk.get(),
                                  dv.get(), sh));
  CHECK_OK(ctx.sync("attention forward (wgmma test)"));
  return Forward{to_host(ctx, out, nq, t), to_host(ctx, lse, T * sh.heads, DevDType::kF32)};
}

struct HeadCase {
  int64_t heads, kv_heads, dim;
};

// Odd lengths (short last tiles, single tokens) and random Structures.
std::vector<RandomStructure> structures(Rng& rng) {
  return {structure_of_lengths(rng, {17, 97, 513}, 3),
          structure_of_lengths(rng, {1, 63, 64, 65}, 2), random_structure(rng, 2, 2, 8, 97),
          random_structure(rng, 1, 2, 6, 300)};
}

// One case's shape, bf16-exact inputs (q sharpened), and the CPU fused forward's out and lse.
struct WgCase {
  AttentionShape sh;
  std::vector<float> q, k, v, dout, out, lse;
};
WgCase make_case(Rng& rng, const AttentionPlan& plan, const HeadCase& c) {
  const int64_t T = plan.tokens;
  WgCase x;
  x.sh = AttentionShape{c.heads, c.kv_heads, c.dim,
                        static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.dim)))};
  x.q = random_vector(rng, T * c.heads * c.dim);
  for (auto& e : x.q) e *= 2.0f;  // sharper softmax
  x.q = bf16_rounded(x.q);
  x.k = bf16_rounded(random_vector(rng, T * c.kv_heads * c.dim));
  x.v = bf16_rounded(random_vector(rng, T * c.kv_heads * c.dim));
  x.dout = bf16_rounded(random_vector(rng, T * c.heads * c.dim));
  x.out.assign(T * c.heads * c.dim, 0.0f);
  x.lse.assign(T * c.heads, 0.0f);
  CpuContext cpu{nullptr, detect_simd()};
  CHECK_OK(attention_forward_fused(cpu, plan, x.out.data(), x.lse.data(), x.q.data(), x.k.data(),
                                   x.v.data(), x.sh));
  return x;
}

// fn(plan on the device, head case, its inputs, a description) for every structure and case.
template <typename Fn>
void for_each_case(CudaContext& ctx, Rng& rng, const std::vector<HeadCase>& cases, Fn fn) {
  for (const RandomStructure& rs : structures(rng)) {
    AttentionPlan plan;
    CHECK_OK(attention_plan(rs.view(), &plan));
    DeviceAttentionPlan dp;
    CHECK_OK(dp.upload(ctx, plan));
    for (const HeadCase& c : cases) {
      const WgCase x = make_case(rng, plan, c);
      fn(plan, dp, x,
         "heads " + std::to_string(c.heads) + "/" + std::to_string(c.kv_heads) + " D " +
             std::to_string(c.dim) + " T " + std::to_string(rs.tokens));
    }
  }
}

struct Restore {
  CudaContext& ctx;
  ~Restore() {
    ctx.attention_wgmma = 0;
    ctx.attention_wgmma_keys = 64;
    ctx.deterministic = true;
  }
};

struct Grads {
  std::vector<float> dq, dk, dv;
};

// The device backward (outputs poisoned first) of bf16-exact inputs, as fp32.
Grads backward_on_device(CudaContext& ctx, const DeviceAttentionPlan& dp, const AttentionShape& sh,
                         const std::vector<float>& q, const std::vector<float>& k,
                         const std::vector<float>& v, const std::vector<float>& dout,
                         const std::vector<float>& out, const std::vector<float>& lse) {
  const DevDType t = DevDType::kBF16;
  const int64_t T = dp.tokens(), nq = T * sh.heads * sh.head_dim,
                nk = T * sh.kv_heads * sh.head_dim;
  DeviceBuffer bq = to_device(ctx, q, t), bk = to_device(ctx, k, t), bv = to_device(ctx, v, t),
               bo = to_device(ctx, dout, t), bout = to_device(ctx, out, t),
               blse = to_device(ctx, lse, DevDType::kF32);
  DeviceBuffer dq = poisoned_device(ctx, nq, t), dk = poisoned_device(ctx, nk, t),
               dv = poisoned_device(ctx, nk, t);
  CHECK_OK(attention_backward_cuda(ctx, t, dp, dq.get(), dk.get(), dv.get(), bo.get(), bq.get(),
                                   bk.get(), bv.get(), bout.get(), blse.as<float>(), sh));
  CHECK_OK(ctx.sync("attention backward (wgmma test)"));
  return Grads{to_host(ctx, dq, nq, t), to_host(ctx, dk, nk, t), to_host(ctx, dv, nk, t)};
}

}  // namespace
#endif

TEST(cuda_attention_forward_wgmma_matches_the_mma_kernels_and_the_cpu) {
#if !defined(NPR_WITH_CUDA)
  SKIP("CUDA not compiled into this build");
#else
  CudaContext& ctx = cuda_test_context();
  if (!attention_wgmma_available())
    SKIP(attention_wgmma_compiled() ? "the wgmma forward needs an sm_90 device"
                                    : "this build has no sm_90a kernel");
  Restore restore{ctx};
  Rng rng(97);
  const std::vector<HeadCase> cases = {{4, 2, 128}, {8, 2, 64}, {16, 8, 128}, {8, 4, 64}};
  for_each_case(
      ctx, rng, cases,
      [&](const AttentionPlan&, const DeviceAttentionPlan& dp, const WgCase& x,
          const std::string& desc) {
        const AttentionShape& sh = x.sh;
        ctx.attention_wgmma = 0;
        CHECK(!attention_forward_uses_wgmma(ctx, DevDType::kBF16, sh));
        const Forward mma = forward_on_device(ctx, dp, sh, x.q, x.k, x.v);
        // Variant 1's out: variant 3 only loads further ahead and variant 5 ping-pongs the
        // warpgroups (the same bits); variants 4 and 6 also take Q from registers, held to the
        // tolerances below (the emulator, which computes either operand source alike, checks
        // their fragments bit for bit), and 6 must equal 4; 7 and 8 (the warp-specialised TMA
        // kernel) and 9 (5 with tensor-map copies) are variant 1's bits too. 10 (128 keys a
        // step) sums in its own order: held to the tolerances, and to its own bits run to run;
        // 11 (10 ping-ponging) to 10's bits.
        std::vector<float> pipelined_out, qregs_out, ws128_out;
        for (int variant : {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}) {
          ctx.attention_wgmma = variant;
          CHECK(attention_forward_uses_wgmma(ctx, DevDType::kBF16, sh));
          const Forward wg = forward_on_device(ctx, dp, sh, x.q, x.k, x.v);
          const std::string what = desc + " variant " + std::to_string(variant);
          if (variant == 1) pipelined_out = wg.out;
          if (variant == 4) qregs_out = wg.out;
          if (variant == 3 || variant == 5 || (variant >= 7 && variant <= 9))
            CHECK_MSG(wg.out == pipelined_out, what + ": out differs from variant 1's bits");
          if (variant == 10) {
            ws128_out = wg.out;
            const Forward again = forward_on_device(ctx, dp, sh, x.q, x.k, x.v);
            CHECK_MSG(again.out == wg.out && again.lse == wg.lse, what + ": not deterministic");
          }
          if (variant == 11)
            CHECK_MSG(wg.out == ws128_out, what + ": out differs from variant 10's bits");
          if (variant == 6)
            CHECK_MSG(wg.out == qregs_out, what + ": out differs from variant 4's bits");
          CHECK_MSG(rel_norm_error(wg.out, mma.out) < 2e-3,
                    what + ": out vs mma.sync " + std::to_string(rel_norm_error(wg.out, mma.out)));
          CHECK_MSG(max_rel(wg.lse, mma.lse) < 1e-4,
                    what + ": lse vs mma.sync " + std::to_string(max_rel(wg.lse, mma.lse)));
          CHECK_MSG(rel_norm_error(wg.out, x.out) < 1e-2,
                    what + ": out vs cpu " + std::to_string(rel_norm_error(wg.out, x.out)));
          CHECK_MSG(max_rel(wg.lse, x.lse) < 1e-3,
                    what + ": lse vs cpu " + std::to_string(max_rel(wg.lse, x.lse)));
        }
      });
  // Shapes it does not serve keep the mma.sync / SIMT kernels even when asked.
  ctx.attention_wgmma = 1;
  CHECK(!attention_forward_uses_wgmma(ctx, DevDType::kBF16, AttentionShape{4, 4, 128, 0.1f}));
  CHECK(!attention_forward_uses_wgmma(ctx, DevDType::kBF16, AttentionShape{4, 2, 32, 0.1f}));
  CHECK(!attention_forward_uses_wgmma(ctx, DevDType::kF32, AttentionShape{4, 2, 128, 0.1f}));
#endif
}

TEST(cuda_attention_backward_wgmma_matches_the_mma_kernels_and_the_cpu) {
#if !defined(NPR_WITH_CUDA)
  SKIP("CUDA not compiled into this build");
#else
  CudaContext& ctx = cuda_test_context();
  if (!attention_wgmma_available())
    SKIP(attention_wgmma_compiled() ? "the wgmma kernels need an sm_90 device"
                                    : "this build has no sm_90a kernel");
  Restore restore{ctx};
  Rng rng(98);
  // The backward's dK / dV kernel takes odd groups too (GQA 1, 2, 4).
  const std::vector<HeadCase> cases = {{4, 2, 128}, {2, 2, 64}, {16, 8, 128}, {4, 1, 64}};
  for_each_case(
      ctx, rng, cases,
      [&](const AttentionPlan& plan, const DeviceAttentionPlan& dp, const WgCase& x,
          const std::string& what) {
        const AttentionShape& sh = x.sh;
        const std::vector<float> out = bf16_rounded(x.out);  // what a bf16 forward stores
        const std::vector<float>&q = x.q, &k = x.k, &v = x.v, &dout = x.dout, &lse = x.lse;
        Grads ref{std::vector<float>(q.size()), std::vector<float>(k.size()),
                  std::vector<float>(v.size())};
        CpuContext cpu{nullptr, detect_simd()};
        CHECK_OK(attention_backward_fused(cpu, plan, ref.dq.data(), ref.dk.data(), ref.dv.data(),
                                          dout.data(), q.data(), k.data(), v.data(), out.data(),
                                          lse.data(), sh));
        ctx.deterministic = true;
        ctx.attention_wgmma = 0;
        const Grads mma = backward_on_device(ctx, dp, sh, q, k, v, dout, out, lse);
        ctx.attention_wgmma = 1;
        const Grads wg = backward_on_device(ctx, dp, sh, q, k, v, dout, out, lse);
        const Grads wg2 = backward_on_device(ctx, dp, sh, q, k, v, dout, out, lse);
        // The warp-specialised variants take the warp-specialised dQ kernel (even groups): the
        // one-warpgroup kernel's stages in its order, so its bits.
        ctx.attention_wgmma = 7;
        const Grads ws = backward_on_device(ctx, dp, sh, q, k, v, dout, out, lse);
        ctx.attention_wgmma = 1;
        CHECK_MSG(
            ws.dq == wg.dq && ws.dk == wg.dk && ws.dv == wg.dv,
            what + ": the warp-specialised dQ kernel differs from the one-warpgroup one's bits");
        ctx.deterministic = false;
        const Grads fast = backward_on_device(ctx, dp, sh, q, k, v, dout, out, lse);
        // The two-warpgroup kernels (head_dim 128; 64 falls back to the one-warpgroup ones): each
        // warpgroup runs the one-warpgroup kernel's stages, so dK and dV are its bits; dQ takes
        // Q from registers (held to the tolerances, bit for bit in the emulator), and the
        // atomic dQ sums 128 keys at a time.
        ctx.attention_wgmma_keys = 128;
        const Grads wide_fast = backward_on_device(ctx, dp, sh, q, k, v, dout, out, lse);
        ctx.deterministic = true;
        const Grads wide = backward_on_device(ctx, dp, sh, q, k, v, dout, out, lse);
        ctx.attention_wgmma_keys = 64;
        CHECK_MSG(
            wide.dk == wg.dk && wide.dv == wg.dv,
            what + ": the two-warpgroup dK/dV kernel differs from the one-warpgroup one's bits");
        const double e_wide_det = rel_norm_error(wide.dq, wg.dq);
        CHECK_MSG(e_wide_det < 4e-3,
                  what + ": dq (two-warpgroup) vs one-warpgroup " + std::to_string(e_wide_det));
        CHECK_MSG(wide_fast.dk == wg.dk && wide_fast.dv == wg.dv,
                  what + ": the two-warpgroup dK/dV kernel's atomic mode moved dk / dv");
        const double e_wide = rel_norm_error(wide_fast.dq, ref.dq);
        CHECK_MSG(e_wide < 1e-2,
                  what + ": dq (two-warpgroup, atomic) vs cpu " + std::to_string(e_wide));
        // Deterministic: dQ, dK, dV within fp32 accumulation order of the mma.sync kernels, and
        // run to run bit-identical.
        CHECK_MSG(wg.dk == wg2.dk && wg.dv == wg2.dv && wg.dq == wg2.dq,
                  what + ": two deterministic wgmma runs differ");
        for (const auto& [got, want, name] :
             {std::tuple{&wg.dk, &mma.dk, "dk"}, std::tuple{&wg.dv, &mma.dv, "dv"},
              std::tuple{&wg.dq, &mma.dq, "dq"}, std::tuple{&fast.dq, &mma.dq, "dq (atomic)"}}) {
          const double e = rel_norm_error(*got, *want);
          CHECK_MSG(e < 4e-3, what + ": " + name + " vs mma.sync " + std::to_string(e));
        }
        CHECK_MSG(fast.dk == wg.dk && fast.dv == wg.dv, what + ": atomic mode moved dk / dv");
        for (const auto& [got, want, name] :
             {std::tuple{&wg.dk, &ref.dk, "dk"}, std::tuple{&wg.dv, &ref.dv, "dv"},
              std::tuple{&wg.dq, &ref.dq, "dq"}, std::tuple{&fast.dq, &ref.dq, "dq (atomic)"}}) {
          const double e = rel_norm_error(*got, *want);
          CHECK_MSG(e < 1e-2, what + ": " + name + " vs cpu " + std::to_string(e));
        }
      });
#endif
}

}  // namespace npr::test
