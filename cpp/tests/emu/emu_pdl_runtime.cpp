// emu_runtime.h's programmatic dependent launches inside the runtime: the view set_pdl_view hands
// the next launch, what the last launch's blocks did of griddepcontrol (PdlTrace), the two
// instructions themselves, and the block's side of the view (emu_runtime_state.h): in place as
// the block starts, live once its threads wait at pdl_wait and nothing else can move, or when it
// ends.
#include <string>

#include "tests/emu/emu_runtime.h"
#include "tests/emu/emu_runtime_state.h"

namespace emu {

namespace {

PdlView* g_next_view = nullptr;  // set_pdl_view's, for the next launch
PdlTrace g_last;                 // last_launch_pdl's

}  // namespace

namespace state {

PdlView* take_pdl_view() {
  PdlView* v = g_next_view;
  g_next_view = nullptr;
  g_last = PdlTrace{};
  return v;
}

void set_last_pdl(const PdlTrace& trace) {
  g_last = trace;
}

void pdl_block_start(Launch& l, Block& b) {
  if (!l.pdl_view) return;
  l.pdl_view->stale();  // what the block reads before its wait: the older memory
  b.pdl_stale = true;
}

bool waits_for_pdl(const Launch& l, const Block& b) {
  if (!b.pdl_stale) return false;
  for (unsigned t = 0; t < block_threads(l); ++t) {
    const Fiber& f = l.fibers[b.first_fiber + t];
    if (!f.done && f.wait_on == &b.pdl_generation) return true;
  }
  return false;
}

std::string pdl_go_live(Launch& l, Block& b) {
  b.pdl_stale = false;
  ++b.pdl_generation;
  return l.pdl_view->live();
}

std::string pdl_block_end(Launch& l, Block& b) {
  const std::string fault = b.pdl_stale ? pdl_go_live(l, b) : std::string();
  PdlTrace& t = l.pdl_trace;
  t.early = t.early && (b.pdl_triggered || !b.pdl_waited);
  t.triggered = t.triggered || b.pdl_triggered_any;
  t.waited = t.waited || b.pdl_waited;
  return fault;
}

}  // namespace state

void set_pdl_view(PdlView* view) {
  g_next_view = view;
}

const PdlTrace& last_launch_pdl() {
  return g_last;
}

void pdl_launch_dependents() {
  state::Block& b = state::my_block();
  if (!b.pdl_waited) b.pdl_triggered = true;
  b.pdl_triggered_any = true;
}

void pdl_wait() {
  state::Block& b = state::my_block();
  state::me().polled = false;
  b.pdl_waited = true;
  if (b.pdl_stale) state::wait_for(&b.pdl_generation);
}

}  // namespace emu
