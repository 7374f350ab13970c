// The Hopper forward (parallel_attention_wgmma.h) against the mma.sync forward and the CPU
// fused kernel, on the shapes it serves (bf16, head dims 64 and 128, even GQA groups), built
// for one and for two CTAs an SM: random Structures and odd lengths (1, 17, 63, 64, 65, 97,
// 513: short last tiles, single-token sequences), outputs poisoned first. The two forwards do
// the same arithmetic; the tensor cores may associate a k-step's products differently, so out
// and lse agree within fp32 rounding (relative norm 2e-3, lse 1e-4), and with the CPU within
// the bf16 tolerances of the other forward tests. The backward's wgmma dK / dV kernel likewise
// against the mma.sync one and the CPU, deterministic (run to run bit-identical, dq the mma.sync
// dQ kernel's bits) and with the atomic dQ. Skips unless the build has the sm_90a kernels and
// the device is an sm_90 one.
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

// One sequence per length: a prefix, one block of `steps` steps, the rest shared.
RandomStructure lengths_structure(Rng& rng, const std::vector<int>& lengths, int steps) {
  RandomStructure s;
  s.cu_seqlens.push_back(0);
  int32_t block = 0, step = 0;
  for (int L : lengths) {
    const int prefix = 1 + static_cast<int>(rng.below(std::max(1, L / 3)));
    const int body = std::max(0, std::min(L - prefix, 2 * L / 3));
    int t = 0;
    auto push = [&](int32_t b, int32_t st) {
      s.block.push_back(b);
      s.step.push_back(st);
      s.positions.push_back(t);
      s.prev.push_back(static_cast<int32_t>(s.tokens) - 1);
      ++s.tokens, ++t;
    };
    for (int i = 0; i < prefix && t < L; ++i) push(-1, -1);
    for (int st = 0, used = 0; st < steps && used < body; ++st) {
      const int n = st + 1 == steps ? body - used : 1 + static_cast<int>(rng.below(body - used));
      for (int i = 0; i < n; ++i) push(block, step);
      used += n;
      ++step;
    }
    ++block;
    while (t < L) push(-1, -1);
    s.cu_seqlens.push_back(static_cast<int32_t>(s.tokens));
  }
  return s;
}

struct Restore {
  CudaContext& ctx;
  ~Restore() {
    ctx.attention_wgmma = 0;
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
  std::vector<RandomStructure> structures;
  structures.push_back(lengths_structure(rng, {17, 97, 513}, 3));
  structures.push_back(lengths_structure(rng, {1, 63, 64, 65}, 2));
  structures.push_back(random_structure(rng, 2, 2, 8, 97));
  structures.push_back(random_structure(rng, 1, 2, 6, 300));
  struct HeadCase {
    int64_t heads, kv_heads, dim;
  };
  const HeadCase cases[] = {{4, 2, 128}, {8, 2, 64}, {16, 8, 128}, {8, 4, 64}};
  for (const RandomStructure& rs : structures) {
    AttentionPlan plan;
    CHECK_OK(attention_plan(rs.view(), &plan));
    DeviceAttentionPlan dp;
    CHECK_OK(dp.upload(ctx, plan));
    for (const HeadCase& c : cases) {
      const AttentionShape sh{c.heads, c.kv_heads, c.dim,
                              static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.dim)))};
      const int64_t T = rs.tokens;
      std::vector<float> q = random_vector(rng, T * c.heads * c.dim);
      for (auto& x : q) x *= 2.0f;  // sharper softmax
      q = bf16_rounded(q);
      const std::vector<float> k = bf16_rounded(random_vector(rng, T * c.kv_heads * c.dim));
      const std::vector<float> v = bf16_rounded(random_vector(rng, T * c.kv_heads * c.dim));
      std::vector<float> ref_out(T * c.heads * c.dim), ref_lse(T * c.heads);
      CpuContext cpu{nullptr, detect_simd()};
      CHECK_OK(attention_forward_fused(cpu, plan, ref_out.data(), ref_lse.data(), q.data(),
                                       k.data(), v.data(), sh));
      ctx.attention_wgmma = 0;
      CHECK(!attention_forward_uses_wgmma(ctx, DevDType::kBF16, sh));
      const Forward mma = forward_on_device(ctx, dp, sh, q, k, v);
      for (int ctas : {1, 2}) {
        ctx.attention_wgmma = ctas;
        CHECK(attention_forward_uses_wgmma(ctx, DevDType::kBF16, sh));
        const Forward wg = forward_on_device(ctx, dp, sh, q, k, v);
        const std::string what = "heads " + std::to_string(c.heads) + "/" +
                                 std::to_string(c.kv_heads) + " D " + std::to_string(c.dim) +
                                 " T " + std::to_string(T) + " ctas " + std::to_string(ctas);
        CHECK_MSG(rel_norm_error(wg.out, mma.out) < 2e-3,
                  what + ": out vs mma.sync " + std::to_string(rel_norm_error(wg.out, mma.out)));
        CHECK_MSG(max_rel(wg.lse, mma.lse) < 1e-4,
                  what + ": lse vs mma.sync " + std::to_string(max_rel(wg.lse, mma.lse)));
        CHECK_MSG(rel_norm_error(wg.out, ref_out) < 1e-2,
                  what + ": out vs cpu " + std::to_string(rel_norm_error(wg.out, ref_out)));
        CHECK_MSG(max_rel(wg.lse, ref_lse) < 1e-3,
                  what + ": lse vs cpu " + std::to_string(max_rel(wg.lse, ref_lse)));
      }
    }
  }
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
  std::vector<RandomStructure> structures;
  structures.push_back(lengths_structure(rng, {17, 97, 513}, 3));
  structures.push_back(lengths_structure(rng, {1, 63, 64, 65}, 2));
  structures.push_back(random_structure(rng, 2, 2, 8, 97));
  struct HeadCase {
    int64_t heads, kv_heads, dim;
  };
  // The backward's dK / dV kernel takes odd groups too (GQA 1, 2, 4).
  const HeadCase cases[] = {{4, 2, 128}, {2, 2, 64}, {16, 8, 128}, {4, 1, 64}};
  for (const RandomStructure& rs : structures) {
    AttentionPlan plan;
    CHECK_OK(attention_plan(rs.view(), &plan));
    DeviceAttentionPlan dp;
    CHECK_OK(dp.upload(ctx, plan));
    for (const HeadCase& c : cases) {
      const AttentionShape sh{c.heads, c.kv_heads, c.dim,
                              static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.dim)))};
      const int64_t T = rs.tokens;
      std::vector<float> q = random_vector(rng, T * c.heads * c.dim);
      for (auto& x : q) x *= 2.0f;
      q = bf16_rounded(q);
      const std::vector<float> k = bf16_rounded(random_vector(rng, T * c.kv_heads * c.dim));
      const std::vector<float> v = bf16_rounded(random_vector(rng, T * c.kv_heads * c.dim));
      const std::vector<float> dout = bf16_rounded(random_vector(rng, T * c.heads * c.dim));
      std::vector<float> out(T * c.heads * c.dim), lse(T * c.heads);
      CpuContext cpu{nullptr, detect_simd()};
      CHECK_OK(attention_forward_fused(cpu, plan, out.data(), lse.data(), q.data(), k.data(),
                                       v.data(), sh));
      out = bf16_rounded(out);  // what a bf16 forward stores
      Grads ref{std::vector<float>(q.size()), std::vector<float>(k.size()),
                std::vector<float>(v.size())};
      CHECK_OK(attention_backward_fused(cpu, plan, ref.dq.data(), ref.dk.data(), ref.dv.data(),
                                        dout.data(), q.data(), k.data(), v.data(), out.data(),
                                        lse.data(), sh));
      const std::string what = "heads " + std::to_string(c.heads) + "/" +
                               std::to_string(c.kv_heads) + " D " + std::to_string(c.dim) + " T " +
                               std::to_string(T);
      ctx.deterministic = true;
      ctx.attention_wgmma = 0;
      const Grads mma = backward_on_device(ctx, dp, sh, q, k, v, dout, out, lse);
      ctx.attention_wgmma = 1;
      const Grads wg = backward_on_device(ctx, dp, sh, q, k, v, dout, out, lse);
      const Grads wg2 = backward_on_device(ctx, dp, sh, q, k, v, dout, out, lse);
      ctx.deterministic = false;
      const Grads fast = backward_on_device(ctx, dp, sh, q, k, v, dout, out, lse);
      // Deterministic: the same dQ kernel on the same inputs (same bits), dK / dV within fp32
      // accumulation order of the mma.sync ones, and run to run bit-identical.
      CHECK_MSG(wg.dq == mma.dq, what + ": deterministic dq differs from the mma.sync path");
      CHECK_MSG(wg.dk == wg2.dk && wg.dv == wg2.dv && wg.dq == wg2.dq,
                what + ": two deterministic wgmma runs differ");
      for (const auto& [got, want, name] :
           {std::tuple{&wg.dk, &mma.dk, "dk"}, std::tuple{&wg.dv, &mma.dv, "dv"},
            std::tuple{&fast.dq, &mma.dq, "dq (atomic)"}}) {
        const double e = rel_norm_error(*got, *want);
        CHECK_MSG(e < 4e-3, what + ": " + name + " vs mma.sync " + std::to_string(e));
      }
      CHECK_MSG(fast.dk == wg.dk && fast.dv == wg.dv, what + ": atomic mode moved dk / dv");
      for (const auto& [got, want, name] :
           {std::tuple{&wg.dk, &ref.dk, "dk"}, std::tuple{&wg.dv, &ref.dv, "dv"},
            std::tuple{&fast.dq, &ref.dq, "dq (atomic)"}}) {
        const double e = rel_norm_error(*got, *want);
        CHECK_MSG(e < 1e-2, what + ": " + name + " vs cpu " + std::to_string(e));
      }
    }
  }
#endif
}

}  // namespace npr::test
