// Qwen3CudaDecoder, the engine's CUDA decode step, run whole by the CPU emulator (cpp/tests/emu):
// the bf16 model and its KV pages on the emulated device, a prefix prefilled by the decoder,
// forked (the device pages take the fork's slot copies), and the branches decoded one token a
// step, on each of the decoder's paths: its CUDA graphs (a bucket's graph captured on its second
// step and replayed after), eager launches, and the one-kernel step (opt-in; its launch and the
// decoder's glue around it, built from the parameter table, run here on every CI run).
//
// Every path gives the same logits, bit for bit (the graph replays the eager launches; the
// one-kernel step reproduces the layer path), within bf16 reach of the CPU decode step on the
// same weights, and each path says it ran (graph replays, one-kernel steps). All the decoder
// allocated is freed with it. Steps left on the device (the engine's decodeLaunch) and read after
// later launches give the downloading steps' bits.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "kernels/decode_attention.h"
#include "kvcache/kv_cache.h"
#include "kvcache/kv_pages.h"
#include "model/qwen3_decode.h"
#include "sampler/token_logprob.h"
#include "tests/harness.h"
#include "tests/test_models.h"
#include "tests/test_page_tables.h"
#include "tests/test_util.h"
#if defined(NPR_HAVE_EMU)
#include "tests/emu/emu_cuda_api.h"
#include "tests/emu/emu_decoder.h"
#include "tests/emu/emu_ptx.h"
#include "tests/emu/emu_runtime.h"
#endif

namespace npr::test {

#if defined(NPR_HAVE_EMU)
namespace {

constexpr int32_t kBlocks = 40, kBlockTokens = 4;

// How a rollout reads its steps: each step's logits downloaded by the step itself, or each step
// left on the device (the engine's decodeLaunch) and, every other step, read after its launch
// (downloaded, and a token's log-probability a row on the device), so that a launch follows an
// unread one; with the emulator's deferred streams nothing runs until a read syncs.
enum class Reads { kDownload, kLaunchThenRead };

struct Run {
  std::vector<std::vector<float>> logits;    // every step's, in order (empty: a step not read)
  std::vector<std::vector<float>> logprobs;  // (Reads::kLaunchThenRead) each read step's rows'
                                             // log p of token (7 row + step) % vocab
  double worst = 0.0;                        // relative norm error against the CPU, the largest
  emu::DecoderStats stats{};
  int64_t kernels = 0;  // kernel grids run on the emulated device (eager or replayed)
  // Programmatic launches run against the memory from before the kernels they may overlap
  // (emu_pdl_check.h): their reads before griddepcontrol.wait checked.
  int64_t pdl_checked = 0;
};

// The emulated decoder beside the CPU decode step over one KV cache (its host bookkeeping, CPU
// pages and device pages): every step runs on both, and the device's logits must be within bf16
// reach of the CPU's.
struct Twin {
  Twin(Qwen3Model& m, const emu::DecoderOptions& opt, std::string n)
      : model(m),
        dec(emu::DecoderModel{m.config().vocab, m.config().hidden, m.config().intermediate,
                              m.config().layers, m.config().heads, m.config().kv_heads,
                              m.config().head_dim, m.config().rms_eps, m.config().rope_theta,
                              m.config().tied, m.weights()},
            kBlocks, kBlockTokens, opt),
        name(std::move(n)) {
    const Qwen3Config& c = m.config();
    CHECK_MSG(dec.error().empty(), name + ": " + dec.error());
    CHECK_OK(KvPages::create(c.layers, kBlocks, kBlockTokens, c.kv_heads, c.head_dim, &cpages));
  }
  bool ok() const { return dec.error().empty(); }
  // One step of `seqs` (cu_new, ids, pos) on both sides; *logits: the device's; *e: its relative
  // norm error against the CPU's. False when the device step failed.
  // launch: the device step leaves its logits on the device; read: then they are downloaded
  // (else *logits is left empty and the step is not compared).
  bool step(const std::vector<int32_t>& seqs, const std::vector<int32_t>& cu_new,
            const std::vector<int32_t>& ids, const std::vector<int32_t>& pos, bool cascade,
            const std::string& what, std::vector<float>* logits, double* e, bool launch = false,
            bool read = true) {
    const Tables tb = tables_of(kv, seqs);
    const int64_t S = static_cast<int64_t>(seqs.size()), V = model.config().vocab;
    std::vector<float> want(static_cast<size_t>(S * V));
    *logits = poisoned(S * V);
    CHECK_OK(qwen3_decode_step(
        cpu, model, cpages, Qwen3DecodeBatch{S, cu_new.data(), ids.data(), pos.data(), tb.view()},
        cascade, want.data()));
    std::string err =
        dec.step(emu::DecoderStep{S, cu_new.data(), ids.data(), pos.data(), tb.indptr.data(),
                                  tb.indices.data(), tb.last.data()},
                 cascade, launch ? nullptr : logits->data());
    if (err.empty() && launch && read) err = dec.read_logits(logits->data());
    CHECK_MSG(err.empty(), name + ", " + what + ": " + err);
    *e = 0.0;
    if (!read) {
      logits->clear();
      return err.empty();
    }
    *e = rel_norm_error(*logits, want);
    CHECK_MSG(*e < 2e-2, name + ", " + what + ": logits vs the CPU " + std::to_string(*e));
    return err.empty();
  }
  Qwen3Model& model;
  emu::Decoder dec;
  KvCache kv{kBlocks, kBlockTokens};
  KvPages cpages;
  CpuContext cpu{nullptr, detect_simd()};
  std::string name;
};

// A prefix of P tokens prefilled in one step, forked into lens.size() branches, branch b then
// decoding lens[b] tokens (the same tokens whatever the path), each step on the CPU and on the
// emulated decoder.
Run rollout(Qwen3Model& model, int64_t P, const std::vector<int64_t>& lens, bool cascade,
            const emu::DecoderOptions& opt, const std::string& name,
            Reads reads = Reads::kDownload) {
  const int64_t V = model.config().vocab;
  Run out;
  Twin tw(model, opt, name);
  if (!tw.ok()) return out;
  const int64_t kernels_before = emu::cuda::kernels_run();
  const int64_t checked_before = emu::pdl_check::checked_launches();
  KvCache& kv = tw.kv;
  const auto step = [&](const std::vector<int32_t>& seqs, const std::vector<int32_t>& cu_new,
                        const std::vector<int32_t>& ids, const std::vector<int32_t>& pos,
                        const std::string& what) {
    std::vector<float> got;
    double e = 0.0;
    const bool launch = reads == Reads::kLaunchThenRead;
    const int64_t j = static_cast<int64_t>(out.logits.size());
    const bool read = !launch || j % 2 == 0;
    const bool ran = tw.step(seqs, cu_new, ids, pos, cascade, what, &got, &e, launch, read);
    if (ran && launch && read) {
      const int64_t S = static_cast<int64_t>(seqs.size());
      std::vector<int32_t> rows, tokens;
      for (int64_t r = 0; r < S; ++r) {
        rows.push_back(static_cast<int32_t>(r));
        tokens.push_back(static_cast<int32_t>((7 * r + j) % V));
      }
      std::vector<float> lp = poisoned(S);
      const std::string err = tw.dec.logprobs(rows.data(), tokens.data(), S, lp.data());
      CHECK_MSG(err.empty(), name + ", " + what + " logprobs: " + err);
      out.logprobs.push_back(std::move(lp));
    }
    out.worst = std::max(out.worst, e);
    out.logits.push_back(std::move(got));
    return ran;
  };
  // The prefix: one sequence, P new tokens.
  const int32_t root = prefix_sequence(kv, P);
  std::vector<int32_t> ids, pos;
  for (int64_t t = 0; t < P; ++t) {
    ids.push_back(static_cast<int32_t>((13 * t + 5) % V));
    pos.push_back(static_cast<int32_t>(t));
  }
  if (!step({root}, {0, static_cast<int32_t>(P)}, ids, pos, "prefill")) return out;
  std::vector<int32_t> kids;
  std::vector<SlotCopy> copies;
  KvAnswer a;
  CHECK_OK(kv.fork(root, static_cast<int32_t>(lens.size()), &kids, &a, &copies));
  tw.cpages.apply(copies);
  std::vector<int32_t> flat;
  for (const SlotCopy& s : copies)
    flat.insert(flat.end(), {s.src_block, s.src_slot, s.dst_block, s.dst_slot, s.count});
  const std::string err = tw.dec.apply(flat);
  CHECK_MSG(err.empty(), name + ", fork: " + err);
  for (int64_t j = 0;; ++j) {
    const BranchStep bs = branch_step(kv, kids, lens, j, V, P);
    if (bs.live.empty()) break;
    if (!step(bs.live, bs.cu_new, bs.ids, bs.pos, "step " + std::to_string(j))) break;
  }
  out.stats = tw.dec.stats();
  out.kernels = emu::cuda::kernels_run() - kernels_before;
  out.pdl_checked = emu::pdl_check::checked_launches() - checked_before;
  return out;
}

// A small random model with bf16-exact weights (both sides read the same), head dim 128 (the
// one-kernel step's).
std::unique_ptr<Qwen3Model> decoder_model() {
  Qwen3Config cfg = tiny_config(false);
  cfg.vocab = 67;
  cfg.hidden = 64;
  cfg.intermediate = 96;
  cfg.head_dim = 128;
  Rng rng(99);
  std::unique_ptr<Qwen3Model> model = random_model(rng, cfg, 0.4f);
  for (const ParamInfo& p : model->params())
    if (p.shape.size() > 1)
      for (int64_t i = 0; i < p.numel; ++i)
        model->weights()[p.offset + i] = bf16_to_f32(f32_to_bf16(model->weights()[p.offset + i]));
  return model;
}

}  // namespace
#endif

TEST(emu_decoder_paths_give_the_same_bits_as_each_other_near_the_cpu) {
#if !defined(NPR_HAVE_EMU)
  SKIP("the kernel emulator is not built (no CUDA toolkit headers, or NPR_EMU=off)");
#else
  std::unique_ptr<Qwen3Model> model = decoder_model();
  const Qwen3Config& cfg = model->config();
  emu::set_device(emu::Device{});
  // A prefix of 7 tokens (one prefill step of the skinny layers), 3 branches of 5, 4 and 5
  // tokens: 5 one-token steps, the first four in the 4-row bucket (warmed, captured, replayed).
  const std::vector<int64_t> lens = {5, 4, 5};
  for (bool cascade : {false, true}) {
    const std::string tail = cascade ? " (cascade)" : " (flat)";
    emu::DecoderOptions graphs, eager, kernel, graphs_unfused, eager_unfused, ahead;
    emu::DecoderOptions graphs_split, kernel_split;  // an item a page: 2-4 items a run, merged
    graphs_split.pages_per_item = kernel_split.pages_per_item = 1;
    kernel_split.step_kernel = true;
    eager.use_graphs = false;
    ahead.prefetch_next_weights = true;
    kernel.step_kernel = true;
    graphs_unfused.fused_qk_write = false;
    eager_unfused = eager;
    eager_unfused.fused_qk_write = false;
    const Run g = rollout(*model, 7, lens, cascade, graphs, "graphs" + tail);
    const Run e = rollout(*model, 7, lens, cascade, eager, "eager" + tail);
    const Run k = rollout(*model, 7, lens, cascade, kernel, "one-kernel step" + tail);
    const Run gu = rollout(*model, 7, lens, cascade, graphs_unfused, "graphs, unfused" + tail);
    const Run eu = rollout(*model, 7, lens, cascade, eager_unfused, "eager, unfused" + tail);
    const Run gs = rollout(*model, 7, lens, cascade, graphs_split, "graphs, an item a page" + tail);
    const Run ks =
        rollout(*model, 7, lens, cascade, kernel_split, "one-kernel step, an item a page" + tail);
    // Each skinny layer prefetching the next one's weights (every prefetched line inside a
    // buffer, or the emulator faults): the same bits, the same kernels.
    emu::ptx::record_prefetches(true);
    const Run ga = rollout(*model, 7, lens, cascade, ahead, "graphs, prefetch next" + tail);
    emu::ptx::record_prefetches(false);
    CHECK_MSG(ga.logits == g.logits && ga.kernels == g.kernels,
              "prefetching the next layer's weights changed the bits or the launches" + tail);
    // What the chain covers: every layer's o, gate|up and down, every q|k|v but the first, the
    // head's first rows; each range whole (its lines, give or take the ones two ranges share).
    const int64_t H = cfg.hidden, I = cfg.intermediate, qd = cfg.heads * cfg.head_dim,
                  kd = cfg.kv_heads * cfg.head_dim;
    const int64_t ranges = 4 * cfg.layers;
    const int64_t chain =
        2 * (cfg.layers * (qd * H + 3 * I * H) + (cfg.layers - 1) * (qd + 2 * kd) * H +
             std::min<int64_t>(cfg.vocab, 4096) * H);
    const auto lines = static_cast<int64_t>(emu::ptx::prefetched_lines().size());
    CHECK_MSG(lines >= chain / 128 - ranges && lines <= chain / 128 + 2 * ranges,
              "the chain prefetched " + std::to_string(lines) + " lines, its ranges hold " +
                  std::to_string(chain / 128) + tail);
    // The q/k norm + RoPE + KV write inside the attend kernel (fused_qk_write, the default):
    // the separate kernel's bits, one launch a layer fewer in each of the 5 one-token steps
    // (the prefill step of 7 tokens runs the separate kernel either way).
    CHECK_MSG(eu.logits == e.logits && gu.logits == e.logits,
              "the separate q/k norm + RoPE + KV write kernel gives other bits" + tail);
    CHECK_MSG(eu.kernels - e.kernels == 5 * cfg.layers && gu.kernels - g.kernels == 5 * cfg.layers,
              "the fused steps ran " + std::to_string(eu.kernels - e.kernels) + " (eager) and " +
                  std::to_string(gu.kernels - g.kernels) + " (graphs) kernels fewer, not 5 x " +
                  std::to_string(cfg.layers) + tail);
    std::printf(
        "    %s: logits rel err vs cpu %.3g (graphs) %.3g (eager) %.3g (one-kernel); graph "
        "captures %lld, replays %lld; one-kernel steps %lld on %lld CTAs\n",
        tail.c_str(), g.worst, e.worst, k.worst, static_cast<long long>(g.stats.graph_captures),
        static_cast<long long>(g.stats.graph_replays), static_cast<long long>(k.stats.kernel_steps),
        static_cast<long long>(k.stats.kernel_grid));
    CHECK_MSG(g.logits.size() == 6 && e.logits.size() == 6 && k.logits.size() == 6,
              "every path ran the prefill and 5 steps" + tail);
    CHECK_MSG(g.logits == e.logits, "graph replays give other bits than eager steps" + tail);
    CHECK_MSG(k.logits == e.logits, "the one-kernel step gives other bits than eager steps" + tail);
    // Another split-KV (every rollout checks its logits against the CPU): one plan, one set of
    // bits for the layer path and the one-kernel step; and it is another plan, not the default.
    CHECK_MSG(gs.logits.size() == 6 && ks.logits == gs.logits,
              "with an item a page the one-kernel step gives other bits than graph steps" + tail);
    CHECK_MSG(gs.logits != g.logits, "an item a page gave the default plan's bits" + tail);
    CHECK_MSG(g.stats.graph_replays >= 2 && g.stats.graph_error.empty(),
              "the graph path replayed " + std::to_string(g.stats.graph_replays) + " steps" + tail +
                  " " + g.stats.graph_error);
    CHECK_MSG(e.stats.graph_replays == 0, "the eager path replayed a graph" + tail);
    CHECK_MSG(g.stats.candidate_steps == 0,
              "steps of 3 sequences took the candidate kernels by default" + tail);
    CHECK_MSG(k.stats.kernel_steps == 5 && k.stats.kernel_error.empty(),
              "the one-kernel step ran " + std::to_string(k.stats.kernel_steps) + " of 5 steps" +
                  tail + " " + k.stats.kernel_error);
  }
  CHECK_MSG(emu::device_bytes_in_use() == 0 && emu::device_allocations() == 0,
            "the decoder left " + std::to_string(emu::device_bytes_in_use()) +
                " bytes of device memory allocated");
#endif
}

// The candidate kernels (programmatic launches) by default in the graph steps of one sequence
// only: the prefill's eager step and the steps of several sequences keep the plain launches.
// The same bits in every choice, so a sequence's logits do not depend on its batch.
TEST(emu_decoder_takes_the_candidate_kernels_in_one_sequence_graph_steps) {
#if !defined(NPR_HAVE_EMU)
  SKIP("the kernel emulator is not built (no CUDA toolkit headers, or NPR_EMU=off)");
#else
  std::unique_ptr<Qwen3Model> model = decoder_model();
  emu::set_device(emu::Device{});
  emu::DecoderOptions one_row, none, all;
  none.candidate_one_row = false;
  all.candidate_kernels = true;
  const std::vector<int64_t> one = {6};  // the prefix, then one branch of 6 one-token steps
  const Run d = rollout(*model, 7, one, true, one_row, "one sequence, default");
  const Run n = rollout(*model, 7, one, true, none, "one sequence, no candidate kernels");
  const Run a = rollout(*model, 7, one, true, all, "one sequence, candidate kernels throughout");
  CHECK_MSG(d.logits.size() == 7 && n.logits == d.logits && a.logits == d.logits,
            "the candidate kernels changed the bits");
  // The skinny layers on CUDA cores (tensorCoreLinears: false), their own bits: the same with
  // and without programmatic launches, and those checked too.
  emu::DecoderOptions cores_none = none, cores_all = all;
  cores_none.tensor_core_linears = cores_all.tensor_core_linears = false;
  const Run cn = rollout(*model, 7, one, true, cores_none, "one sequence, CUDA cores, none");
  const Run ca = rollout(*model, 7, one, true, cores_all, "one sequence, CUDA cores, throughout");
  CHECK_MSG(cn.logits.size() == 7 && ca.logits == cn.logits && ca.stats.candidate_steps == 7 &&
                ca.pdl_checked > 0,
            "on CUDA cores the candidate kernels changed the bits (or none ran checked: " +
                std::to_string(ca.pdl_checked) + ")");
  CHECK_MSG(d.stats.graph_replays >= 2,
            "the one-sequence steps replayed " + std::to_string(d.stats.graph_replays) + " graphs");
  std::printf(
      "    programmatic launches checked: %lld by default, %lld with none, %lld throughout, %lld "
      "throughout on CUDA cores\n",
      static_cast<long long>(d.pdl_checked), static_cast<long long>(n.pdl_checked),
      static_cast<long long>(a.pdl_checked), static_cast<long long>(ca.pdl_checked));
  CHECK_MSG(d.pdl_checked > 0 && a.pdl_checked > d.pdl_checked && n.pdl_checked == 0,
            "the PDL check ran on the programmatic launches only");
  CHECK_MSG(
      d.stats.candidate_steps == 6 && n.stats.candidate_steps == 0 && a.stats.candidate_steps == 7,
      "candidate steps: " + std::to_string(d.stats.candidate_steps) + " by default (want 6), " +
          std::to_string(n.stats.candidate_steps) + " with none (0), " +
          std::to_string(a.stats.candidate_steps) + " throughout (7)");
#endif
}

// A prompt prefilled in chunks (71, 1, then 17 tokens: the first two key tiles of the mma.sync
// forward, one of the warp-specialised one) beside a second sequence (3 tokens, then
// one a step), on each path of a step of chunks: the fused chunk attention (the causal part
// among the step's tokens by the training forward's kernel, the pages before them through the
// cascade or flat; its kernel the mma.sync forward, or the warp-specialised tensor-map one that
// the addon picks on an sm_90 device, attention_wgmma 10) and the paged one (every row's table to
// itself, cascade or flat). Every path gives the CPU decode step's logits to bf16 rounding, each
// with its own bits in the steps of chunks (0 and 2; in step 0, where no key is from before the
// step, the two fused kernels' bits differ and each fused kernel's two page paths agree).
TEST(emu_decoder_prefills_chunks_on_every_path) {
#if !defined(NPR_HAVE_EMU)
  SKIP("the kernel emulator is not built (no CUDA toolkit headers, or NPR_EMU=off)");
#else
  std::unique_ptr<Qwen3Model> model = decoder_model();
  const int64_t V = model->config().vocab;
  emu::set_device(emu::Device{});
  struct Path {
    const char* name;
    bool fused, cascade;
    int32_t wgmma;  // DecoderOptions::attention_wgmma
  };
  const Path paths[] = {
      {"fused, cascade", true, true, 0},        {"fused, flat", true, false, 0},
      {"paged, cascade", false, true, 0},       {"paged, flat", false, false, 0},
      {"fused ws128, cascade", true, true, 10}, {"fused ws128, flat", true, false, 10}};
  constexpr int kPaths = 6;
  std::vector<std::vector<float>> got[kPaths];
  for (int k = 0; k < kPaths; ++k) {
    emu::DecoderOptions opt;
    opt.fused_chunk_attention = paths[k].fused;
    opt.attention_wgmma = paths[k].wgmma;
    Twin tw(*model, opt, paths[k].name);
    if (!tw.ok()) return;
    const int32_t seqs[2] = {prefix_sequence(tw.kv, 0), prefix_sequence(tw.kv, 0)};
    int32_t at[2] = {0, 0};                                  // tokens of each sequence so far
    const int32_t steps[3][2] = {{71, 3}, {1, 1}, {17, 1}};  // new tokens of each a step
    for (int j = 0; j < 3; ++j) {
      std::vector<int32_t> cu{0}, ids, pos;
      for (int q = 0; q < 2; ++q) {
        KvAnswer a;
        CHECK_OK(tw.kv.append(seqs[q], steps[j][q], false, &a));
        for (int32_t i = 0; i < steps[j][q]; ++i) {
          ids.push_back(static_cast<int32_t>((7 * (at[q] + i) + 3 * q + 1) % V));
          pos.push_back(at[q] + i);
        }
        at[q] += steps[j][q];
        cu.push_back(static_cast<int32_t>(ids.size()));
      }
      const std::string what = "step " + std::to_string(j);
      std::vector<float> out;
      double e = 0.0;
      tw.step({seqs[0], seqs[1]}, cu, ids, pos, paths[k].cascade, what, &out, &e);
      std::printf("    %s, %s: logits rel err vs cpu %.3g\n", paths[k].name, what.c_str(), e);
      got[k].push_back(std::move(out));
    }
  }
  for (int k = 0; k < kPaths; ++k) CHECK(got[k].size() == 3);
  // In step 0 no key comes from before the step: the fused paths read no pages there, so their
  // step 0 is their kernel's alone (the same bits for one kernel, cascade or flat).
  for (int k = 0; k < kPaths; ++k)
    for (int m = k + 1; m < kPaths; ++m) {
      if (got[k].size() != 3 || got[m].size() != 3) continue;
      const bool one_kernel = paths[k].fused && paths[m].fused && paths[k].wgmma == paths[m].wgmma;
      const std::string pair = std::string(paths[k].name) + " and " + paths[m].name;
      CHECK_MSG((got[k][0] == got[m][0]) == one_kernel,
                pair + (one_kernel ? " differ" : " gave the same bits") + " in step 0");
      CHECK_MSG(got[k][2] != got[m][2], pair + " gave the same bits in step 2");
    }
#endif
}

// The attend kernel's K/V prefetch (attention_kv_ahead) in the programmatic launches of the
// one-sequence graph steps: the same bits and launches, and what it prefetches is exactly the
// branch's keys and values: over the 6 one-token steps the sequence reaches 13 tokens, so each
// layer and kv head adds 13 K rows and 13 V rows of 256 bytes (two lines each) to the lines the
// other kernels prefetch (every prefetched line inside a buffer, or the emulator faults).
TEST(emu_decoder_attention_prefetch_covers_the_keys_and_values_and_keeps_the_bits) {
#if !defined(NPR_HAVE_EMU)
  SKIP("the kernel emulator is not built (no CUDA toolkit headers, or NPR_EMU=off)");
#else
  std::unique_ptr<Qwen3Model> model = decoder_model();
  const Qwen3Config& cfg = model->config();
  emu::set_device(emu::Device{});
  emu::DecoderOptions plain, ahead;
  ahead.attention_kv_ahead = true;
  const std::vector<int64_t> one = {6};
  std::set<uint64_t> lines[2];
  Run runs[2];
  for (int i = 0; i < 2; ++i) {
    emu::ptx::record_prefetches(true);
    runs[i] = rollout(*model, 7, one, true, i == 0 ? plain : ahead,
                      i == 0 ? "one sequence" : "one sequence, attention prefetch");
    lines[i] = emu::ptx::prefetched_lines();
    emu::ptx::record_prefetches(false);
  }
  CHECK_MSG(runs[0].logits.size() == 7 && runs[1].logits == runs[0].logits &&
                runs[1].kernels == runs[0].kernels,
            "the attention prefetch changed the bits or the launches");
  CHECK_MSG(runs[1].stats.candidate_steps == 6,
            "candidate steps " + std::to_string(runs[1].stats.candidate_steps) + ", want 6");
  // (Each run allocates afresh, so the two sets are compared by size, not line by line.)
  const int64_t added =
      static_cast<int64_t>(lines[1].size()) - static_cast<int64_t>(lines[0].size());
  const int64_t row_lines = cfg.head_dim * 2 / 128;
  const int64_t want = cfg.layers * cfg.kv_heads * 13 * 2 * row_lines;
  CHECK_MSG(added == want, "the attention prefetch added " + std::to_string(added) +
                               " lines, want " + std::to_string(want));
#endif
}

TEST(emu_decoder_items_of_several_key_tiles_keep_the_bits) {
#if !defined(NPR_HAVE_EMU)
  SKIP("the kernel emulator is not built (no CUDA toolkit headers, or NPR_EMU=off)");
#else
  // Items of 17 pages (68 keys, past one 64-key tile) after a prefix of 133 tokens (34 pages of
  // 4): flat, each branch's keys are two items of 17 pages, the second's two tiles ending at the
  // new token; cascade, the shared prefix's 33 pages (two items of old keys) and each branch's
  // own page (one tile ending at the new token). The fused attend kernel copies an item's first
  // tile before it writes the new K and V (and, as a programmatic launch, before its wait) unless
  // that tile holds the new token: with the copies landing at their issue (a GPU may read the
  // source any time from then) as with them landing at their wait, the separate write kernel's path
  // gives the same bits, and so do the graphs and the one-kernel step; all within bf16 reach of the
  // CPU (each rollout checks). As programmatic launches too, each checked against the memory
  // from before the kernels it may overlap (emu_pdl_check.h).
  const std::unique_ptr<Qwen3Model> model = decoder_model();
  emu::set_device(emu::Device{});
  emu::DecoderOptions eager, unfused, graphs, kernel, programmatic;
  for (emu::DecoderOptions* o : {&eager, &unfused, &graphs, &kernel, &programmatic})
    o->pages_per_item = 17;
  eager.use_graphs = unfused.use_graphs = programmatic.use_graphs = false;
  unfused.fused_qk_write = false;
  // Programmatic launches in every step, the attend kernel's K/V prefetch too: the first tile's
  // copy then runs before the wait, against the memory from before the kernels it may overlap.
  programmatic.candidate_kernels = programmatic.attention_kv_ahead = true;
  kernel.step_kernel = true;
  const std::vector<int64_t> lens = {3, 1, 2};
  for (const bool cascade : {false, true}) {
    const std::string tail = cascade ? ", cascade" : ", flat";
    std::vector<std::vector<float>> first;
    for (const bool at_issue : {false, true}) {
      emu::Options o;
      o.eager_async = at_issue;
      emu::set_options(o);
      const std::string mode = at_issue ? ", copies at issue" : "";
      const Run e = rollout(*model, 133, lens, cascade, eager, "eager" + tail + mode);
      const Run u = rollout(*model, 133, lens, cascade, unfused, "eager unfused" + tail + mode);
      CHECK_MSG(e.logits.size() == 4, std::to_string(e.logits.size()) + " steps" + tail);
      CHECK_MSG(u.logits == e.logits,
                "the separate write kernel's path gives other bits" + tail + mode);
      const Run p = rollout(*model, 133, lens, cascade, programmatic, "programmatic" + tail + mode);
      CHECK_MSG(p.logits == e.logits && p.pdl_checked > 0,
                "the programmatic launches give other bits (or none was checked: " +
                    std::to_string(p.pdl_checked) + ")" + tail + mode);
      if (first.empty()) first = e.logits;
      CHECK_MSG(e.logits == first, "the copies' timing changed the bits" + tail);
    }
    emu::set_options(emu::Options{});
    const Run g = rollout(*model, 133, lens, cascade, graphs, "graphs" + tail);
    const Run k = rollout(*model, 133, lens, cascade, kernel, "one-kernel step" + tail);
    CHECK_MSG(g.logits == first, "graph steps give other bits than eager ones" + tail);
    CHECK_MSG(k.logits == first && k.stats.kernel_steps > 0,
              "the one-kernel step gives other bits (or did not run)" + tail);
    std::printf("    %s: logits rel err vs cpu %.3g (graphs)\n", tail.c_str() + 2, g.worst);
  }
#endif
}

TEST(emu_decoder_steps_left_on_the_device_read_as_their_downloads) {
#if !defined(NPR_HAVE_EMU)
  SKIP("the kernel emulator is not built (no CUDA toolkit headers, or NPR_EMU=off)");
#else
  // The engine's decodeLaunch at the decoder: each step only enqueued (its logits left on the
  // device), every other one read after its launch, so a step is launched behind an unread one
  // and, with the emulator's deferred streams, nothing runs until a read syncs. The read logits
  // are the downloading steps' bits, and the log-probabilities read on the device from them are
  // the CPU's on those logits; on graph replays and on eager steps.
  const std::unique_ptr<Qwen3Model> model = decoder_model();
  const int64_t V = model->config().vocab;
  for (const bool graphs : {true, false}) {
    emu::DecoderOptions opt;
    opt.use_graphs = graphs;
    const std::string name = graphs ? "graphs" : "eager";
    const Run want = rollout(*model, 9, {5, 3, 4}, true, opt, name);
    const Run got =
        rollout(*model, 9, {5, 3, 4}, true, opt, name + ", launched", Reads::kLaunchThenRead);
    CHECK_MSG(got.logits.size() == want.logits.size() && want.logits.size() > 4,
              name + ": " + std::to_string(got.logits.size()) + " steps");
    if (graphs) CHECK_MSG(got.stats.graph_replays > 0, "the launched steps replayed no graph");
    size_t read = 0;
    for (size_t j = 0; j < got.logits.size() && j < want.logits.size(); ++j) {
      if (got.logits[j].empty()) continue;  // launched, never read
      CHECK_MSG(got.logits[j] == want.logits[j],
                name + ", step " + std::to_string(j) + ": other logits than the download's");
      const int64_t S = static_cast<int64_t>(want.logits[j].size()) / V;
      std::vector<TokenQuery> q;
      for (int64_t r = 0; r < S; ++r)
        q.push_back(TokenQuery{static_cast<int32_t>(r), static_cast<int32_t>((7 * r + j) % V)});
      std::vector<float> lp(static_cast<size_t>(S));
      CHECK_OK(token_logprobs(CpuContext{}, lp.data(), want.logits[j].data(), S, V, q.data(), S));
      const std::vector<float>& dev = got.logprobs[read++];
      for (int64_t r = 0; r < S; ++r)
        CHECK_MSG(std::fabs(dev[r] - lp[r]) <= 2e-6f * std::max(1.0f, std::fabs(lp[r])),
                  name + ", step " + std::to_string(j) + " row " + std::to_string(r) + ": " +
                      std::to_string(dev[r]) + " vs " + std::to_string(lp[r]));
    }
    CHECK_MSG(read == got.logprobs.size() && read > 2,
              name + ": " + std::to_string(read) + " steps read");
  }
#endif
}

}  // namespace npr::test
