// emu_step.h in the emulator build: the plain arrays as StepKernel's arguments, the step's
// activations allocated here, and the launcher (qwen3_cuda_step_kernel.cu, compiled into this
// build) left to do the rest on the emulated device.
#include "tests/emu/emu_step.h"

#include <cmath>
#include <vector>

#include "core/cuda_context.h"
#include "kernels/decode_attention_cuda.h"
#include "model/qwen3_cuda_step_kernel.h"
#include "tests/emu/emu_step_plan.h"

namespace emu {

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

struct StepRunner::Impl {
  StepModel m;
  npr::Qwen3Config c;
  std::unique_ptr<npr::CudaContext> ctx;  // first in, last out: the buffers below are its
  npr::DeviceDecodePlan plan;
  npr::StepKernel kernel;
  std::string error;  // a failed set-up, returned by every run
};

StepRunner::StepRunner(const StepModel& m) : impl_(new Impl) {
  Impl& s = *impl_;
  s.m = m;
  s.c.layers = m.layers;
  s.c.hidden = m.hidden;
  s.c.intermediate = m.inter;
  s.c.heads = m.heads;
  s.c.kv_heads = m.kv_heads;
  s.c.head_dim = m.head_dim;
  s.c.vocab = m.vocab;
  s.c.rms_eps = m.eps;
  std::vector<npr::StepKernelLayer> layers;
  for (const StepLayer* l = m.layer; l != m.layer + m.layers; ++l)
    layers.push_back(npr::StepKernelLayer{l->wqkv, l->wo, l->wgu, l->wdown, l->in_norm,
                                          l->post_norm, l->q_norm, l->k_norm, l->k_pages,
                                          l->v_pages});
  npr::Status st = npr::CudaContext::create(&s.ctx);
  if (st.is_ok()) st = s.kernel.set_layers(*s.ctx, layers);
  if (!st.is_ok()) s.error = st.to_string();
}

StepRunner::~StepRunner() = default;

unsigned StepRunner::grid() const {
  return static_cast<unsigned>(impl_->kernel.grid());
}

bool StepRunner::streamed() const {
  return impl_->kernel.streamed();
}

int64_t StepRunner::ring_slots() const {
  return impl_->kernel.ring_slots();
}

std::string StepRunner::run(const StepPlan& plan, const StepInputs& in, const Switches& o,
                            float* logits, std::map<std::string, double>* phase_ms) {
  Impl& s = *impl_;
  if (!s.error.empty()) return s.error;
  const StepModel& m = s.m;
  const int64_t rows = in.rows, D = m.head_dim, heads = m.heads;
  const int64_t nqkv = (heads + 2LL * m.kv_heads) * D;
  npr::Status st = s.plan.upload(*s.ctx, work_of(plan), table_of(plan), heads, D);
  if (!st.is_ok()) return st.to_string();
  // The step's activations, poisoned (fp32 and bf16 NaN) where the kernel writes before it
  // reads; the caller's (the decoder's) to give, so plain buffers here.
  std::vector<float> x;
  std::vector<uint16_t> qkv, attn, act;
  add(x, rows * m.hidden, std::nanf(""), true);
  add(qkv, rows * nqkv, uint16_t{0xffff}, true);
  add(attn, rows * heads * D, uint16_t{0xffff}, true);
  add(act, rows * m.inter, uint16_t{0xffff}, true);
  register_step(m, plan, in, logits, true);
  // The plan's partial states (its device buffer's float part) are the kernel's scratch.
  const auto partials = static_cast<size_t>(plan.partials * heads);
  register_global(s.plan.part_m, 4 * partials, true);
  register_global(s.plan.part_l, 4 * partials, true);
  register_global(s.plan.part_acc, 4 * partials * D, true);

  npr::StepKernelArgs a;
  a.embed = m.embed;
  a.lm_head = m.lm_head;
  a.final_norm = m.final_norm;
  a.ids = in.ids;
  a.slots = in.slots;
  a.cos = in.cos;
  a.sin = in.sin;
  a.plan = &s.plan;
  a.block_tokens = in.block_tokens;
  a.x = x.data();
  a.qkv = qkv.data();
  a.attn = attn.data();
  a.act = act.data();
  a.logits = logits;
  a.prefetch = o.prefetch;
  a.stream = o.stream;
  a.fold_merge = o.fold_merge;
  a.head_flags = o.head_flags;
  a.ring_slots = o.ring_slots;
  a.timing = phase_ms != nullptr;
  st = s.kernel.launch(*s.ctx, s.c, rows, a);
  if (st.is_ok() && phase_ms) st = s.kernel.add_phase_ms(*s.ctx, s.c, phase_ms);
  if (st.is_ok()) st = s.kernel.check();
  clear_globals();
  return st.is_ok() ? std::string() : st.to_string();
}

}  // namespace emu
