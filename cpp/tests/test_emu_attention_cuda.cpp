// The attention's device entry points (attention_forward_cuda, attention_backward_cuda) run whole
// by the CPU emulator (cpp/tests/emu), as the model calls them: CudaContext on an emulated
// H100-class device, the plan and the tensors in device memory, the dispatch choosing the
// kernels, the backward's scratch (its stats, and the atomic dQ's fp32 sums, which must be
// zeroed: device memory starts poisoned), every launch's configuration checked as the runtime
// checks it (the shared-memory opt-in above 48 KB, the grid). The kernels themselves are also
// checked one by one (test_emu_attention.cpp); this is the host code around them, which for the
// wgmma switch and the atomic dQ no GPU has run yet.
//
// Every path's outputs against the CPU fused kernels (bf16 bounds of the GPU tests); the atomic
// dQ changes dq's rounding only, so its dK and dV must be the deterministic run's bits.
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/parallel_attention.h"
#include "tests/harness.h"
#include "tests/test_structures.h"
#include "tests/test_util.h"
#if defined(NPR_HAVE_EMU)
#include "tests/emu/emu_attention.h"
#include "tests/emu/emu_cuda_api.h"
#include "tests/emu/emu_runtime.h"
#include "tests/test_emu_attention_cases.h"
#endif

namespace npr::test {

TEST(emu_attention_device_entry_points_run_every_path) {
#if !defined(NPR_HAVE_EMU)
  SKIP("the kernel emulator is not built (no CUDA toolkit headers, or NPR_EMU=off)");
#else
  Rng rng(203);
  struct Heads {
    int64_t heads, kv_heads, dim;
  };
  // An even GQA group (the paired-head forwards, mma2 or wgmma), an odd one (the one-head mma.sync
  // forward whatever the switch; the backward's kernels take any group).
  const std::vector<Heads> cases = {{4, 2, 128}, {4, 1, 64}, {3, 1, 64}};
  struct Path {
    emu::AttentionCall call;
    const char* name;
  };
  const Path paths[] = {{{0, true}, "mma.sync, deterministic"},
                        {{0, false}, "mma.sync, atomic dQ"},
                        {{1, true}, "wgmma (one CTA an SM), deterministic"},
                        {{8, true}, "wgmma warp-specialised (TMA), deterministic"},
                        {{9, true}, "wgmma ping-pong with tensor-map copies, deterministic"},
                        {{2, false}, "wgmma (two CTAs an SM), atomic dQ"},
                        {{1, true, 128}, "wgmma, two-warpgroup backward, deterministic"},
                        {{2, false, 128}, "wgmma, two-warpgroup backward, atomic dQ"}};
  emu::set_options(kModes[0].opt);
  for (const RandomStructure& rs : structures(rng)) {
    AttentionPlan plan;
    CHECK_OK(attention_plan(rs.view(), &plan));
    const emu::PlanArrays arrays = arrays_of(plan);
    for (const Heads& c : cases) {
      const EmuCase x = make_case(rng, plan, c.heads, c.kv_heads, c.dim);
      const CpuGrads want = cpu_grads(plan, x);
      const std::vector<uint16_t> q = bits_of(x.q), k = bits_of(x.k), v = bits_of(x.v),
                                  dout = bits_of(x.dout);
      const std::string shape = "heads " + std::to_string(c.heads) + "/" +
                                std::to_string(c.kv_heads) + " D " + std::to_string(c.dim) + " T " +
                                std::to_string(plan.tokens);
      std::vector<uint16_t> det_dk[2], det_dv[2];  // the deterministic runs', by wgmma or not
      std::vector<uint16_t> wgmma_dq;              // the first deterministic wgmma run's
      for (const Path& p : paths) {
        const std::string what = shape + ", " + p.name;
        std::vector<uint16_t> out(q.size()), dq(q.size()), dk(k.size()), dv(v.size());
        std::vector<float> lse(x.lse.size());
        bool fwd_wgmma = false, bwd_wgmma = false;
        const std::string err = emu::attention_cuda(
            p.call, arrays, dims_of(x.sh), q.data(), k.data(), v.data(), dout.data(), out.data(),
            lse.data(), dq.data(), dk.data(), dv.data(), &fwd_wgmma, &bwd_wgmma);
        CHECK_MSG(err.empty(), what + ": " + err);
        if (!err.empty()) continue;
        // The switch reached the dispatch: wgmma where the shape allows it.
        const bool even = (c.heads / c.kv_heads) % 2 == 0;
        CHECK_MSG(fwd_wgmma == (p.call.wgmma != 0 && even), what + ": forward kernel choice");
        CHECK_MSG(bwd_wgmma == (p.call.wgmma != 0), what + ": backward kernel choice");
        const double e_out = rel_norm_error(floats_of(out), x.out), e_lse = max_rel(lse, x.lse);
        CHECK_MSG(e_out < 1e-2, what + ": out vs cpu " + std::to_string(e_out));
        CHECK_MSG(e_lse < 1e-3, what + ": lse vs cpu " + std::to_string(e_lse));
        const std::vector<float> gq = floats_of(dq), gk = floats_of(dk), gv = floats_of(dv);
        for (const auto& [got, ref, grad] :
             {std::tuple{&gq, &want.dq, "dq"}, std::tuple{&gk, &want.dk, "dk"},
              std::tuple{&gv, &want.dv, "dv"}}) {
          const double e = rel_norm_error(*got, *ref);
          CHECK_MSG(e < 1e-2, what + ": " + grad + " vs cpu " + std::to_string(e));
        }
        // One dK / dV kernel per backward path, with or without the atomic dQ (and the same
        // for both wgmma forwards, and for the two-warpgroup wgmma kernel, whose warpgroups each
        // run the 64-key kernel's stages).
        const int w = p.call.wgmma != 0 ? 1 : 0;
        if (p.call.deterministic && p.call.wgmma_keys == 64 && det_dk[w].empty()) {
          det_dk[w] = dk;
          det_dv[w] = dv;
          if (w == 1) wgmma_dq = dq;
        } else {
          CHECK_MSG(dk == det_dk[w] && dv == det_dv[w],
                    what + ": dK / dV differ from the deterministic run's bits");
          // The warp-specialised dQ kernel (even groups; odd ones keep the one-warpgroup
          // kernel): the one-warpgroup kernel's stages in its order.
          if (p.call.wgmma >= 7)
            CHECK_MSG(dq == wgmma_dq, what + ": dq differs from the one-warpgroup kernel's bits");
        }
      }
    }
  }
  emu::set_options(emu::Options{});
  CHECK_MSG(emu::device_bytes_in_use() == 0 && emu::device_allocations() == 0,
            "the entry points left " + std::to_string(emu::device_bytes_in_use()) +
                " bytes of device memory allocated");
#endif
}

}  // namespace npr::test
