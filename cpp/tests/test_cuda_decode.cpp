// The decode step and the sampler on CUDA. Decode: a prefill chunk, a fork into three branches
// decoded together (cascade on and off, graphs on and off), logprobs against
// Qwen3CudaModel::forward over the flattened rollout with its positions, prev and Structure
// (fp32: < 1e-4; bf16: max and mean |difference| printed, bounded loosely), and the device
// logits against the CPU decode step. Sampler: the device draws the CPU's tokens from the same
// logits under every processing option, with logprobs equal to rounding.
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kvcache/kv_cache.h"
#include "kvcache/kv_pages.h"
#include "model/qwen3_decode.h"
#include "sampler/sampler.h"
#include "tests/harness.h"
#include "tests/test_models.h"
#include "tests/test_page_tables.h"
#include "tests/test_util.h"
#if defined(NPR_WITH_CUDA)
#include "kernels/parallel_attention_wgmma.h"
#include "kvcache/kv_pages_cuda.h"
#include "model/qwen3_cuda_decode.h"
#include "model/qwen3_cuda_model.h"
#include "sampler/sampler_cuda.h"
#include "tests/test_cuda_util.h"
#endif

namespace npr::test {

#if defined(NPR_WITH_CUDA)
namespace {

double log_softmax_at(const float* row, int64_t vocab, int32_t id) {
  double m = -INFINITY, s = 0.0;
  for (int64_t v = 0; v < vocab; ++v) m = std::max(m, static_cast<double>(row[v]));
  for (int64_t v = 0; v < vocab; ++v) s += std::exp(row[v] - m);
  return row[id] - m - std::log(s);
}

struct Diffs {
  double max = 0.0, sum = 0.0, logits_vs_cpu = 0.0;
  int64_t n = 0, kernel_steps = 0, kernel_timed_steps = 0;
  bool kernel_streamed = false;   // the last one-kernel step streamed its weights
  int64_t kernel_ring_slots = 0;  // ... through a ring of this many slots
  std::vector<float> logits;      // every step's, in order
  std::map<std::string, double> kernel_phase_ms;
  void add(double d) {
    max = std::isnan(d) ? INFINITY : std::max(max, d);
    sum += d;
    ++n;
  }
};

// Prefix of P tokens, three branches of lens tokens each; decode vs forward.
// fast: the decoder's decode-specialised kernels (head_dim 64 in bf16 reaches the tensor-core
// attend kernel); candidate: its PDL launches on top; tensor_cores: its skinny linear layers on
// tensor cores; merge: its attention merge; step_kernel: its one-kernel steps (timing: with their
// phases timed; stream: with its weights streamed where the device is sm_90; fewer_barriers: with
// the attention's merges where each query's last partial state arrives, and its attention
// waiting for its own kv head's q|k|v tiles); lens: the
// branches' lengths; shape: the model's widths; fused_qk_write: the decoder's switch (one-token
// tensor-core steps normalise, rotate and write the new tokens inside the attend kernel).
struct RolloutShape {
  int64_t vocab = 41, hidden = 32, intermediate = 48;
  float weight_scale = 0.4f;  // matrices uniform in +- this
};
Diffs fork_rollout(DevDType t, bool cascade, bool graphs, bool fast = false, int64_t head_dim = 16,
                   bool candidate = false, bool tensor_cores = false,
                   DecodeMerge merge = DecodeMerge::kStaged, bool step_kernel = false,
                   const std::vector<int64_t>& lens = {3, 19, 6}, bool timing = false,
                   const RolloutShape& shape = {}, bool stream = true, bool fewer_barriers = true,
                   bool fused_qk_write = true) {
  Rng rng(82);
  Qwen3Config cfg = tiny_config(true);
  cfg.vocab = shape.vocab;
  cfg.hidden = shape.hidden;
  cfg.intermediate = shape.intermediate;
  cfg.head_dim = head_dim;
  auto cpu = random_model(rng, cfg, shape.weight_scale);
  CudaContext& ctx0 = cuda_test_context();
  (void)ctx0;
  std::unique_ptr<Qwen3CudaModel> gpu;
  CHECK_OK(Qwen3CudaModel::create(cfg, t, &gpu));
  Diffs d;
  if (!gpu) return d;
  for (const ParamInfo& p : cpu->params()) CHECK_OK(gpu->set_param(p, cpu->weights() + p.offset));
  const int64_t V = cfg.vocab, P = 21, nb = static_cast<int64_t>(lens.size());
  BranchedRollout rollout = branched_rollout(rng, V, P, lens);
  const std::vector<int32_t>& ids = rollout.ids;
  const std::vector<int32_t>& pos = rollout.pos;
  const std::vector<int64_t>& start = rollout.start;
  const int64_t T = rollout.tokens();
  std::vector<float> lp(T);
  CHECK_OK(gpu->forward(rollout.batch(), lp.data(), nullptr));
  const int32_t blocks = 64, B = 4;
  KvCache kv(blocks, B);
  KvPages cpages;
  CHECK_OK(KvPages::create(cfg.layers, blocks, B, cfg.kv_heads, cfg.head_dim, &cpages));
  std::unique_ptr<KvPagesCuda> pages;
  CHECK_OK(KvPagesCuda::create(gpu->context(), t, cfg.layers, blocks, B, cfg.kv_heads, cfg.head_dim,
                               &pages));
  if (!pages) return d;
  Qwen3CudaDecoder dec(*gpu, *pages);
  dec.use_graphs = graphs;
  dec.fast_kernels = fast;
  dec.candidate_kernels = candidate;
  dec.skinny_tensor_cores = tensor_cores;
  dec.attention_merge = merge;
  dec.step_kernel = step_kernel;
  dec.step_kernel_timing = timing;
  dec.step_kernel_stream = stream;
  dec.step_kernel_fold_merge = fewer_barriers;
  dec.step_kernel_head_flags = fewer_barriers;
  dec.fused_qk_write = fused_qk_write;
  CpuContext cctx{nullptr, detect_simd()};
  const int32_t root = prefix_sequence(kv, P);
  KvAnswer a;
  std::vector<float> logits(V * nb), clogits(V * nb);
  auto compare_cpu = [&](int64_t rows) {
    d.logits.insert(d.logits.end(), logits.begin(), logits.begin() + rows * V);
    for (int64_t i = 0; i < rows * V; ++i)
      d.logits_vs_cpu =
          std::max(d.logits_vs_cpu, std::fabs(static_cast<double>(logits[i]) - clogits[i]));
  };
  {
    Tables tb = tables_of(kv, {root});
    const int32_t cu_new[2] = {0, static_cast<int32_t>(P)};
    const Qwen3DecodeBatch batch{1, cu_new, ids.data(), pos.data(), tb.view()};
    CHECK_OK(dec.step(batch, cascade, logits.data()));
    CHECK_OK(qwen3_decode_step(cctx, *cpu, cpages, batch, cascade, clogits.data()));
    compare_cpu(1);
  }
  for (size_t b = 0; b < lens.size(); ++b)
    d.add(std::fabs(log_softmax_at(logits.data(), V, ids[start[b]]) - lp[start[b]]));
  std::vector<int32_t> kids;
  std::vector<SlotCopy> copies;
  CHECK_OK(kv.fork(root, static_cast<int32_t>(nb), &kids, &a, &copies));
  CHECK_OK(pages->apply(copies));
  cpages.apply(copies);
  for (int64_t j = 0;; ++j) {
    std::vector<int32_t> live, step_ids, step_pos, cu_new{0};
    std::vector<size_t> which;
    for (size_t b = 0; b < lens.size(); ++b) {
      if (j >= lens[b] - 1) continue;
      CHECK_OK(kv.append(kids[b], 1, true, &a));
      live.push_back(kids[b]);
      which.push_back(b);
      step_ids.push_back(ids[start[b] + j]);
      step_pos.push_back(static_cast<int32_t>(P + j));
      cu_new.push_back(static_cast<int32_t>(cu_new.size()));
    }
    if (live.empty()) break;
    Tables tb = tables_of(kv, live);
    const Qwen3DecodeBatch batch{static_cast<int64_t>(live.size()), cu_new.data(), step_ids.data(),
                                 step_pos.data(), tb.view()};
    CHECK_OK(dec.step(batch, cascade, logits.data()));
    CHECK_OK(qwen3_decode_step(cctx, *cpu, cpages, batch, cascade, clogits.data()));
    compare_cpu(static_cast<int64_t>(live.size()));
    for (size_t i = 0; i < which.size(); ++i) {
      const int64_t at = start[which[i]] + j + 1;
      d.add(std::fabs(log_softmax_at(logits.data() + i * V, V, ids[at]) - lp[at]));
    }
  }
  const auto& st = dec.stats();
  std::printf(
      "    %s %s graphs %s%s%s%s D %lld: max |decode - forward| %.3g, mean %.3g over %lld; max "
      "|logits - cpu decode| %.3g; %lld eager, %lld captures, %lld replays, %lld one-kernel "
      "(%lld CTAs)%s%s\n",
      dev_dtype_name(t), cascade ? "cascade" : "flat", graphs ? "on" : "off",
      fast ? " fast kernels" : "", candidate ? " candidate" : "",
      tensor_cores ? " tensor-core linears" : "", static_cast<long long>(head_dim), d.max,
      d.sum / std::max<int64_t>(d.n, 1), static_cast<long long>(d.n), d.logits_vs_cpu,
      static_cast<long long>(st.eager_steps), static_cast<long long>(st.graph_captures),
      static_cast<long long>(st.graph_replays), static_cast<long long>(st.kernel_steps),
      static_cast<long long>(st.kernel_grid),
      st.graph_error.empty() ? "" : "; graph: ", st.graph_error.c_str());
  if (graphs && !step_kernel)
    CHECK_MSG(st.graph_replays > 0, "no decode step replayed a graph: " + st.graph_error);
  CHECK_MSG(st.kernel_error.empty(), "the one-kernel step could not launch: " + st.kernel_error);
  CHECK_OK(dec.settle_stats());
  d.kernel_steps = st.kernel_steps;
  d.kernel_streamed = st.kernel_streamed;
  d.kernel_ring_slots = st.kernel_ring_slots;
  d.kernel_timed_steps = st.kernel_timed_steps;
  d.kernel_phase_ms = st.kernel_phase_ms;
  return d;
}

}  // namespace

TEST(cuda_decode_of_forked_branches_matches_the_training_forward) {
  for (bool cascade : {false, true})
    for (bool graphs : {false, true}) {
      const Diffs f = fork_rollout(DevDType::kF32, cascade, graphs);
      CHECK_MSG(f.max < 1e-4, "fp32: decode vs forward " + std::to_string(f.max));
      CHECK_MSG(f.logits_vs_cpu < 1e-4,
                "fp32: logits vs the CPU decode step " + std::to_string(f.logits_vs_cpu));
      const Diffs b = fork_rollout(DevDType::kBF16, cascade, graphs);
      CHECK_MSG(b.max < 0.1, "bf16: decode vs forward " + std::to_string(b.max));
    }
}

TEST(cuda_decode_fast_kernels_match_the_training_forward) {
  for (bool cascade : {false, true})
    for (bool graphs : {false, true}) {
      const Diffs f = fork_rollout(DevDType::kF32, cascade, graphs, true);
      CHECK_MSG(f.max < 1e-4, "fp32 fast: decode vs forward " + std::to_string(f.max));
      CHECK_MSG(f.logits_vs_cpu < 1e-4,
                "fp32 fast: logits vs the CPU decode step " + std::to_string(f.logits_vs_cpu));
      for (int64_t D : {16, 64}) {
        const Diffs b = fork_rollout(DevDType::kBF16, cascade, graphs, true, D);
        CHECK_MSG(b.max < 0.1, "bf16 fast D " + std::to_string(D) + ": decode vs forward " +
                                   std::to_string(b.max));
      }
    }
}

// The PDL launches, the serial attention merge (the default is the staged one) and the separate
// q/k norm + RoPE + KV write kernel (the default runs it inside the tensor-core attend kernel)
// change no bit of the decode, with the skinny linear layers on CUDA cores or on tensor cores.
TEST(cuda_decode_candidate_kernels_give_the_same_bits) {
  struct Variant {
    const char* name;
    bool pdl;
    DecodeMerge merge;
    bool fused_qk_write;
  };
  const Variant variants[] = {{"pdl", true, DecodeMerge::kStaged, true},
                              {"serial merge", false, DecodeMerge::kSerial, true},
                              {"pdl + serial merge", true, DecodeMerge::kSerial, true},
                              {"separate q/k write", false, DecodeMerge::kStaged, false},
                              {"pdl + separate q/k write", true, DecodeMerge::kStaged, false}};
  for (bool tc : {false, true})
    for (bool cascade : {false, true})
      for (bool graphs : {false, true})
        for (DevDType t : {DevDType::kF32, DevDType::kBF16}) {
          const int64_t D = t == DevDType::kF32 ? 16 : 64;
          const Diffs f = fork_rollout(t, cascade, graphs, true, D, false, tc);
          for (const Variant& v : variants) {
            const Diffs c = fork_rollout(t, cascade, graphs, true, D, v.pdl, tc, v.merge, false,
                                         {3, 19, 6}, false, {}, true, true, v.fused_qk_write);
            CHECK_MSG(c.logits == f.logits && c.max == f.max && c.sum == f.sum &&
                          c.logits_vs_cpu == f.logits_vs_cpu,
                      std::string(dev_dtype_name(t)) + (cascade ? " cascade" : " flat") +
                          (graphs ? " graphs" : " eager") + (tc ? " tensor cores" : "") + ": " +
                          v.name + " " + std::to_string(c.max) + " vs " + std::to_string(f.max));
          }
        }
}

// The skinny linear layers on tensor cores (bf16 steps only: fp32 takes the generic GEMMs)
// decode forked branches as the training forward scores them, within bf16's reach, and close
// to the CUDA-core forms' logits.
TEST(cuda_decode_tensor_core_linears_match_the_training_forward) {
  for (bool cascade : {false, true})
    for (bool graphs : {false, true})
      for (int64_t D : {16, 64}) {
        const std::string what = std::string(cascade ? "cascade" : "flat") +
                                 (graphs ? " graphs" : " eager") + " D " + std::to_string(D);
        const Diffs c = fork_rollout(DevDType::kBF16, cascade, graphs, true, D);
        const Diffs tc = fork_rollout(DevDType::kBF16, cascade, graphs, true, D, false, true);
        CHECK_MSG(tc.max < 0.1, what + ": decode vs forward " + std::to_string(tc.max));
        CHECK_MSG(tc.logits_vs_cpu < 2 * c.logits_vs_cpu + 0.05,
                  what + ": logits vs the CPU decode step " + std::to_string(tc.logits_vs_cpu) +
                      " (CUDA cores: " + std::to_string(c.logits_vs_cpu) + ")");
      }
}

// The one-kernel step (a persistent kernel over the layer path's device functions) gives the
// layer path's logits bit for bit: flat and cascade, against eager and graph steps, for 3 and 8
// branches (every row count 1..8 as branches end), and it runs every one-token step; on sm_90
// with its weights streamed (the default there) and without; with its merges folded into the
// attention and per-head q|k|v readiness (the defaults) and with a grid barrier for each.
TEST(cuda_decode_step_kernel_gives_the_layer_path_bits) {
  // The tiny widths, and widths that reach what real Qwen3 sizes take: the staged RMSNorm's
  // k > 256 path, the wide-slice tiles (>= 512 column tiles: the head, gate|up), and a second
  // round of tile_dots_deep (down's k = 2048 > 1536).
  const RolloutShape tiny{}, wide{4100, 320, 2048, 0.12f};
  struct Case {
    std::vector<int64_t> lens;
    RolloutShape shape;
  };
  const std::vector<Case> cases = {{{3, 19, 6}, tiny},
                                   {{5, 3, 9, 2, 7, 4, 6, 8}, tiny},
                                   {{3, 19}, wide},
                                   {{5, 3, 9, 2, 7, 4, 6, 8}, wide}};
  for (const Case& cs : cases)
    for (bool cascade : {false, true})
      for (bool graphs : {false, true}) {
        const std::vector<int64_t>& lens = cs.lens;
        const int64_t V = cs.shape.vocab;
        const std::string what =
            std::to_string(lens.size()) + " branches, hidden " + std::to_string(cs.shape.hidden) +
            (cascade ? ", cascade" : ", flat") + (graphs ? " vs graphs" : " vs eager");
        const Diffs ref = fork_rollout(DevDType::kBF16, cascade, graphs, true, 128, false, true,
                                       DecodeMerge::kStaged, false, lens, false, cs.shape);
        // The streamed kernel is sm_90a code: it runs where the attention's wgmma kernels do.
        const bool sm90a = attention_wgmma_available();
        struct Variant {
          bool stream, fold;
          const char* name;
        };
        for (const Variant& v : {Variant{true, true, ", streamed"}, Variant{false, true, ", plain"},
                                 Variant{true, false, ", streamed, every barrier"}}) {
          // The defaults in both step modes; each other form once a case (the same launches).
          if ((!v.stream || !v.fold) && graphs) continue;
          const bool stream = v.stream;
          const std::string how = what + v.name;
          const Diffs one =
              fork_rollout(DevDType::kBF16, cascade, graphs, true, 128, false, true,
                           DecodeMerge::kStaged, true, lens, false, cs.shape, stream, v.fold);
          CHECK_MSG(ref.kernel_steps == 0 && one.kernel_steps > 0,
                    how + ": " + std::to_string(one.kernel_steps) + " one-kernel steps");
          CHECK_MSG(one.kernel_streamed == (stream && sm90a),
                    how + (one.kernel_streamed ? ": streamed" : ": did not stream") +
                        " its weights (sm_90a kernels here: " + (sm90a ? "yes)" : "no)"));
          CHECK_MSG(one.kernel_streamed ? one.kernel_ring_slots >= 2 && one.kernel_ring_slots <= 12
                                        : one.kernel_ring_slots == 0,
                    how + ": a ring of " + std::to_string(one.kernel_ring_slots) + " slots");
          CHECK_MSG(one.logits.size() == ref.logits.size() && !one.logits.empty(),
                    how + ": logits counts differ");
          // On a failure, where and how far: rounding-order slips differ by ~1e-6 from the first
          // step on; a wrong work split or a missed K/V write by far more, from one step on.
          int64_t differ = 0, first = -1;
          double worst = 0.0;
          for (size_t i = 0; i < ref.logits.size() && i < one.logits.size(); ++i)
            if (std::memcmp(&ref.logits[i], &one.logits[i], sizeof(float)) != 0) {
              if (first < 0) first = static_cast<int64_t>(i);
              ++differ;
              worst =
                  std::max(worst, std::fabs(static_cast<double>(ref.logits[i]) - one.logits[i]));
            }
          CHECK_MSG(differ == 0,
                    how + ": " + std::to_string(differ) + " of " +
                        std::to_string(ref.logits.size()) + " logits differ, the first at logit " +
                        std::to_string(first) + " (vocab " + std::to_string(V) + ": row " +
                        std::to_string(first / V) + " of the concatenated steps), max |diff| " +
                        std::to_string(worst));
          CHECK_MSG(one.max < 0.1, how + ": decode vs forward " + std::to_string(one.max));
        }
      }
  // Timed phases: the same bits, every phase named with some time, once per one-kernel step.
  const std::vector<int64_t> lens = {5, 3, 9, 2, 7, 4, 6, 8};
  const Diffs ref = fork_rollout(DevDType::kBF16, true, false, true, 128, false, true,
                                 DecodeMerge::kStaged, true, lens);
  const Diffs timed = fork_rollout(DevDType::kBF16, true, false, true, 128, false, true,
                                   DecodeMerge::kStaged, true, lens, true);
  CHECK_MSG(timed.logits == ref.logits, "timed one-kernel steps changed the logits");
  CHECK_MSG(timed.kernel_timed_steps == timed.kernel_steps && timed.kernel_steps > 0,
            "timed " + std::to_string(timed.kernel_timed_steps) + " of " +
                std::to_string(timed.kernel_steps) + " one-kernel steps");
  double total = 0.0;
  for (const char* phase : {"barrier", "embedding", "qkv", "qk_norm_rope_attend", "merge", "o_proj",
                            "gate_up_swiglu", "down", "head"}) {
    const auto it = timed.kernel_phase_ms.find(phase);
    CHECK_MSG(it != timed.kernel_phase_ms.end() && it->second >= 0.0,
              std::string("no time for the phase ") + phase);
    if (it != timed.kernel_phase_ms.end()) total += it->second;
  }
  // And where the CTAs' time went (the streamed kernel's ring waits on sm_90 alone).
  for (const char* part :
       {"cta_wait_ring", "cta_wait_ring_max", "cta_wait_ring_qkv", "cta_wait_ring_o_proj",
        "cta_wait_ring_gate_up_swiglu", "cta_wait_ring_down", "cta_wait_ring_head", "cta_wait_grid",
        "cta_wait_grid_max", "cta_wait_grid_embedding", "cta_wait_grid_qkv",
        "cta_wait_grid_qk_norm_rope_attend", "cta_wait_grid_merge", "cta_wait_grid_o_proj",
        "cta_wait_grid_gate_up_swiglu", "cta_wait_grid_down", "cta_wait_grid_head", "cta_work"}) {
    const auto it = timed.kernel_phase_ms.find(part);
    CHECK_MSG(it != timed.kernel_phase_ms.end() && it->second >= 0.0,
              std::string("no time for the CTAs' ") + part);
  }
  const auto figure = [&](const char* name) {
    const auto it = timed.kernel_phase_ms.find(name);
    return it == timed.kernel_phase_ms.end() ? 0.0 : it->second;
  };
  CHECK_MSG(figure("cta_work") > 0.0 && figure("cta_wait_grid") > 0.0,
            "the CTAs' work and barrier waits read zero");
  CHECK_MSG(total > 0.0 && timed.kernel_phase_ms.size() == 27,
            "phase times sum to " + std::to_string(total) + " ms over " +
                std::to_string(timed.kernel_phase_ms.size()) + " phases");
}

TEST(cuda_decode_profile_times_every_op_kind) {
  Rng rng(3);
  Qwen3Config cfg = tiny_config(true);
  auto cpu = random_model(rng, cfg, 0.4f);
  (void)cuda_test_context();
  for (bool fast : {false, true}) {
    std::unique_ptr<Qwen3CudaModel> gpu;
    CHECK_OK(Qwen3CudaModel::create(cfg, DevDType::kBF16, &gpu));
    if (!gpu) return;
    for (const ParamInfo& p : cpu->params()) CHECK_OK(gpu->set_param(p, cpu->weights() + p.offset));
    const int32_t B = 4, P = 9;
    std::unique_ptr<KvPagesCuda> pages;
    CHECK_OK(KvPagesCuda::create(gpu->context(), DevDType::kBF16, cfg.layers, 8, B, cfg.kv_heads,
                                 cfg.head_dim, &pages));
    if (!pages) return;
    Qwen3CudaDecoder dec(*gpu, *pages);
    dec.fast_kernels = fast;
    dec.profile = true;
    KvCache kv(8, B);
    const int32_t r = kv.open_request(100);
    int32_t seq;
    KvAnswer a;
    CHECK_OK(kv.create_sequence(r, &seq));
    std::vector<int32_t> ids(P), pos(P);
    for (int32_t i = 0; i < P; ++i) ids[i] = i % 7, pos[i] = i;
    for (int step = 0; step < 3; ++step) {  // a prefill chunk, then two one-token steps
      const int32_t n = step == 0 ? P - 2 : 1;
      CHECK_OK(kv.append(seq, n, step > 0, &a));
      Tables tb = tables_of(kv, {seq});
      const int32_t off = step == 0 ? 0 : P - 3 + step;
      const int32_t cu_new[2] = {0, n};
      const Qwen3DecodeBatch batch{1, cu_new, ids.data() + off, pos.data() + off, tb.view()};
      CHECK_OK(dec.step(batch, true, nullptr));
    }
    const auto& st = dec.stats();
    CHECK(st.profiled_steps == 3 && st.graph_replays == 0);
    // Every step here has at most kSkinnyMaxRows tokens, so the fast path folds both layer
    // norms into the q|k|v and gate|up launches and times no "norm" op at all.
    std::vector<std::string> ops = {"embedding", "qkv",    "qk_norm_rope_write",
                                    "attention", "o_proj", "gate_up_swiglu",
                                    "down",      "head"};
    if (!fast) ops.push_back("norm");
    for (const std::string& op : ops) {
      const auto it = st.op_ms.find(op);
      CHECK_MSG(it != st.op_ms.end() && it->second > 0.0,
                std::string(fast ? "fast" : "generic") + ": no time for op " + op);
    }
    CHECK_MSG(st.op_ms.size() == ops.size(),
              std::string(fast ? "fast" : "generic") + ": " + std::to_string(st.op_ms.size()) +
                  " op kinds timed, expected " + std::to_string(ops.size()));
    // Each step's device span: all three steps, settled without another step after them, and
    // no less than the ops the profile timed inside them.
    CHECK_OK(dec.settle_stats());
    double ops_ms = 0.0;
    for (const auto& [op, ms] : st.op_ms) ops_ms += ms;
    CHECK_MSG(st.device_timed_steps == 3 && st.device_ms >= 0.99 * ops_ms,
              "device spans " + std::to_string(st.device_timed_steps) + " steps, " +
                  std::to_string(st.device_ms) + " ms vs the ops' " + std::to_string(ops_ms));
    CHECK_OK(dec.settle_stats());  // nothing pending: a no-op
    CHECK(st.device_timed_steps == 3);
  }
}

TEST(cuda_sampler_draws_the_cpu_tokens) {
  CudaContext& ctx = cuda_test_context();
  Rng rng(5);
  struct Mode {
    const char* name;
    SamplingParams p;
    float penalty;
  };
  const Mode modes[] = {
      {"greedy", {0.0f, 0, 1.0f, 0.0f, 1}, 1.0f},
      {"temperature", {0.8f, 0, 1.0f, 0.0f, 2}, 1.0f},
      {"top-k", {1.0f, 20, 1.0f, 0.0f, 3}, 1.0f},
      {"top-p", {1.0f, 0, 0.9f, 0.0f, 4}, 1.0f},
      {"min-p", {0.7f, 0, 1.0f, 0.05f, 5}, 1.0f},
      {"all + penalty", {0.6f, 50, 0.95f, 0.02f, 6}, 1.3f},
      {"greedy + penalty", {0.0f, 0, 1.0f, 0.0f, 7}, 1.5f},
  };
  for (int64_t vocab : {37, 1000, 151936}) {
    const int64_t rows = vocab > 10000 ? 4 : 24;
    for (const Mode& m : modes) {
      auto logits = random_vector(rng, rows * vocab);
      for (float& x : logits) x *= 6.0f;
      if (vocab == 1000) logits[7] = logits[8] = 12.0f;  // a tie at the top
      DeviceBuffer dl = to_device(ctx, logits, DevDType::kF32);
      std::vector<int32_t> pen;
      for (int i = 0; i < 12; ++i) pen.push_back(static_cast<int32_t>(rng.below(vocab)));
      pen.push_back(pen[0]);  // a repeat: penalised once
      std::vector<SampleRow> rr(static_cast<size_t>(rows));
      for (int64_t r = 0; r < rows; ++r)
        rr[r] = SampleRow{logits.data() + r * vocab,        r % 3,    r % 5, 100 + r, pen.data(),
                          static_cast<int32_t>(pen.size()), m.penalty};
      std::vector<SampleResult> want(rows), got(rows);
      CHECK_OK(sample_rows(CpuContext{nullptr, detect_simd()}, want.data(), rr.data(), rows, vocab,
                           m.p));
      CHECK_OK(sample_rows_cuda(ctx, got.data(), dl.as<float>(), rr.data(), rows, vocab, m.p));
      int same = 0;
      double lp = 0.0, lps = 0.0;
      for (int64_t r = 0; r < rows; ++r) {
        same += want[r].token == got[r].token;
        lp = std::max(lp, std::fabs(static_cast<double>(want[r].logprob) - got[r].logprob));
        lps = std::max(lps, std::fabs(static_cast<double>(want[r].logprob_sampling) -
                                      got[r].logprob_sampling));
      }
      const std::string what = std::string(m.name) + " vocab " + std::to_string(vocab);
      CHECK_MSG(same == rows, what + ": " + std::to_string(rows - same) + " of " +
                                  std::to_string(rows) + " tokens differ from the CPU sampler");
      CHECK_MSG(lp < 1e-5 && lps < 1e-5,
                what + ": logprobs differ by " + std::to_string(lp) + " / " + std::to_string(lps));
    }
  }
  std::vector<float> bad(10, 0.0f);
  bad[3] = NAN;
  DeviceBuffer db = to_device(ctx, bad, DevDType::kF32);
  SampleRow row{bad.data(), 0, 0, 0, nullptr, 0, 1.0f};
  SampleResult res;
  CHECK(sample_rows_cuda(ctx, &res, db.as<float>(), &row, 1, 10, SamplingParams{}).code() ==
        StatusCode::kInvalidArgument);
}

#else
TEST(cuda_decode_needs_a_cuda_build) {
  SKIP("built without CUDA (NPR_CUDA=off or no nvcc)");
}
#endif

}  // namespace npr::test
