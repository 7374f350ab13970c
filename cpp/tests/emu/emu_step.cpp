// emu_step.h in the emulator build: the plain arrays as the kernel's Params (params_of, as the
// launcher resolves them), the step's activations, partial states and barrier words allocated
// here, and step_kernel<M, 128> run with every block resident.
#include "tests/emu/emu_step.h"

#include <algorithm>
#include <vector>

#include "model/qwen3_step_kernel.cuh"

namespace emu {

namespace {

namespace os = npr::onestep;

template <int M>
std::string run_rows(const os::Params& p, unsigned grid, int64_t smem) {
  return launch_cooperative(grid, os::kThreads, static_cast<int>(smem),
                            [&] { os::step_kernel<M, os::kHeadDim>(p); });
}

std::string run(int rows, const os::Params& p, unsigned grid, int64_t smem) {
  switch (rows) {
    case 1: return run_rows<1>(p, grid, smem);
    case 2: return run_rows<2>(p, grid, smem);
    case 3: return run_rows<3>(p, grid, smem);
    case 4: return run_rows<4>(p, grid, smem);
    case 5: return run_rows<5>(p, grid, smem);
    case 6: return run_rows<6>(p, grid, smem);
    case 7: return run_rows<7>(p, grid, smem);
    case 8: return run_rows<8>(p, grid, smem);
    default: return "the one-kernel step takes 1..8 rows, not " + std::to_string(rows);
  }
}

}  // namespace

void register_step(const StepModel& m, const StepPlan& plan, const StepInputs& in,
                   const float* logits, bool one_launch) {
  const int64_t rows = in.rows, D = m.head_dim, heads = m.heads;
  const int64_t nqkv = (heads + 2LL * m.kv_heads) * D;
  const auto reg = [](const void* p, int64_t elems, size_t size, bool written = false) {
    register_global(p, static_cast<size_t>(elems) * size, written);
  };
  reg(m.embed, int64_t{m.vocab} * m.hidden, 2);
  if (m.lm_head != m.embed) reg(m.lm_head, int64_t{m.vocab} * m.hidden, 2);
  reg(m.final_norm, m.hidden, 4);
  const int64_t page_elems = int64_t{in.num_blocks} * in.block_tokens * m.kv_heads * D;
  for (const StepLayer* s = m.layer; s != m.layer + m.layers; ++s) {
    reg(s->wqkv, nqkv * m.hidden, 2);
    reg(s->wo, int64_t{m.hidden} * heads * D, 2);
    reg(s->wgu, 2LL * m.inter * m.hidden, 2);
    reg(s->wdown, int64_t{m.hidden} * m.inter, 2);
    for (const float* n : {s->in_norm, s->post_norm}) reg(n, m.hidden, 4);
    for (const float* n : {s->q_norm, s->k_norm}) reg(n, D, 4);
    reg(s->k_pages, page_elems, 2, one_launch);
    reg(s->v_pages, page_elems, 2, one_launch);
  }
  reg(in.ids, rows, 4);
  reg(in.slots, rows, 4);
  reg(in.cos, rows * (D / 2), 4);
  reg(in.sin, rows * (D / 2), 4);
  for (const std::vector<int32_t>* v :
       {&plan.items, &plan.q_order, &plan.merge_ptr, &plan.merge_rows, &plan.indices})
    register_global(v->data(), v->size() * 4);
  reg(logits, rows * m.vocab, 4, one_launch);
}

std::string decode_step_kernel(const StepModel& m, const StepPlan& plan, const StepInputs& in,
                               unsigned grid, bool prefetch, float* logits,
                               std::vector<uint64_t>* stamps) {
  if (m.head_dim != os::kHeadDim) return "the one-kernel step is compiled for head dim 128 only";
  npr::Qwen3Config c;
  c.layers = m.layers;
  c.hidden = m.hidden;
  c.intermediate = m.inter;
  c.heads = m.heads;
  c.kv_heads = m.kv_heads;
  c.head_dim = m.head_dim;
  c.vocab = m.vocab;
  c.rms_eps = m.eps;
  std::vector<npr::StepKernelLayer> layers(static_cast<size_t>(m.layers));
  for (int l = 0; l < m.layers; ++l) {
    const StepLayer& s = m.layer[l];
    layers[l] = npr::StepKernelLayer{s.wqkv,      s.wo,     s.wgu,    s.wdown,   s.in_norm,
                                     s.post_norm, s.q_norm, s.k_norm, s.k_pages, s.v_pages};
  }
  const int64_t rows = in.rows, D = m.head_dim, heads = m.heads;
  const int64_t nqkv = (heads + 2LL * m.kv_heads) * D;
  // The step's buffers, poisoned (fp32 and bf16 NaN) where the kernel writes before it reads.
  std::vector<float> x, part_m, part_l, part_acc;
  std::vector<uint16_t> qkv, attn, act;
  std::vector<int32_t> header{static_cast<int32_t>(plan.items.size() / 6)};
  std::vector<uint32_t> state;
  std::vector<int32_t> broken_host;
  add(x, rows * m.hidden, std::nanf(""), true);
  add(qkv, rows * nqkv, uint16_t{0xffff}, true);
  add(attn, rows * heads * D, uint16_t{0xffff}, true);
  add(act, rows * m.inter, uint16_t{0xffff}, true);
  add(part_m, plan.partials * heads, std::nanf(""), true);
  add(part_l, plan.partials * heads, std::nanf(""), true);
  add(part_acc, plan.partials * heads * D, std::nanf(""), true);
  add(state, 2, 0u, true);
  add(broken_host, 1, 0, true);
  register_step(m, plan, in, logits, true);
  register_global(header.data(), 4);
  register_global(layers.data(), layers.size() * sizeof(layers[0]));

  npr::StepKernelArgs a;
  a.embed = m.embed;
  a.lm_head = m.lm_head;
  a.final_norm = m.final_norm;
  a.ids = in.ids;
  a.slots = in.slots;
  a.cos = in.cos;
  a.sin = in.sin;
  a.block_tokens = in.block_tokens;
  a.x = x.data();
  a.qkv = qkv.data();
  a.attn = attn.data();
  a.act = act.data();
  a.logits = logits;
  a.prefetch = prefetch;
  os::Params p = os::params_of(c, a);
  p.layers = layers.data();
  p.header = header.data();
  p.items = plan.items.data();
  p.q_order = plan.q_order.data();
  p.indices = plan.indices.data();
  p.merge_ptr = plan.merge_ptr.data();
  p.merge_rows = plan.merge_rows.data();
  p.part_m = part_m.data();
  p.part_l = part_l.data();
  p.part_acc = part_acc.data();
  p.bar = npr::grid::Barrier{state.data(), reinterpret_cast<int32_t*>(state.data()) + 1,
                             broken_host.data(), 5000000000ull};
  p.stamps = nullptr;
  if (stamps) {
    stamps->assign(static_cast<size_t>(os::kStampsFixed + os::kPhasesPerLayer * m.layers + 1), 0);
    register_global(stamps->data(), stamps->size() * 8, true);
    p.stamps = stamps->data();
  }
  const std::string fault = run(in.rows, p, grid, os::dyn_smem_bytes(c, rows));
  clear_globals();
  if (!fault.empty()) return fault;
  if (broken_host[0] != 0) return "a grid barrier of the step timed out";
  return {};
}

}  // namespace emu
