// The decode step against the training forward: logits from incremental decoding over paged
// KV (prefill chunk, then one token at a time; a fork into branches decoded together, cascade
// on and off) give the same logprobs as Qwen3Model::forward over the flattened rollout with
// its positions, prev and Structure. This is the consistency the engine and the trainer
// rely on (NPR's release is off by one here).
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kvcache/kv_cache.h"
#include "kvcache/kv_pages.h"
#include "model/qwen3_decode.h"
#include "tests/harness.h"
#include "tests/test_models.h"
#include "tests/test_page_tables.h"
#include "tests/test_util.h"

namespace npr::test {

namespace {

std::unique_ptr<Qwen3Model> tiny_model(Rng& rng) {
  Qwen3Config c = tiny_config(true);
  c.vocab = 41;
  c.hidden = 32;
  c.intermediate = 48;
  return random_model(rng, c, 0.4f);
}

double log_softmax_at(const float* row, int64_t vocab, int32_t id) {
  double m = -INFINITY, s = 0.0;
  for (int64_t v = 0; v < vocab; ++v) m = std::max(m, static_cast<double>(row[v]));
  for (int64_t v = 0; v < vocab; ++v) s += std::exp(row[v] - m);
  return row[id] - m - std::log(s);
}

}  // namespace

// A prompt prefilled in one call (5 tokens, or 131: three cascade chunks of up to 64 tokens
// over 4-token pages, each chunk reading the pages wholly before it once), then one token at a
// time; flat and cascade both.
TEST(decode_steps_match_the_training_forward_on_a_sequence) {
  Rng rng(81);
  auto model = tiny_model(rng);
  const int64_t V = model->config().vocab, L = 140;
  std::vector<int32_t> ids(L), pos(L), prev(L), cu = {0, static_cast<int32_t>(L)};
  for (int64_t t = 0; t < L; ++t)
    ids[t] = static_cast<int32_t>(rng.below(V)), pos[t] = static_cast<int32_t>(t),
    prev[t] = static_cast<int32_t>(t - 1);
  std::vector<float> lp(L);
  ThreadPool pool(2);
  CpuContext ctx{&pool, detect_simd()};
  CHECK_OK(model->forward(ctx,
                          Qwen3Batch{L, ids.data(), pos.data(), prev.data(),
                                     StructureView{L, 1, cu.data(), 0, nullptr, nullptr}},
                          lp.data(), nullptr));
  for (bool cascade : {false, true}) {
    for (int64_t prefill : {5, 131}) {
      KvCache kv(40, 4);
      KvPages pages;
      CHECK_OK(KvPages::create(2, 40, 4, 2, 8, &pages));
      const int32_t r = kv.open_request(1000);
      int32_t s;
      CHECK_OK(kv.create_sequence(r, &s));
      std::vector<float> logits(V);
      double worst = 0.0;
      for (int64_t done = 0; done < L - 1;) {
        const int64_t n = done == 0 ? prefill : 1;
        KvAnswer a;
        CHECK_OK(kv.append(s, n, done > 0, &a));
        Tables t = tables_of(kv, {s});
        const int32_t cu_new[2] = {0, static_cast<int32_t>(n)};
        CHECK_OK(qwen3_decode_step(
            ctx, *model, pages,
            Qwen3DecodeBatch{1, cu_new, ids.data() + done, pos.data() + done, t.view()}, cascade,
            logits.data()));
        done += n;
        worst = std::max(worst, std::fabs(log_softmax_at(logits.data(), V, ids[done]) - lp[done]));
      }
      CHECK_MSG(worst < 1e-4, std::string(cascade ? "cascade" : "flat") + " prefill " +
                                  std::to_string(prefill) + ": decode vs forward logprob " +
                                  std::to_string(worst));
    }
  }
}

TEST(decode_of_forked_branches_matches_the_forward_over_the_flattened_rollout) {
  for (bool cascade : {false, true}) {
    Rng rng(82);
    auto model = tiny_model(rng);
    const int64_t V = model->config().vocab, P = 9;
    const std::vector<int64_t> lens = {3, 7, 5};
    // The rollout: prefix, then three sibling branches (see branched_rollout).
    BranchedRollout rollout = branched_rollout(rng, V, P, lens);
    const std::vector<int32_t>& ids = rollout.ids;
    const std::vector<int32_t>& pos = rollout.pos;
    const std::vector<int64_t>& start = rollout.start;
    const int64_t T = rollout.tokens();
    std::vector<float> lp(T);
    CpuContext ctx{nullptr, detect_simd()};
    CHECK_OK(model->forward(ctx, rollout.batch(), lp.data(), nullptr));
    // Decode: prefill the prefix, fork, then all live branches advance together.
    KvCache kv(64, 4);
    KvPages pages;
    CHECK_OK(KvPages::create(2, 64, 4, 2, 8, &pages));
    const int32_t root = prefix_sequence(kv, P);
    KvAnswer a;
    std::vector<float> logits(V * 3);
    {
      Tables t = tables_of(kv, {root});
      const int32_t cu_new[2] = {0, static_cast<int32_t>(P)};
      CHECK_OK(qwen3_decode_step(ctx, *model, pages,
                                 Qwen3DecodeBatch{1, cu_new, ids.data(), pos.data(), t.view()},
                                 cascade, logits.data()));
    }
    double worst = 0.0;
    for (size_t b = 0; b < lens.size(); ++b)  // every branch's first token, from the shared state
      worst = std::max(worst,
                       std::fabs(log_softmax_at(logits.data(), V, ids[start[b]]) - lp[start[b]]));
    std::vector<int32_t> kids;
    std::vector<SlotCopy> copies;
    CHECK_OK(kv.fork(root, 3, &kids, &a, &copies));
    pages.apply(copies);
    for (int64_t j = 0;; ++j) {
      std::vector<int32_t> live, step_ids, step_pos, cu_new{0};
      std::vector<size_t> which;
      for (size_t b = 0; b < lens.size(); ++b) {
        if (j >= lens[b] - 1) continue;  // feed token j, whose logits predict token j + 1
        CHECK_OK(kv.append(kids[b], 1, true, &a));
        live.push_back(kids[b]);
        which.push_back(b);
        step_ids.push_back(ids[start[b] + j]);
        step_pos.push_back(static_cast<int32_t>(P + j));
        cu_new.push_back(static_cast<int32_t>(cu_new.size()));
      }
      if (live.empty()) break;
      Tables t = tables_of(kv, live);
      CHECK_OK(qwen3_decode_step(ctx, *model, pages,
                                 Qwen3DecodeBatch{static_cast<int64_t>(live.size()), cu_new.data(),
                                                  step_ids.data(), step_pos.data(), t.view()},
                                 cascade, logits.data()));
      for (size_t i = 0; i < which.size(); ++i) {
        const int64_t at = start[which[i]] + j + 1;
        worst =
            std::max(worst, std::fabs(log_softmax_at(logits.data() + i * V, V, ids[at]) - lp[at]));
      }
    }
    CHECK_MSG(worst < 1e-4, std::string(cascade ? "cascade" : "flat") + ": decode vs forward " +
                                std::to_string(worst));
  }
}

}  // namespace npr::test
