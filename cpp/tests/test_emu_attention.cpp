// The fused attention's device kernels run by the CPU emulator (cpp/tests/emu), on every machine
// whose build found the CUDA toolkit's headers: the Hopper (sm_90a, wgmma) kernels that no GPU
// here can run, and, as a check of the emulator itself, the mma.sync forwards that GPU runs have
// already checked. Each kernel runs twice: asynchronous copies and MMAs landing only at their
// waits (threads resumed first-first), and landing at issue (last-first); either way outputs
// start poisoned and must match the CPU fused kernels within the bf16 tolerances of the GPU
// tests (test_cuda_attention_wgmma.cpp), and a fault of the emulator (a shared-memory access
// outside the block's window, an async copy outside the test's buffers, registers of a wgmma in
// flight touched, a wgmma reading cp.async data no proxy fence published, a deadlock) fails the
// case with its reason.
#include <cmath>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/parallel_attention.h"
#include "kernels/parallel_attention_wgmma.h"
#include "tests/harness.h"
#include "tests/test_structures.h"
#include "tests/test_util.h"
#if defined(NPR_HAVE_EMU)
#include "tests/emu/emu_attention.h"
#include "tests/emu/emu_runtime.h"
#include "tests/test_emu_attention_cases.h"
#endif

namespace npr::test {

TEST(emu_attention_forward_kernels_match_the_cpu) {
#if !defined(NPR_HAVE_EMU)
  SKIP("the kernel emulator is not built (no CUDA toolkit headers, or NPR_EMU=off)");
#else
  Rng rng(201);
  struct Heads {
    int64_t heads, kv_heads, dim;
  };
  const std::vector<Heads> cases = {{4, 2, 128}, {8, 2, 64}, {2, 1, 64}};
  // And a sequence of 8 key tiles, so that the forwards' K/V rings (up to 5 stages, whatever
  // the heads) wrap: one pair of heads of dim 128 there (every case on it was ~25 s of the
  // sanitizer run's longest process).
  const std::vector<Heads> long_cases = {{2, 1, 128}};
  size_t n_short = 0;
  const std::vector<RandomStructure> all = structures_and_a_long_one(rng, &n_short);
  for (size_t si = 0; si < all.size(); ++si) {
    const RandomStructure& rs = all[si];
    AttentionPlan plan;
    CHECK_OK(attention_plan(rs.view(), &plan));
    const emu::PlanArrays arrays = arrays_of(plan);
    for (const Heads& c : si < n_short ? cases : long_cases) {
      const EmuCase x = make_case(rng, plan, c.heads, c.kv_heads, c.dim);
      const std::vector<uint16_t> q = bits_of(x.q), k = bits_of(x.k), v = bits_of(x.v);
      const std::string shape = "heads " + std::to_string(c.heads) + "/" +
                                std::to_string(c.kv_heads) + " D " + std::to_string(c.dim) + " T " +
                                std::to_string(rs.tokens);
      std::vector<float> mma2_out, mma2_lse;
      std::vector<uint16_t> wgmma1_out;   // the pipelined build's bits, by mode
      std::vector<uint16_t> wgmma10_out;  // the 128-key kernel's own bits, by mode
      for (const char* kernel : {"mma", "mma2", "wgmma1", "wgmma2", "wgmma3", "wgmma4", "wgmma5",
                                 "wgmma6", "wgmma7", "wgmma8", "wgmma9", "wgmma10", "wgmma11"})
        for (const Mode& m : kModes) {
          std::vector<uint16_t> out(x.out.size(), 0xffff);  // NaN
          std::vector<float> lse = poisoned(static_cast<int64_t>(x.lse.size()));
          emu::set_options(m.opt);
          std::string fault;
          {
            const Registered reg(q, k, v, out, lse, plan.masks);
            fault = emu::attention_forward(kernel, arrays, dims_of(x.sh), out.data(), lse.data(),
                                           q.data(), k.data(), v.data());
          }
          const std::string what = shape + " " + kernel + " (" + m.name + ")";
          CHECK_MSG(fault.empty(), what + ": " + fault);
          if (!fault.empty()) continue;
          const std::vector<float> got = floats_of(out);
          const double e_out = rel_norm_error(got, x.out), e_lse = max_rel(lse, x.lse);
          CHECK_MSG(e_out < 1e-2, what + ": out vs cpu " + std::to_string(e_out));
          CHECK_MSG(e_lse < 1e-3, what + ": lse vs cpu " + std::to_string(e_lse));
          // Loading one tile ahead or two changes when K/V land, not the sums, nor do Q's place
          // (registers or shared memory), the warpgroups' ping-pong and tensor-map copies from a
          // producer warp: the same bits.
          const std::string kn = kernel;
          if (kn == "wgmma1") wgmma1_out = out;
          if (kn.size() == 6 && kn.rfind("wgmma", 0) == 0 && kn[5] >= '3')
            CHECK_MSG(out == wgmma1_out, what + ": out differs from wgmma1's bits");
          // The 128-key kernel sums in its own order, but when its copies and MMAs land does
          // not change them, nor does the ping-pong (11): the same bits in both modes.
          if (kn == "wgmma10" || kn == "wgmma11") {
            if (wgmma10_out.empty())
              wgmma10_out = out;
            else
              CHECK_MSG(out == wgmma10_out, what + ": out differs from wgmma10's first bits");
          }
          if (std::string(kernel) == "mma2") {
            mma2_out = got;
            mma2_lse = lse;
          } else if (!mma2_out.empty() && std::string(kernel) != "mma") {
            // The wgmma forwards against the mma.sync one they replace, as on a GPU.
            const double e = rel_norm_error(got, mma2_out), el = max_rel(lse, mma2_lse);
            CHECK_MSG(e < 2e-3, what + ": out vs mma2 " + std::to_string(e));
            CHECK_MSG(el < 1e-4, what + ": lse vs mma2 " + std::to_string(el));
          }
        }
    }
  }
  emu::set_options(emu::Options{});
#endif
}

TEST(emu_attention_backward_kernels_match_the_cpu) {
#if !defined(NPR_HAVE_EMU)
  SKIP("the kernel emulator is not built (no CUDA toolkit headers, or NPR_EMU=off)");
#else
  Rng rng(202);
  struct Heads {
    int64_t heads, kv_heads, dim;
  };
  // The dK / dV kernel takes odd groups too (GQA 1, 2, 4).
  const std::vector<Heads> cases = {{4, 2, 128}, {2, 2, 64}, {4, 1, 64}};
  // And a sequence of 8 tiles, deterministic wgmma paths only, so that the warp-specialised dQ
  // kernel's K / V ring (4 stages) wraps.
  const std::vector<Heads> long_cases = {{2, 1, 128}};
  size_t n_short = 0;
  const std::vector<RandomStructure> all = structures_and_a_long_one(rng, &n_short);
  for (size_t si = 0; si < all.size(); ++si) {
    const RandomStructure& rs = all[si];
    const bool long_case = si >= n_short;
    AttentionPlan plan;
    CHECK_OK(attention_plan(rs.view(), &plan));
    const emu::PlanArrays arrays = arrays_of(plan);
    const int64_t T = plan.tokens;
    for (const Heads& c : long_case ? long_cases : cases) {
      const EmuCase x = make_case(rng, plan, c.heads, c.kv_heads, c.dim);
      const AttentionShape& sh = x.sh;
      const std::vector<float> out = bf16_rounded(x.out);  // what a bf16 forward stores
      const CpuGrads cg = cpu_grads(plan, x);
      const std::vector<float>&dq = cg.dq, &dk = cg.dk, &dv = cg.dv;
      // The stats the device backward computes before its dK / dV kernel: lse * log2 e and
      // delta = rowsum(dO * O), both (heads, T).
      std::vector<float> stats(static_cast<size_t>(2 * c.heads * T));
      for (int64_t t = 0; t < T; ++t)
        for (int64_t h = 0; h < c.heads; ++h) {
          double delta = 0;
          for (int64_t e = 0; e < c.dim; ++e) {
            const size_t i = static_cast<size_t>((t * c.heads + h) * c.dim + e);
            delta += static_cast<double>(x.dout[i]) * out[i];
          }
          stats[static_cast<size_t>(h * T + t)] =
              x.lse[static_cast<size_t>(t * c.heads + h)] * 1.4426950408889634f;
          stats[static_cast<size_t>((c.heads + h) * T + t)] = static_cast<float>(delta);
        }
      const std::vector<uint16_t> q = bits_of(x.q), k = bits_of(x.k), v = bits_of(x.v),
                                  dout = bits_of(x.dout);
      const std::string shape = "heads " + std::to_string(c.heads) + "/" +
                                std::to_string(c.kv_heads) + " D " + std::to_string(c.dim) + " T " +
                                std::to_string(T);
      // Each path: "mma" (the mma.sync dK/dV and dQ kernels), "wgmma" (the sm_90a dK/dV and dQ
      // kernels), "wide" (their 128-key / 128-query two-warpgroup builds, head_dim 128), each
      // deterministic or with the atomic dQ; gradients as fp32.
      struct Grads {
        std::vector<float> dq, dk, dv;
      };
      const auto run = [&](const std::string& path, bool atomic, const Mode& m,
                           const std::string& what, Grads* g) {
        std::vector<uint16_t> gq(x.q.size(), 0xffff), gk(x.k.size(), 0xffff),
            gv(x.v.size(), 0xffff);
        // The atomic dQ's sums: token order for mma.sync, the wgmma kernels' tile order.
        const size_t acc_n =
            !atomic ? 0
            : path == "mma"
                ? x.q.size()
                : static_cast<size_t>(attention_tile_dq_acc_floats(plan.tiles, c.heads, c.dim));
        std::vector<float> acc(acc_n, 0.0f);
        float* const dq_acc = atomic ? acc.data() : nullptr;
        emu::set_options(m.opt);
        std::string fault;
        {
          const Registered reg(q, k, v, dout, stats, gq, gk, gv, acc, plan.masks);
          if (path == "mma") {
            fault = emu::attention_backward_mma(arrays, dims_of(sh), gq.data(), gk.data(),
                                                gv.data(), dq_acc, dout.data(), q.data(), k.data(),
                                                v.data(), stats.data());
          } else {
            fault = path == "wide" ? emu::attention_backward_dkdv_wgmma_wide(
                                         arrays, dims_of(sh), gk.data(), gv.data(), dq_acc,
                                         dout.data(), q.data(), k.data(), v.data(), stats.data())
                                   : emu::attention_backward_dkdv_wgmma(
                                         arrays, dims_of(sh), gk.data(), gv.data(), dq_acc,
                                         dout.data(), q.data(), k.data(), v.data(), stats.data());
            if (fault.empty() && !atomic)
              fault = path == "wide"
                          ? emu::attention_backward_dq_wgmma_wide(arrays, dims_of(sh), gq.data(),
                                                                  dout.data(), q.data(), k.data(),
                                                                  v.data(), stats.data())
                          : emu::attention_backward_dq_wgmma(arrays, dims_of(sh), gq.data(),
                                                             dout.data(), q.data(), k.data(),
                                                             v.data(), stats.data());
          }
          if (fault.empty() && atomic)  // the launcher's last pass: the sums into dq
            fault =
                path == "mma"
                    ? emu::attention_dq_from_acc(gq.data(), acc.data(),
                                                 static_cast<int64_t>(acc.size()), sh.scale)
                    : emu::attention_dq_from_tile_acc(arrays, dims_of(sh), gq.data(), acc.data());
        }
        CHECK_MSG(fault.empty(), what + ": " + fault);
        if (!fault.empty()) return false;
        g->dk = floats_of(gk);
        g->dv = floats_of(gv);
        g->dq = floats_of(gq);
        return true;
      };
      for (const bool atomic : {false, true})
        for (const Mode& m : kModes) {
          if (long_case && atomic) continue;
          const std::string tail =
              std::string(atomic ? " atomic dQ" : " deterministic") + " (" + m.name + ")";
          Grads mma, wg;
          const bool ok_mma = !long_case && run("mma", atomic, m, shape + " mma.sync" + tail, &mma);
          const bool ok_wg = run("wgmma", atomic, m, shape + " wgmma" + tail, &wg);
          for (const auto& [g, ok, name] :
               {std::tuple{&mma, ok_mma, " mma.sync"}, std::tuple{&wg, ok_wg, " wgmma"}}) {
            if (!ok) continue;
            for (const auto& [got, want, grad] :
                 {std::tuple{&g->dq, &dq, "dq"}, std::tuple{&g->dk, &dk, "dk"},
                  std::tuple{&g->dv, &dv, "dv"}}) {
              const double e = rel_norm_error(*got, *want);
              CHECK_MSG(e < 1e-2,
                        shape + name + tail + ": " + grad + " vs cpu " + std::to_string(e));
            }
          }
          if (c.dim == 128 && !long_case) {
            // The two-warpgroup kernels: each warpgroup runs the one-warpgroup kernel's stages, so
            // dK, dV and the deterministic dQ are its bits; the atomic dQ sums over 128 keys at a
            // time, within rounding.
            Grads wide;
            if (run("wide", atomic, m, shape + " wgmma wide" + tail, &wide) && ok_wg) {
              CHECK_MSG(bits_of(wide.dk) == bits_of(wg.dk),
                        shape + " wgmma wide" + tail + ": dk bits");
              CHECK_MSG(bits_of(wide.dv) == bits_of(wg.dv),
                        shape + " wgmma wide" + tail + ": dv bits");
              const double e = rel_norm_error(wide.dq, dq);
              CHECK_MSG(e < 1e-2,
                        shape + " wgmma wide" + tail + ": dq vs cpu " + std::to_string(e));
              if (!atomic)
                CHECK_MSG(bits_of(wide.dq) == bits_of(wg.dq),
                          shape + " wgmma wide" + tail + ": dq bits");
            }
          }
          if (!atomic && ok_wg) {
            // The dK / dV kernel with Q and dO by tensor-map copies: the same stages, the same
            // bits.
            std::vector<uint16_t> gk(x.k.size(), 0xffff), gv(x.v.size(), 0xffff);
            emu::set_options(m.opt);
            std::string fault;
            {
              const Registered reg(q, k, v, dout, stats, gk, gv, plan.masks);
              fault = emu::attention_backward_dkdv_wgmma(arrays, dims_of(sh), gk.data(), gv.data(),
                                                         nullptr, dout.data(), q.data(), k.data(),
                                                         v.data(), stats.data(), true);
            }
            CHECK_MSG(fault.empty(), shape + " wgmma tma" + tail + ": " + fault);
            if (fault.empty())
              CHECK_MSG(gk == bits_of(wg.dk) && gv == bits_of(wg.dv),
                        shape + " wgmma tma" + tail + ": dk / dv bits");
          }
          if (!atomic && ok_wg && (c.heads / c.kv_heads) % 2 == 0) {
            // The warp-specialised dQ kernel: each warpgroup runs the one-warpgroup kernel's
            // stages in its order, on K and V a producer warp brings by tensor-map copies.
            std::vector<uint16_t> gq(x.q.size(), 0xffff);
            emu::set_options(m.opt);
            std::string fault;
            {
              const Registered reg(q, k, v, dout, stats, gq, plan.masks);
              fault =
                  emu::attention_backward_dq_wgmma_ws(arrays, dims_of(sh), gq.data(), dout.data(),
                                                      q.data(), k.data(), v.data(), stats.data());
            }
            CHECK_MSG(fault.empty(), shape + " wgmma ws" + tail + ": " + fault);
            if (fault.empty())
              CHECK_MSG(bits_of(floats_of(gq)) == bits_of(wg.dq),
                        shape + " wgmma ws" + tail + ": dq bits");
          }
          if (!ok_mma || !ok_wg) continue;
          // The wgmma kernels against the mma.sync ones they replace, as on a GPU.
          for (const auto& [got, want, grad] :
               {std::tuple{&wg.dq, &mma.dq, "dq"}, std::tuple{&wg.dk, &mma.dk, "dk"},
                std::tuple{&wg.dv, &mma.dv, "dv"}}) {
            const double e = rel_norm_error(*got, *want);
            CHECK_MSG(e < 4e-3,
                      shape + " wgmma" + tail + ": " + grad + " vs mma.sync " + std::to_string(e));
          }
        }
    }
  }
  emu::set_options(emu::Options{});
#endif
}

}  // namespace npr::test
