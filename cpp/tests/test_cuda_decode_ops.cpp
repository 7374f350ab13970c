// The decode step's fused attention-input kernel (qk_norm_rope_cuda.h) against the separate
// device ops it replaces: rmsnorm_forward_cuda over the q and k heads, rope_apply_cuda, and the
// slot write (done on the host from the separate ops' k and v). Odd head counts and head dims
// (40, 200: not multiples of 32 or 64), several tokens with scattered slots, fp32 and bf16;
// pages start poisoned and every slot no token owns must stay so.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "kernels/rope.h"
#include "tests/harness.h"
#include "tests/test_util.h"
#if defined(NPR_WITH_CUDA)
#include "kernels/qk_norm_rope_cuda.h"
#include "kernels/rmsnorm_cuda.h"
#include "kernels/rope_cuda.h"
#include "tests/test_cuda_util.h"
#endif

namespace npr::test {

#if defined(NPR_WITH_CUDA)

TEST(cuda_qk_norm_rope_write_equals_the_separate_ops) {
  CudaContext& ctx = cuda_test_context();
  Rng rng(4242);
  const float eps = 1e-6f;
  int cases = 0;
  for (DevDType t : {DevDType::kF32, DevDType::kBF16})
    for (auto [heads, kvh, D] : {std::tuple<int64_t, int64_t, int64_t>{4, 2, 16},
                                 {16, 8, 128},
                                 {6, 3, 40},
                                 {2, 1, 200},
                                 {2, 2, 320}})  // 320: past the register path (head_dim > 256)
      for (int64_t N : {1, 3, 9}) {
        const int64_t per = heads + 2 * kvh, n_slots = N + 5;
        auto qkv = random_vector(rng, N * per * D);
        for (float& x : qkv) x *= 3.0f;
        if (t == DevDType::kBF16) qkv = bf16_rounded(qkv);
        const auto qw = random_vector(rng, D), kw = random_vector(rng, D);
        std::vector<int32_t> pos(N), slots(N);
        std::vector<int32_t> perm(n_slots);
        for (int64_t i = 0; i < n_slots; ++i) perm[i] = static_cast<int32_t>(i);
        for (int64_t i = n_slots - 1; i > 0; --i) std::swap(perm[i], perm[rng.below(i + 1)]);
        for (int64_t i = 0; i < N; ++i) {
          pos[i] = static_cast<int32_t>(rng.below(5000));
          slots[i] = perm[i];
        }
        RopeTable rope;
        rope_table_build(&rope, pos.data(), N, D, 1e6);
        // The separate ops on split q, k, v.
        std::vector<float> q(N * heads * D), k(N * kvh * D), v(N * kvh * D);
        for (int64_t i = 0; i < N; ++i)
          for (int64_t r = 0; r < per; ++r)
            for (int64_t e = 0; e < D; ++e) {
              const float x = qkv[(i * per + r) * D + e];
              if (r < heads)
                q[(i * heads + r) * D + e] = x;
              else if (r < heads + kvh)
                k[(i * kvh + r - heads) * D + e] = x;
              else
                v[(i * kvh + r - heads - kvh) * D + e] = x;
            }
        DeviceBuffer dq = to_device(ctx, q, t), dk = to_device(ctx, k, t);
        DeviceBuffer dqw = to_device(ctx, qw, DevDType::kF32),
                     dkw = to_device(ctx, kw, DevDType::kF32);
        DeviceBuffer dcos = to_device(ctx, rope.cos, DevDType::kF32);
        DeviceBuffer dsin = to_device(ctx, rope.sin, DevDType::kF32);
        DeviceBuffer rstd = poisoned_device(ctx, N * heads, DevDType::kF32);
        CHECK_OK(rmsnorm_forward_cuda(ctx, t, t, dq.get(), rstd.as<float>(), dq.get(),
                                      dqw.as<float>(), N * heads, D, eps));
        CHECK_OK(rmsnorm_forward_cuda(ctx, t, t, dk.get(), rstd.as<float>(), dk.get(),
                                      dkw.as<float>(), N * kvh, D, eps));
        CHECK_OK(rope_apply_cuda(ctx, t, dq.get(), dcos.as<float>(), dsin.as<float>(), N, heads, D,
                                 false));
        CHECK_OK(rope_apply_cuda(ctx, t, dk.get(), dcos.as<float>(), dsin.as<float>(), N, kvh, D,
                                 false));
        const auto want_q = to_host(ctx, dq, N * heads * D, t);
        const auto k_sep = to_host(ctx, dk, N * kvh * D, t);
        std::vector<float> want_k = poisoned(n_slots * kvh * D), want_v = want_k;
        for (int64_t i = 0; i < N; ++i)
          for (int64_t e = 0; e < kvh * D; ++e) {
            want_k[slots[i] * kvh * D + e] = k_sep[i * kvh * D + e];
            want_v[slots[i] * kvh * D + e] = v[i * kvh * D + e];
          }
        // The fused kernel.
        DeviceBuffer dqkv = to_device(ctx, qkv, t), dslots = to_device_i32(ctx, slots);
        DeviceBuffer qo = poisoned_device(ctx, N * heads * D, t);
        DeviceBuffer kp = poisoned_device(ctx, n_slots * kvh * D, t);
        DeviceBuffer vp = poisoned_device(ctx, n_slots * kvh * D, t);
        CHECK_OK(qk_norm_rope_write_cuda(
            ctx, t, qo.get(), kp.get(), vp.get(), dqkv.get(), dqw.as<float>(), dkw.as<float>(),
            dcos.as<float>(), dsin.as<float>(), dslots.as<int32_t>(), N, heads, kvh, D, eps));
        const auto got_q = to_host(ctx, qo, N * heads * D, t);
        const auto got_k = to_host(ctx, kp, n_slots * kvh * D, t);
        const auto got_v = to_host(ctx, vp, n_slots * kvh * D, t);
        const std::string what = std::string(dev_dtype_name(t)) + " heads " +
                                 std::to_string(heads) + "/" + std::to_string(kvh) + " D " +
                                 std::to_string(D) + " tokens " + std::to_string(N);
        {  // As a programmatic dependent launch: the same bits, untouched slots still poisoned.
          DeviceBuffer qo2 = poisoned_device(ctx, N * heads * D, t);
          DeviceBuffer kp2 = poisoned_device(ctx, n_slots * kvh * D, t);
          DeviceBuffer vp2 = poisoned_device(ctx, n_slots * kvh * D, t);
          CHECK_OK(qk_norm_rope_write_cuda(ctx, t, qo2.get(), kp2.get(), vp2.get(), dqkv.get(),
                                           dqw.as<float>(), dkw.as<float>(), dcos.as<float>(),
                                           dsin.as<float>(), dslots.as<int32_t>(), N, heads, kvh, D,
                                           eps, true));
          const auto q2 = to_host(ctx, qo2, N * heads * D, t);
          const auto k2 = to_host(ctx, kp2, n_slots * kvh * D, t);
          const auto v2 = to_host(ctx, vp2, n_slots * kvh * D, t);
          CHECK_MSG(std::memcmp(q2.data(), got_q.data(), 4 * q2.size()) == 0 &&
                        std::memcmp(k2.data(), got_k.data(), 4 * k2.size()) == 0 &&
                        std::memcmp(v2.data(), got_v.data(), 4 * v2.size()) == 0,
                    what + ": the pdl launch changed bits");
        }
        // Same formulas, same rounding points: equal up to the compiler's fma contraction.
        const double tol = t == DevDType::kF32 ? 1e-5 : 2e-2;
        CHECK_MSG(max_abs_diff(got_q, want_q) <= tol,
                  what + ": q " + std::to_string(max_abs_diff(got_q, want_q)));
        bool untouched = true;
        double dk_max = 0.0, dv_max = 0.0;
        for (size_t i = 0; i < got_k.size(); ++i) {
          if (std::isnan(want_k[i])) {
            untouched = untouched && std::isnan(got_k[i]) && std::isnan(got_v[i]);
            continue;
          }
          dk_max = std::max(dk_max, std::fabs(static_cast<double>(got_k[i]) - want_k[i]));
          dv_max = std::max(dv_max, std::fabs(static_cast<double>(got_v[i]) - want_v[i]));
          if (std::isnan(got_k[i]) || std::isnan(got_v[i])) dk_max = INFINITY;
        }
        CHECK_MSG(untouched, what + ": wrote into a slot no token owns");
        CHECK_MSG(dk_max <= tol, what + ": k " + std::to_string(dk_max));
        CHECK_MSG(dv_max == 0.0, what + ": v " + std::to_string(dv_max));
        ++cases;
      }
  std::printf("    %d fused q/k norm + rope + write cases\n", cases);
}

TEST(cuda_qk_norm_rope_write_refuses_bad_shapes) {
  CudaContext& ctx = cuda_test_context();
  Rng rng(1);
  DeviceBuffer a = to_device(ctx, random_vector(rng, 64), DevDType::kF32);
  void* p = a.get();
  const float* f = a.as<float>();
  const int32_t* s = a.as<int32_t>();
  CHECK(qk_norm_rope_write_cuda(ctx, DevDType::kF32, p, p, p, p, f, f, f, f, s, 1, 2, 1, 7, 1e-6f)
            .code() == StatusCode::kInvalidArgument);
  CHECK(qk_norm_rope_write_cuda(ctx, DevDType::kF32, p, p, p, p, f, f, f, f, s, 1, 0, 1, 8, 1e-6f)
            .code() == StatusCode::kInvalidArgument);
  CHECK(qk_norm_rope_write_cuda(ctx, DevDType::kF32, nullptr, p, p, p, f, f, f, f, s, 1, 2, 1, 8,
                                1e-6f)
            .code() == StatusCode::kInvalidArgument);
}

#else
TEST(cuda_qk_norm_rope_write_needs_a_cuda_build) {
  SKIP("built without CUDA (NPR_CUDA=off or no nvcc)");
}
#endif

}  // namespace npr::test
