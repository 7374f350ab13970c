// The one-kernel decode step (model/qwen3_step_kernel.cuh: a whole Qwen3 decode step as one
// persistent kernel whose phases meet at grid barriers) run by the CPU emulator (cpp/tests/emu)
// on forked rollouts, against the CPU decode step (qwen3_decode_step) on the same bf16 weights.
// No GPU here has run it: this is the check that its phases, work splits, barriers, the K / V it
// writes for each new token and the pages it reads are right before one does.
//
// A prefix is prefilled on the CPU and its K / V copied into bf16 pages; the prefix is forked
// into branches that then decode one token a step, each step on the CPU and in the emulated
// kernel (flat and cascade plans, grids of a few blocks, so each block walks several work units
// of every phase, and of more blocks than some phases have units). The kernel runs through its
// own launcher (StepKernel: plan upload, grid from the occupancy of an emulated device sized for
// each grid, barrier reset, host-mapped flag, cooperative launch), and all it allocates on the
// device is freed with it. The kernel's own K / V rows
// feed its later steps. Each step's logits must be within bf16 reach of the CPU's (the kernel
// keeps q|k|v, the attention output, the SwiGLU activations and the pages in bf16), and the K /
// V rows it wrote within bf16 rounding of the CPU's; the step's buffers and the pages' unused
// slots start poisoned (NaN), and an emulator fault (a shared-memory access outside the block's
// arrays, an async copy or read-only load outside the step's buffers, a barrier some thread
// missed, a deadlock) fails the case with its reason.
//
// Bits: every grid and emulator mode gives the same logits; so do the layer path's own kernels
// (the decoder's default eager step, each kernel launched as its launcher launches it), which is
// what cuda_decode_step_kernel_gives_the_layer_path_bits checks on a GPU; so do the step that
// loads its weights itself and the step with a grid barrier after q|k|v (not per-head readiness
// counts) and its merges as a phase of their own (not folded into the attention where a query's
// last partial state arrives); and a branch decoded
// alone gets the bits it gets among the others (flat plans: batch invariance). Timed launches
// (the decode bench's phase breakdown) give the same bits, and StepKernel::add_phase_ms reads
// every phase from them (a stamp missing or out of order is its error; one past the stamps it
// reads breaks their allocation's guard) and every CTA's waits.
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/decode_attention.h"
#include "kernels/decode_work.h"
#include "kernels/rope.h"
#include "kvcache/kv_cache.h"
#include "kvcache/kv_pages.h"
#include "model/qwen3_decode.h"
#include "tests/harness.h"
#include "tests/test_models.h"
#include "tests/test_page_tables.h"
#include "tests/test_util.h"
#if defined(NPR_HAVE_EMU)
#include "tests/emu/emu_cuda_api.h"
#include "tests/emu/emu_ptx.h"
#include "tests/emu/emu_runtime.h"
#include "tests/emu/emu_step.h"
#endif

namespace npr::test {

#if defined(NPR_HAVE_EMU)
namespace {

constexpr int32_t kBlocks = 48, kBlockTokens = 4;

std::vector<uint16_t> bits_of(const float* v, int64_t n) {
  std::vector<uint16_t> b(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) b[i] = f32_to_bf16(v[i]).bits;
  return b;
}

// The model's matrices as bf16 bits (the CPU model's weights already bf16-exact), laid out as
// the kernel reads them: q|k|v and gate|up stacked, as the parameter table stores them.
struct BitsModel {
  std::vector<uint16_t> embed, lm_head;
  std::vector<std::vector<uint16_t>> wqkv, wo, wgu, wdown;
  std::vector<std::vector<uint16_t>> k_pages, v_pages;  // (layers) of (blocks, B, kv_heads, D)
  std::vector<emu::StepLayer> layers;
  emu::StepModel model{};
};

void build(Qwen3Model& m, BitsModel* b) {
  const Qwen3Config& c = m.config();
  const ModelOffsets& off = m.offsets();
  const float* w = m.weights();
  const int64_t H = c.hidden, D = c.head_dim, qd = c.heads * D, kd = c.kv_heads * D;
  const int64_t I = c.intermediate, page_elems = int64_t{kBlocks} * kBlockTokens * kd;
  b->embed = bits_of(w + off.embed, c.vocab * H);
  b->lm_head = bits_of(w + off.lm_head, c.vocab * H);
  for (int64_t l = 0; l < c.layers; ++l) {
    const LayerOffsets& o = off.layers[l];
    CHECK_MSG(o.wk == o.wq + qd * H && o.wv == o.wk + kd * H && o.w_up == o.w_gate + I * H,
              "the parameter table stacks q|k|v and gate|up");
    b->wqkv.push_back(bits_of(w + o.wq, (qd + 2 * kd) * H));
    b->wo.push_back(bits_of(w + o.wo, H * qd));
    b->wgu.push_back(bits_of(w + o.w_gate, 2 * I * H));
    b->wdown.push_back(bits_of(w + o.w_down, H * I));
    b->k_pages.emplace_back(static_cast<size_t>(page_elems), uint16_t{0xffff});  // NaN
    b->v_pages.emplace_back(static_cast<size_t>(page_elems), uint16_t{0xffff});
  }
  for (int64_t l = 0; l < c.layers; ++l) {
    const LayerOffsets& o = off.layers[l];
    b->layers.push_back(emu::StepLayer{
        b->wqkv[l].data(), b->wo[l].data(), b->wgu[l].data(), b->wdown[l].data(), w + o.in_norm,
        w + o.post_norm, w + o.q_norm, w + o.k_norm, b->k_pages[l].data(), b->v_pages[l].data()});
  }
  b->model = emu::StepModel{static_cast<int>(c.layers),
                            static_cast<int>(c.hidden),
                            static_cast<int>(c.intermediate),
                            static_cast<int>(c.heads),
                            static_cast<int>(c.kv_heads),
                            static_cast<int>(c.head_dim),
                            static_cast<int>(c.vocab),
                            c.rms_eps,
                            b->embed.data(),
                            b->lm_head.data(),
                            w + off.final_norm,
                            b->layers.data()};
}

// Slot `slot` (block B + offset) of every layer's pages: the CPU's fp32 K / V into the bits.
void copy_slot(KvPages& cpu, BitsModel* b, int64_t layers, int64_t slot_floats, int64_t slot) {
  for (int64_t l = 0; l < layers; ++l) {
    const std::vector<uint16_t> k = bits_of(cpu.k(l) + slot * slot_floats, slot_floats);
    const std::vector<uint16_t> v = bits_of(cpu.v(l) + slot * slot_floats, slot_floats);
    std::copy(k.begin(), k.end(), b->k_pages[l].begin() + slot * slot_floats);
    std::copy(v.begin(), v.end(), b->v_pages[l].begin() + slot * slot_floats);
  }
}

// A fork's slot copies (KvPages::apply's, on the bits).
void apply(const std::vector<SlotCopy>& copies, BitsModel* b, int64_t slot_floats) {
  for (auto* pages : {&b->k_pages, &b->v_pages})
    for (std::vector<uint16_t>& p : *pages)
      for (const SlotCopy& c : copies) {
        const int64_t src = (int64_t{c.src_block} * kBlockTokens + c.src_slot) * slot_floats;
        const int64_t dst = (int64_t{c.dst_block} * kBlockTokens + c.dst_slot) * slot_floats;
        std::copy(p.begin() + src, p.begin() + src + c.count * slot_floats, p.begin() + dst);
      }
}

struct Rollout {
  double logits = 0.0, kv = 0.0;  // relative norm errors against the CPU, the largest of any step
  int64_t steps = 0;
  std::vector<std::vector<float>> branch_logits;  // (branches) every step's logits, in order
  double weight_requests = 0.0;  // ld.global.nc bytes of a step / the weights' bytes, the largest
};

// The bytes of weight rows a step reads (a ragged last tile of `per_tile` rows reads its last
// row again in its idle lanes).
int64_t weight_bytes(const Qwen3Config& c) {
  const auto rows = [](int64_t n, int64_t per_tile) {
    return (n + per_tile - 1) / per_tile * per_tile;
  };
  const int64_t H = c.hidden, I = c.intermediate, qd = c.heads * c.head_dim;
  const int64_t nqkv = qd + 2 * c.kv_heads * c.head_dim;
  const int64_t layer = rows(nqkv, 8) * H + rows(H, 8) * qd + 2 * rows(I, 4) * H + rows(H, 8) * I;
  return 2 * (c.layers * layer + rows(c.vocab, 8) * H);
}
// The bytes a step's asynchronous copies must read: each work item's keys and values once for
// each kv head (the GQA group's query heads share them), and on the layer path each item's query
// rows (the one-kernel step computes them in place).
int64_t async_bytes(const Qwen3Config& c, const DecodeWork& w, bool query_rows) {
  int64_t tokens = 0, queries = 0;
  for (int64_t i = 0; i < w.n_items(); ++i) {
    const int32_t* it = w.items.data() + DecodeWork::kItemFields * i;
    tokens += int64_t{it[3] - 1} * kBlockTokens + it[4];
    queries += it[1];
  }
  const int64_t kv = tokens * c.kv_heads * c.head_dim * 2 * 2;
  return c.layers * (kv + (query_rows ? queries * c.heads * c.head_dim * 2 : 0));
}

// An emulated device on which the one-kernel step's launcher picks `grid` blocks: where grid is
// a multiple of 4, SMs with room for more CTAs than the launcher's cap of 4 (shared memory
// unbounded, threads 2048); else SMs that hold one (as if registers allowed no more).
emu::Device device_for(unsigned grid) {
  emu::Device d;
  if (grid % 4 == 0) {
    d.sms = static_cast<int>(grid / 4);
    d.shared_per_sm = 1 << 30;
  } else {
    d.sms = static_cast<int>(grid);
    d.max_blocks_per_sm = 1;
  }
  return d;
}

// lens[b] tokens decoded in branch b after a prefix of 21 tokens (branch b's token j is the
// same whatever the other branches are), each step by the one-kernel step on `grid` blocks or by
// the layer path's launchers (on the same emulated device), plain or as programmatic dependent
// launches. kStepKernel streams its weights through the ring (the emulated device is an sm_90
// one); kStepKernelPlain loads them itself. Both merge the attention's partial states where a
// query's last one arrives, and start each kv head's attention once its q|k|v tiles are counted
// ready; kStepKernelBarriers (streamed) has a grid barrier after q|k|v and a merge phase of its
// own; kStepKernelRing2 is kStepKernel with a ring of the fewest slots (2), so the stream wraps
// around it every other chunk. timed: the
// step kernel's timed launches (its phase clock checked as the host reads it).
enum class Path {
  kStepKernel,
  kStepKernelPlain,
  kStepKernelBarriers,
  kStepKernelRing2,
  kLayers,
  kLayersPdl
};
Rollout rollout(Qwen3Model& model, const std::vector<int64_t>& lens, bool cascade, unsigned grid,
                Path path = Path::kStepKernel, bool timed = false) {
  const Qwen3Config& c = model.config();
  Rng rng(311);
  const int64_t V = c.vocab, D = c.head_dim, kd = c.kv_heads * D, P = 21;
  BitsModel bits;
  build(model, &bits);
  emu::set_device(device_for(grid));
  std::unique_ptr<emu::StepRunner> runner;
  const bool one_kernel = path == Path::kStepKernel || path == Path::kStepKernelPlain ||
                          path == Path::kStepKernelBarriers || path == Path::kStepKernelRing2;
  const bool streamed = one_kernel && path != Path::kStepKernelPlain;
  if (one_kernel) runner = std::make_unique<emu::StepRunner>(bits.model);
  KvCache kv(kBlocks, kBlockTokens);
  KvPages cpages;
  CHECK_OK(KvPages::create(c.layers, kBlocks, kBlockTokens, c.kv_heads, D, &cpages));
  CpuContext cctx{nullptr, detect_simd()};
  const int32_t root = prefix_sequence(kv, P);
  KvAnswer a;
  std::vector<int32_t> ids(P), pos(P);
  for (int64_t t = 0; t < P; ++t) {
    ids[t] = static_cast<int32_t>(rng.below(V));
    pos[t] = static_cast<int32_t>(t);
  }
  std::vector<float> clogits(static_cast<size_t>(V * lens.size()));
  {
    Tables tb = tables_of(kv, {root});
    const int32_t cu_new[2] = {0, static_cast<int32_t>(P)};
    CHECK_OK(qwen3_decode_step(cctx, model, cpages,
                               Qwen3DecodeBatch{1, cu_new, ids.data(), pos.data(), tb.view()},
                               cascade, clogits.data()));
    for (int64_t t = 0; t < P; ++t)
      copy_slot(cpages, &bits, c.layers, kd,
                int64_t{tb.indices[t / kBlockTokens]} * kBlockTokens + t % kBlockTokens);
  }
  std::vector<int32_t> kids;
  std::vector<SlotCopy> copies;
  CHECK_OK(kv.fork(root, static_cast<int32_t>(lens.size()), &kids, &a, &copies));
  cpages.apply(copies);
  apply(copies, &bits, kd);
  Rollout out;
  out.branch_logits.resize(lens.size());
  for (int64_t j = 0;; ++j) {
    const BranchStep bs = branch_step(kv, kids, lens, j, V, P);
    const std::vector<int32_t>&live = bs.live, &step_ids = bs.ids, &step_pos = bs.pos,
          &cu_new = bs.cu_new;
    if (live.empty()) break;
    const int64_t rows = static_cast<int64_t>(live.size());
    Tables tb = tables_of(kv, live);
    const PageTable table = tb.view();
    CHECK_OK(qwen3_decode_step(
        cctx, model, cpages,
        Qwen3DecodeBatch{rows, cu_new.data(), step_ids.data(), step_pos.data(), table}, cascade,
        clogits.data()));
    // The kernel's step: the new tokens' slots, their rotations and the attention plan.
    std::vector<int32_t> slots;
    for (int64_t s = 0; s < rows; ++s)
      slots.push_back(tb.indices[tb.indptr[s + 1] - 1] * kBlockTokens + tb.last[s] - 1);
    RopeTable rope;
    rope_table_build(&rope, step_pos.data(), rows, D, c.rope_theta);
    const CascadePlan cplan = cascade_plan(table, 1);
    const DecodeWork w = decode_work(table, cascade ? &cplan : nullptr, kBlockTokens,
                                     c.heads / c.kv_heads, DecodeWorkOptions{});
    const emu::StepPlan plan{w.items,    w.q_order, w.merge_ptr, w.merge_rows, tb.indices,
                             w.partials, tb.indptr, tb.last,     w.queries,    w.max_rows};
    const emu::StepInputs in{static_cast<int>(rows), kBlockTokens, kBlocks,
                             step_ids.data(),        slots.data(), rope.cos.data(),
                             rope.sin.data()};
    std::vector<float> logits = poisoned(rows * V);
    emu::ptx::reset_traffic();
    std::map<std::string, double> phase_ms;
    const std::string fault =
        one_kernel
            ? runner->run(
                  plan, in,
                  {true, streamed, path != Path::kStepKernelBarriers,
                   path != Path::kStepKernelBarriers, path == Path::kStepKernelRing2 ? 2 : 12},
                  logits.data(), timed ? &phase_ms : nullptr)
            : emu::decode_layer_path(bits.model, plan, in, path == Path::kLayersPdl, logits.data());
    const std::string what =
        std::string(path == Path::kStepKernel           ? "step kernel, "
                    : path == Path::kStepKernelPlain    ? "step kernel (plain), "
                    : path == Path::kStepKernelBarriers ? "step kernel (barriers), "
                    : path == Path::kStepKernelRing2    ? "step kernel (ring of 2), "
                    : path == Path::kLayers             ? "layers, "
                                                        : "layers (pdl), ") +
        std::to_string(lens.size()) + " branches" + (cascade ? ", cascade" : ", flat") + ", grid " +
        std::to_string(grid) + ", step " + std::to_string(j) + " (" + std::to_string(rows) +
        " rows)";
    CHECK_MSG(fault.empty(), what + ": " + fault);
    if (!fault.empty()) return out;
    if (one_kernel) {
      CHECK_MSG(runner->grid() == grid, what + ": the launcher chose a grid of " +
                                            std::to_string(runner->grid()) + " blocks");
      // The ring: none without the stream, 2 slots where asked, more where they fit.
      const int64_t slots = runner->ring_slots();
      CHECK_MSG(!streamed                        ? slots == 0
                : path == Path::kStepKernelRing2 ? slots == 2
                                                 : slots > 2,
                what + ": a ring of " + std::to_string(slots) + " slots");
    }
    // Timed: add_phase_ms found every stamp it reads written and in order (a stamp past them
    // would have broken the stamps' allocation guard), and names every phase.
    for (const char* name : {"barrier", "embedding", "qkv", "qk_norm_rope_attend", "merge",
                             "o_proj", "gate_up_swiglu", "down", "head"})
      if (timed)
        CHECK_MSG(phase_ms.count(name) && phase_ms[name] >= 0.0,
                  what + ": no time for the phase " + name);
    // And the CTAs' waits (the emulated clock moves 100 ns a read, so every timed wait counts):
    // at barriers always, for ring chunks exactly when the weights streamed.
    if (timed) {
      CHECK_MSG(phase_ms["cta_wait_grid"] > 0.0 && phase_ms["cta_wait_grid_max"] > 0.0,
                what + ": no CTA waited at a barrier");
      for (const char* ring :
           {"cta_wait_ring", "cta_wait_ring_max", "cta_wait_ring_qkv", "cta_wait_ring_o_proj",
            "cta_wait_ring_gate_up_swiglu", "cta_wait_ring_down", "cta_wait_ring_head"})
        CHECK_MSG((phase_ms[ring] > 0.0) == streamed,
                  what + ": " + ring + " " + std::to_string(phase_ms[ring]) + " ms");
      // Every phase a barrier ends has waits at it; a folded merge phase has no barrier.
      const bool folded = path != Path::kStepKernelBarriers;
      for (const char* phase : {"embedding", "qkv", "qk_norm_rope_attend", "merge", "o_proj",
                                "gate_up_swiglu", "down", "head"}) {
        const std::string name = std::string("cta_wait_grid_") + phase;
        const bool barrier = !(folded && name == "cta_wait_grid_merge");
        CHECK_MSG((phase_ms[name] > 0.0) == barrier,
                  what + ": " + name + " " + std::to_string(phase_ms[name]) + " ms");
      }
      CHECK_MSG(phase_ms["cta_work"] > 0.0 && phase_ms.size() == 27,
                what + ": " + std::to_string(phase_ms.size()) + " timed figures");
    }
    // Loads of the read-only path: the weights (idle slices load a row's last chunk again:
    // requests, not memory traffic, so reported, not checked); copies: exactly the plan's.
    // Streamed: every weight byte of every tile exactly once, by bulk copies.
    const emu::ptx::Traffic tr = emu::ptx::traffic();
    if (streamed) {
      CHECK_MSG(runner->streamed(), what + ": the launcher did not stream the weights");
      out.weight_requests = static_cast<double>(tr.bulk_load_bytes) / weight_bytes(c);
      CHECK_MSG(tr.bulk_load_bytes == static_cast<uint64_t>(weight_bytes(c)),
                what + ": streamed " + std::to_string(tr.bulk_load_bytes) +
                    " bytes of weights, not the " + std::to_string(weight_bytes(c)) +
                    " of the layers' tiles");
    } else {
      out.weight_requests = std::max(out.weight_requests, static_cast<double>(tr.nc_bytes) /
                                                              static_cast<double>(weight_bytes(c)));
      CHECK_MSG(tr.nc_bytes >= static_cast<uint64_t>(weight_bytes(c)),
                what + ": loaded " + std::to_string(tr.nc_bytes) + " bytes of weights, under the " +
                    std::to_string(weight_bytes(c)) + " the layers have");
    }
    const int64_t want_async = async_bytes(c, w, !one_kernel);
    CHECK_MSG(tr.cp_async_bytes == static_cast<uint64_t>(want_async),
              what + ": copied " + std::to_string(tr.cp_async_bytes) + " bytes, not the plan's " +
                  std::to_string(want_async));
    const std::vector<float> want(clogits.begin(), clogits.begin() + rows * V);
    for (int64_t i = 0, s = 0; i < static_cast<int64_t>(lens.size()); ++i)
      if (j < lens[i]) {
        std::vector<float>& dst = out.branch_logits[i];
        dst.insert(dst.end(), logits.begin() + s * V, logits.begin() + (s + 1) * V);
        ++s;
      }
    const double e = rel_norm_error(logits, want);
    CHECK_MSG(std::isfinite(e), what + ": logits not finite");
    out.logits = std::max(out.logits, e);
    // The K / V rows the kernel wrote for the new tokens, against the CPU's.
    std::vector<float> got_kv, want_kv;
    for (int64_t l = 0; l < c.layers; ++l)
      for (int32_t slot : slots)
        for (int64_t i = 0; i < kd; ++i) {
          const int64_t at = int64_t{slot} * kd + i;
          got_kv.push_back(bf16_to_f32(bf16{bits.k_pages[l][at]}));
          got_kv.push_back(bf16_to_f32(bf16{bits.v_pages[l][at]}));
          want_kv.push_back(cpages.k(l)[at]);
          want_kv.push_back(cpages.v(l)[at]);
        }
    const double ekv = rel_norm_error(got_kv, want_kv);
    CHECK_MSG(std::isfinite(ekv), what + ": K / V rows not finite");
    out.kv = std::max(out.kv, ekv);
    ++out.steps;
  }
  runner.reset();  // all it allocated on the device, freed with it
  CHECK_MSG(emu::device_bytes_in_use() == 0 && emu::device_allocations() == 0,
            "the one-kernel step left " + std::to_string(emu::device_bytes_in_use()) +
                " bytes of device memory allocated");
  return out;
}

struct Mode {
  emu::Options opt;
  const char* name;
};
const Mode kModes[] = {{emu::Options{false, false, 0x90}, "async at waits"},
                       {emu::Options{true, true, 0x410}, "async at issue, threads last-first"}};
// Copies landing at issue while the first warps run ahead: warp 0 (whose thread 0 refills the
// weight ring) reaches a refill before the other warps have read the slot it refills.
const Mode kEagerFirstFirst = {emu::Options{true, false, 0x90}, "async at issue"};

}  // namespace
#endif

TEST(emu_decode_step_kernel_matches_the_cpu_decode) {
#if !defined(NPR_HAVE_EMU)
  SKIP("the kernel emulator is not built (no CUDA toolkit headers, or NPR_EMU=off)");
#else
  struct Case {
    Qwen3Config cfg;
    std::vector<int64_t> lens;
    std::vector<unsigned> grids;
    std::vector<bool> cascades;
  };
  Qwen3Config tiny = tiny_config(false);
  tiny.vocab = 67;
  tiny.hidden = 64;
  tiny.intermediate = 96;
  tiny.head_dim = 128;  // the one head dim the kernel is compiled for
  // Widths that reach the paths real Qwen3 sizes take: the staged RMSNorm's k > 256 form, the
  // wide-slice tiles (a head of >= 512 column tiles) and a second round of tile_dots_deep
  // (down's k > 1536). One layer, tied: the emulator's seconds go by weight bytes.
  Qwen3Config wide = tiny_config(true);
  wide.vocab = 4100;
  wide.hidden = 264;
  wide.intermediate = 1544;
  wide.layers = 1;
  wide.head_dim = 128;
  // 3 branches (3, 2, 1 rows as they end) on 5 and 17 blocks; 8 branches (every row count down
  // to 1, cascade items of 8 members) on 40 blocks, more than the attention and merge phases'
  // units, and on 9.
  const std::vector<Case> cases = {{tiny, {4, 2, 3}, {5, 17}, {false, true}},
                                   {tiny, {2, 5, 1, 3, 4, 2, 6, 3}, {40, 9}, {false, true}},
                                   {wide, {2, 1}, {24}, {true}}};
  for (const Case& cs : cases) {
    Rng rng(97);
    std::unique_ptr<Qwen3Model> model = random_model(rng, cs.cfg, 0.4f);
    for (const ParamInfo& p : model->params())  // bf16-exact weights: both sides read the same
      if (p.shape.size() > 1)
        for (int64_t i = 0; i < p.numel; ++i)
          model->weights()[p.offset + i] = bf16_to_f32(f32_to_bf16(model->weights()[p.offset + i]));
    for (bool cascade : cs.cascades) {
      std::vector<std::vector<float>> first;  // the first run's logits: every run gives its bits
      for (unsigned grid : cs.grids)
        for (const Mode& m : kModes) {
          emu::set_options(m.opt);
          const Rollout w = rollout(*model, cs.lens, cascade, grid);
          const std::string what = std::to_string(cs.lens.size()) + " branches" +
                                   (cascade ? " cascade" : " flat") + ", grid " +
                                   std::to_string(grid) + ", " + m.name;
          std::printf(
              "    hidden %lld, %s: %lld steps, logits rel err %.3g, new K/V rel err %.3g, weight "
              "load requests %.2fx the weights\n",
              static_cast<long long>(cs.cfg.hidden), what.c_str(), static_cast<long long>(w.steps),
              w.logits, w.kv, w.weight_requests);
          CHECK_MSG(w.steps > 0, what + ": no step ran");
          CHECK_MSG(w.logits < 2e-2,
                    what + ": logits vs the CPU decode step " + std::to_string(w.logits));
          CHECK_MSG(w.kv < 1e-2, what + ": new K / V rows vs the CPU's " + std::to_string(w.kv));
          // Only the block that runs a work unit changes with the grid, never a sum's order.
          if (first.empty()) first = w.branch_logits;
          CHECK_MSG(w.branch_logits == first, what + ": other bits than the first run's");
        }
      {
        emu::set_options(kEagerFirstFirst.opt);
        const Rollout eager = rollout(*model, cs.lens, cascade, cs.grids[0]);
        CHECK_MSG(eager.branch_logits == first,
                  std::to_string(cs.lens.size()) + " branches" + (cascade ? " cascade" : " flat") +
                      ", " + kEagerFirstFirst.name + ": other bits than the first run's");
      }
      // The layer path's kernels (the decoder's default eager step), launched as the decoder
      // launches them, give the same bits: the one-kernel step runs their device functions on
      // the same work units in the same sum orders.
      emu::set_options(kModes[1].opt);
      const Rollout layers = rollout(*model, cs.lens, cascade, cs.grids[0], Path::kLayers);
      std::printf(
          "    hidden %lld, layer path, %zu branches%s: logits rel err %.3g, new K/V rel "
          "err %.3g, weight load requests %.2fx the weights\n",
          static_cast<long long>(cs.cfg.hidden), cs.lens.size(), cascade ? " cascade" : " flat",
          layers.logits, layers.kv, layers.weight_requests);
      CHECK_MSG(layers.branch_logits == first,
                std::to_string(cs.lens.size()) +
                    (cascade ? " branches cascade" : " branches flat") +
                    ": the layer path's kernels give other bits than the one-kernel step");
      // So do the other forms, each the decode bench's A/B of one of its switches:
      // - the one-kernel step that loads its weights itself (the plain kernel: devices before
      //   sm_90);
      // - the one with a grid barrier after q|k|v and its merges as a phase of their own: with
      //   neither, each attention unit starts once its head's tiles are counted and each merge
      //   runs in whichever CTA's arrival is the query's last, which change with the grid and
      //   the thread order above, never the bits;
      // - the one with the shallowest ring (its depth);
      // - the layer path's candidate kernels (programmatic dependent launches, prefetching their
      //   weights).
      const struct {
        Path path;
        const char* what;
      } forms[] = {{Path::kStepKernelPlain, "the plain one-kernel step"},
                   {Path::kStepKernelBarriers, "the one-kernel step with all its barriers"},
                   {Path::kStepKernelRing2, "the one-kernel step with a ring of 2 slots"},
                   {Path::kLayersPdl, "the layer path's candidate kernels"}};
      for (const auto& f : forms) {
        const Rollout r = rollout(*model, cs.lens, cascade, cs.grids[0], f.path);
        CHECK_MSG(r.branch_logits == first,
                  std::to_string(cs.lens.size()) +
                      (cascade ? " branches cascade: " : " branches flat: ") + f.what +
                      " gives other bits than the streamed one-kernel step");
      }
      // The timed launches (the phase clock of the decode bench's breakdown) change no bit, in
      // each form (their waits checked in rollout: ring waits only where the weights stream, a
      // merge barrier's only where the merges are a phase of their own).
      if (!cascade) {
        emu::set_options(kModes[0].opt);
        for (const Path path :
             {Path::kStepKernel, Path::kStepKernelPlain, Path::kStepKernelBarriers}) {
          const Rollout timed = rollout(*model, cs.lens, false, cs.grids[0], path, true);
          CHECK_MSG(timed.branch_logits == first, "timed launches give other bits");
        }
      }
      // Batch invariance (flat plans: a sequence's key split depends on its length alone): a
      // branch decoded alone gets the bits it got among the others.
      if (cascade) continue;
      emu::set_options(kModes[0].opt);
      const Rollout alone = rollout(*model, {cs.lens[0]}, false, cs.grids[0]);
      CHECK_MSG(alone.branch_logits[0] == first[0],
                std::to_string(cs.lens.size()) +
                    " branches: branch 0 decoded alone gets other "
                    "bits than among the others");
    }
  }
  emu::set_options(emu::Options{});
  emu::set_device(emu::Device{});
#endif
}

}  // namespace npr::test
