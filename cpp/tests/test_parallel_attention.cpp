// The fused block-sparse attention (parallel_attention.h) against the naive double reference:
// the plan's tile classification against a brute-force per-element one (random depth-1 and
// depth-2 structures, empty sequences); forward, lse and all gradients on random Structures
// (several sequences, prefixes and blocks of 1..8 steps of odd lengths, GQA 1/2/4, head dims
// 64 and 128) at every SIMD level this CPU runs and 1..3 threads, outputs poisoned first;
// sibling isolation bit for bit; bit-identical results run to run (dQ within rounding across
// thread counts, everything else bit-identical).
#include <algorithm>
#include <array>
#include <cmath>
#include <string>

#include "core/thread_pool.h"
#include "kernels/parallel_attention.h"
#include "tests/harness.h"
#include "tests/test_structures.h"
#include "tests/test_util.h"

namespace npr::test {

namespace {

ThreadPool* pool(int n) {
  static ThreadPool p2(2), p3(3);
  return n == 2 ? &p2 : n == 3 ? &p3 : nullptr;
}

// A structure of `depth` levels made of random runs (any path at any level), over sequences
// of the given lengths (zero allowed): exercises the run logic beyond realistic rollouts.
struct RunStructure {
  std::vector<int32_t> cu, block, step;
  int64_t tokens = 0;
  int32_t depth = 0;
  StructureView view() const {
    return StructureView{
        tokens, static_cast<int64_t>(cu.size()) - 1, cu.data(), depth, block.data(), step.data()};
  }
};
RunStructure random_runs(Rng& rng, const std::vector<int>& lengths, int32_t depth, int max_run) {
  RunStructure s;
  s.depth = depth;
  s.cu.push_back(0);
  for (int L : lengths) {
    for (int t = 0; t < L;) {
      const int n = std::min<int>(L - t, 1 + static_cast<int>(rng.below(max_run)));
      std::vector<int32_t> b(depth), st(depth);
      for (int32_t d = 0; d < depth; ++d) {
        const bool inside = rng.below(3) != 0;
        b[d] = inside ? static_cast<int32_t>(rng.below(2)) : -1;
        st[d] = inside ? static_cast<int32_t>(rng.below(3)) : -1;
      }
      for (int i = 0; i < n; ++i, ++t)
        for (int32_t d = 0; d < depth; ++d) s.block.push_back(b[d]), s.step.push_back(st[d]);
    }
    s.tokens += L;
    s.cu.push_back(static_cast<int32_t>(s.tokens));
  }
  return s;
}

// Every tile pair of the plan against a per-element classification of the structure.
void check_plan(const StructureView& st, bool dense) {
  AttentionPlan p;
  CHECK_OK(attention_plan(st, &p, dense));
  StructureView rule = st;
  if (dense) rule.depth = 0;
  int64_t visible = 0, listed = 0;
  for (int64_t s = 0; s < st.sequences; ++s) {
    const int64_t s0 = st.cu_seqlens[s], L = st.cu_seqlens[s + 1] - s0;
    const int64_t nt = (L + kAttnTile - 1) / kAttnTile;
    for (int64_t qt = 0; qt < nt; ++qt) {
      const int64_t g = p.seq_tile0[s] + qt;
      for (int64_t kt = 0; kt <= qt; ++kt) {
        int64_t vis = 0, all = 0;
        bool mask_ok = true;
        const TileKind kind = p.kind(s, qt, kt);
        const AttnTilePair* pair = nullptr;
        for (int64_t i = p.row_ptr[g]; i < p.row_ptr[g + 1]; ++i)
          if (p.row_pairs[i].other == kt) pair = &p.row_pairs[i];
        for (int64_t i = s0 + qt * kAttnTile; i < std::min(s0 + L, s0 + (qt + 1) * kAttnTile); ++i)
          for (int64_t j = s0 + kt * kAttnTile; j < std::min(s0 + L, s0 + (kt + 1) * kAttnTile);
               ++j) {
            const bool v = j <= i && structure_visible(rule, i, j);
            vis += v;
            ++all;
            if (kind == TileKind::kPartial) {
              const uint64_t w = p.masks[pair->partial + (i - s0 - qt * kAttnTile)];
              mask_ok &= ((w >> (j - s0 - kt * kAttnTile)) & 1u) == (v ? 1u : 0u);
            }
          }
        visible += vis;
        const TileKind want = kt == qt     ? TileKind::kPartial
                              : vis == 0   ? TileKind::kSkip
                              : vis == all ? TileKind::kFull
                                           : TileKind::kPartial;
        CHECK_MSG(kind == want, "seq " + std::to_string(s) + " tile (" + std::to_string(qt) + ", " +
                                    std::to_string(kt) + ") kind " +
                                    std::to_string(static_cast<int>(kind)));
        CHECK(mask_ok);
        listed += kind != TileKind::kSkip;
      }
    }
  }
  CHECK(visible == p.visible_pairs);
  CHECK(listed == static_cast<int64_t>(p.row_pairs.size()));
  CHECK(p.tiles_full + p.tiles_partial + p.tiles_skip == p.tiles_causal);
  // The column lists hold the same pairs as the row lists.
  int64_t found = 0;
  for (int64_t g = 0; g < p.tiles; ++g) {
    const int64_t s = p.tile_seq[g], kt = g - p.seq_tile0[s];
    for (int64_t i = p.col_ptr[g]; i < p.col_ptr[g + 1]; ++i) {
      const TileKind k = p.kind(s, p.col_pairs[i].other, kt);
      found += k != TileKind::kSkip && (k == TileKind::kPartial) == (p.col_pairs[i].partial >= 0);
    }
  }
  CHECK(found == static_cast<int64_t>(p.row_pairs.size()));
}

struct HeadCase {
  int64_t heads, kv_heads, dim;
};

std::string describe(const HeadCase& c, int64_t T, SimdLevel simd, int threads) {
  return "heads " + std::to_string(c.heads) + "/" + std::to_string(c.kv_heads) + " D " +
         std::to_string(c.dim) + " T " + std::to_string(T) + " " + simd_name(simd) + " threads " +
         std::to_string(threads);
}

// Fused forward + backward on `st` for every SIMD level and 1..3 threads against the oracle.
// Returns the plan's (full, partial, skip) tile counts.
std::array<int64_t, 3> check_against_reference(Rng& rng, const StructureView& st, const HeadCase& c,
                                               bool dense) {
  const int64_t T = st.tokens, H = c.heads, KV = c.kv_heads, D = c.dim;
  AttentionShape sh{H, KV, D, static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)))};
  auto q = random_vector(rng, T * H * D), k = random_vector(rng, T * KV * D),
       v = random_vector(rng, T * KV * D), dout = random_vector(rng, T * H * D);
  for (auto& x : q) x *= 2.0f;  // sharper softmax
  StructureView rule = st;
  if (dense) rule.depth = 0;
  auto ro = poisoned(T * H * D), rl = poisoned(T * H);
  auto rq = poisoned(T * H * D), rk = poisoned(T * KV * D), rv = poisoned(T * KV * D);
  attention_forward_reference(ro.data(), rl.data(), q.data(), k.data(), v.data(), sh, rule);
  attention_backward_reference(rq.data(), rk.data(), rv.data(), dout.data(), q.data(), k.data(),
                               v.data(), sh, rule);
  AttentionPlan plan;
  CHECK_OK(attention_plan(st, &plan, dense));
  for (SimdLevel simd : runnable_simd_levels())
    for (int threads = 1; threads <= 3; ++threads) {
      CpuContext ctx{pool(threads), simd};
      const std::string what = describe(c, T, simd, threads);
      auto out = poisoned(T * H * D), lse = poisoned(T * H);
      CHECK_OK(attention_forward_fused(ctx, plan, out.data(), lse.data(), q.data(), k.data(),
                                       v.data(), sh));
      CHECK_MSG(max_rel(out, ro) < 2e-5, what + ": out " + std::to_string(max_rel(out, ro)));
      CHECK_MSG(max_rel(lse, rl) < 2e-5, what + ": lse " + std::to_string(max_rel(lse, rl)));
      auto dq = poisoned(T * H * D), dk = poisoned(T * KV * D), dv = poisoned(T * KV * D);
      CHECK_OK(attention_backward_fused(ctx, plan, dq.data(), dk.data(), dv.data(), dout.data(),
                                        q.data(), k.data(), v.data(), out.data(), lse.data(), sh));
      CHECK_MSG(max_rel(dq, rq) < 1e-4, what + ": dq " + std::to_string(max_rel(dq, rq)));
      CHECK_MSG(max_rel(dk, rk) < 1e-4, what + ": dk " + std::to_string(max_rel(dk, rk)));
      CHECK_MSG(max_rel(dv, rv) < 1e-4, what + ": dv " + std::to_string(max_rel(dv, rv)));
    }
  return {plan.tiles_full, plan.tiles_partial, plan.tiles_skip};
}

}  // namespace

TEST(parallel_attention_plan_matches_brute_force) {
  Rng rng(71);
  for (int trial = 0; trial < 4; ++trial) {
    RandomStructure rs = random_structure(rng, 1 + trial, 3, 8, 97);
    check_plan(rs.view(), false);
    check_plan(rs.view(), true);
  }
  for (int32_t depth : {1, 2}) {
    RunStructure rs = random_runs(rng, {17, 0, 513, 97, 1, 130}, depth, 70);
    check_plan(rs.view(), false);
  }
  RunStructure tiny = random_runs(rng, {0, 1, 2, 0}, 2, 2);  // tiles of one or two tokens
  check_plan(tiny.view(), false);
}

TEST(parallel_attention_matches_reference_on_random_structures) {
  Rng rng(72);
  const HeadCase cases[] = {{2, 2, 64}, {4, 2, 128}, {8, 2, 64}, {4, 1, 128}, {8, 2, 128}};
  int i = 0;
  std::array<int64_t, 3> kinds{};
  for (const HeadCase& c : cases) {
    // Several sequences, prefixes of random length, up to two blocks of 1..8 steps of up to
    // 97 tokens; long enough that FULL, PARTIAL and SKIP tiles all occur.
    RandomStructure rs = random_structure(rng, 1 + i % 3, 2, 8, 97);
    const auto k = check_against_reference(rng, rs.view(), c, false);
    for (int j = 0; j < 3; ++j) kinds[j] += k[j];
    ++i;
  }
  CHECK_MSG(kinds[0] > 0 && kinds[1] > 0 && kinds[2] > 0,
            "full " + std::to_string(kinds[0]) + " partial " + std::to_string(kinds[1]) + " skip " +
                std::to_string(kinds[2]));
}

TEST(parallel_attention_matches_reference_on_odd_and_empty_sequences) {
  Rng rng(73);
  RunStructure rs = random_runs(rng, {17, 0, 97, 1, 130}, 2, 40);
  check_against_reference(rng, rs.view(), HeadCase{4, 2, 64}, false);
  RunStructure one = random_runs(rng, {513}, 1, 200);
  check_against_reference(rng, one.view(), HeadCase{2, 1, 64}, false);
}

TEST(parallel_attention_dense_causal_plan_is_plain_causal_attention) {
  Rng rng(74);
  RandomStructure rs = random_structure(rng, 2, 2, 4, 61);
  check_against_reference(rng, rs.view(), HeadCase{4, 2, 64}, true);
}

TEST(parallel_attention_siblings_are_isolated_bit_for_bit) {
  Rng rng(75);
  RandomStructure rs;
  do rs = random_structure(rng, 1, 1, 6, 97);
  while (*std::max_element(rs.step.begin(), rs.step.end()) < 1);  // at least two steps
  const StructureView st = rs.view();
  const int64_t T = rs.tokens, H = 4, KV = 2, D = 64;
  AttentionShape sh{H, KV, D, 0.125f};
  auto q = random_vector(rng, T * H * D), k = random_vector(rng, T * KV * D),
       v = random_vector(rng, T * KV * D), dout = random_vector(rng, T * H * D);
  // Upstream gradient only up to the end of the block: queries after it see every step, so
  // their gradient legitimately reaches the keys of all steps (through the changed softmax).
  int64_t block_end = 0;
  for (int64_t t = 0; t < T; ++t)
    if (rs.block[t] >= 0) block_end = t + 1;
  for (int64_t i = block_end * H * D; i < T * H * D; ++i) dout[i] = 0.0f;
  auto q2 = q, k2 = k, v2 = v;  // step 0 perturbed: no other step may move
  for (int64_t t = 0; t < T; ++t)
    if (rs.step[t] == 0) {
      for (int64_t i = 0; i < H * D; ++i) q2[t * H * D + i] += 0.5f;
      for (int64_t i = 0; i < KV * D; ++i) k2[t * KV * D + i] -= 0.3f, v2[t * KV * D + i] += 0.7f;
    }
  AttentionPlan plan;
  CHECK_OK(attention_plan(st, &plan));
  for (SimdLevel simd : runnable_simd_levels()) {
    CpuContext ctx{pool(2), simd};
    auto run = [&](const std::vector<float>& qq, const std::vector<float>& kk,
                   const std::vector<float>& vv, std::vector<float>* out, std::vector<float>* dq,
                   std::vector<float>* dk, std::vector<float>* dv) {
      std::vector<float> lse(T * H);
      out->assign(T * H * D, 0.0f);
      dq->assign(T * H * D, 0.0f);
      dk->assign(T * KV * D, 0.0f);
      dv->assign(T * KV * D, 0.0f);
      CHECK_OK(attention_forward_fused(ctx, plan, out->data(), lse.data(), qq.data(), kk.data(),
                                       vv.data(), sh));
      CHECK_OK(attention_backward_fused(ctx, plan, dq->data(), dk->data(), dv->data(), dout.data(),
                                        qq.data(), kk.data(), vv.data(), out->data(), lse.data(),
                                        sh));
    };
    std::vector<float> o1, dq1, dk1, dv1, o2, dq2, dk2, dv2;
    run(q, k, v, &o1, &dq1, &dk1, &dv1);
    run(q2, k2, v2, &o2, &dq2, &dk2, &dv2);
    bool after_changed = false, sibling_ok = true;
    for (int64_t t = 0; t < T; ++t) {
      const bool sibling = rs.step[t] >= 1;
      for (int64_t i = 0; i < H * D; ++i) {
        if (sibling)
          sibling_ok &=
              o1[t * H * D + i] == o2[t * H * D + i] && dq1[t * H * D + i] == dq2[t * H * D + i];
        if (rs.block[t] == -1 && t > 0 && rs.block[t - 1] >= 0)
          after_changed |= o1[t * H * D + i] != o2[t * H * D + i];
      }
      if (sibling)
        for (int64_t i = 0; i < KV * D; ++i)
          sibling_ok &= dk1[t * KV * D + i] == dk2[t * KV * D + i] &&
                        dv1[t * KV * D + i] == dv2[t * KV * D + i];
    }
    CHECK_MSG(sibling_ok, std::string("a sibling step moved at ") + simd_name(simd));
    CHECK_MSG(after_changed, "the token after the block sees every step, so it must change");
  }
}

TEST(parallel_attention_is_deterministic) {
  Rng rng(76);
  RandomStructure rs = random_structure(rng, 2, 2, 8, 97);
  const StructureView st = rs.view();
  const int64_t T = rs.tokens, H = 8, KV = 2, D = 64;
  AttentionShape sh{H, KV, D, 0.125f};
  auto q = random_vector(rng, T * H * D), k = random_vector(rng, T * KV * D),
       v = random_vector(rng, T * KV * D), dout = random_vector(rng, T * H * D);
  AttentionPlan plan;
  CHECK_OK(attention_plan(st, &plan));
  std::vector<std::vector<float>> fixed, dqs;  // out, lse, dk, dv | dq
  for (int threads : {2, 2, 1, 3}) {
    CpuContext ctx{pool(threads), detect_simd()};
    std::vector<float> out(T * H * D), lse(T * H), dq(T * H * D), dk(T * KV * D), dv(T * KV * D);
    CHECK_OK(attention_forward_fused(ctx, plan, out.data(), lse.data(), q.data(), k.data(),
                                     v.data(), sh));
    CHECK_OK(attention_backward_fused(ctx, plan, dq.data(), dk.data(), dv.data(), dout.data(),
                                      q.data(), k.data(), v.data(), out.data(), lse.data(), sh));
    std::vector<float> all = out;
    for (const auto* x : {&lse, &dk, &dv}) all.insert(all.end(), x->begin(), x->end());
    fixed.push_back(std::move(all));
    dqs.push_back(std::move(dq));
  }
  // Every output row but dQ's is computed by one work item in plan order whatever thread runs
  // it: equal bit for bit even across thread counts. dQ sums one partial per thread in a fixed
  // order: bit-identical for the same thread count, within rounding across thread counts.
  CHECK(dqs[1] == dqs[0]);
  for (size_t i = 1; i < fixed.size(); ++i) {
    CHECK_MSG(fixed[i] == fixed[0], "run " + std::to_string(i) + " differs from run 0");
    CHECK_MSG(max_rel(dqs[i], dqs[0]) < 1e-6,
              "dq of run " + std::to_string(i) + ": " + std::to_string(max_rel(dqs[i], dqs[0])));
  }
}

TEST(parallel_attention_rejects_bad_shapes) {
  RandomStructure rs;
  Rng rng(77);
  rs = random_structure(rng, 1, 1, 2, 9);
  AttentionPlan plan;
  CHECK_OK(attention_plan(rs.view(), &plan));
  std::vector<float> buf(rs.tokens * 64 * 8);
  CpuContext ctx{nullptr, SimdLevel::kScalar};
  CHECK(!attention_forward_fused(ctx, plan, buf.data(), buf.data(), buf.data(), buf.data(),
                                 buf.data(), AttentionShape{3, 2, 16, 0.25f})
             .is_ok());
  AttentionPlan empty;
  CHECK(!attention_forward_fused(ctx, empty, buf.data(), buf.data(), buf.data(), buf.data(),
                                 buf.data(), AttentionShape{2, 1, 16, 0.25f})
             .is_ok());
}

}  // namespace npr::test
