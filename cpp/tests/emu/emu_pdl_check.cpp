// emu_pdl_check.h's check: snapshots of global memory before a kernel a programmatic launch
// follows, the bytes that kernel changed (with their old values) after it, and the PdlView that
// puts the old values in place for each block of the programmatic kernel.
#include "tests/emu/emu_pdl_check.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "tests/emu/emu_runtime.h"

namespace emu::pdl_check {

namespace {

// Changed bytes closer than this are one run (the bytes between hold their old values either way).
constexpr size_t kJoinGap = 16;
constexpr size_t kChunk = 64;  // compared whole first

struct Run {
  unsigned char* p;
  size_t bytes;
  size_t at;  // its bytes' offset in the owner's pool
};

// One kernel's changes: where, and the bytes there before it ran.
struct Changes {
  std::vector<Run> runs;
  std::vector<unsigned char> before;
};

bool g_enabled = [] {
  const char* e = std::getenv("NPR_EMU_PDL_CHECK");
  return !(e && std::strcmp(e, "0") == 0);
}();

// Global memory before the running kernel (when a programmatic launch follows it).
struct Snapshot {
  std::vector<std::pair<unsigned char*, size_t>> ranges;
  std::vector<unsigned char> bytes;
  bool taken = false;
} g_snapshot;

// The changes of the kernels the next programmatic launch may overlap, oldest first.
std::vector<Changes> g_chain;
// Whether the op just run was a kernel that let its dependents launch early.
bool g_let_early = false;

void take_snapshot() {
  g_snapshot.ranges = global_ranges();
  size_t total = 0;
  for (const auto& r : g_snapshot.ranges) total += r.second;
  g_snapshot.bytes.resize(total);
  size_t at = 0;
  for (const auto& [p, n] : g_snapshot.ranges) {
    std::memcpy(g_snapshot.bytes.data() + at, p, n);
    at += n;
  }
  g_snapshot.taken = true;
}

// Appends [p, p + n) (old bytes at `old`) to c, joined to the last run when close enough.
void add_run(Changes& c, unsigned char* p, const unsigned char* old, size_t n) {
  if (!c.runs.empty()) {
    Run& last = c.runs.back();
    const unsigned char* end = last.p + last.bytes;
    if (p >= end && static_cast<size_t>(p - end) <= kJoinGap) {
      const size_t gap = static_cast<size_t>(p - end);
      // The gap's bytes did not change: their old value is what is there now.
      c.before.insert(c.before.end(), end, end + gap);
      c.before.insert(c.before.end(), old, old + n);
      last.bytes += gap + n;
      return;
    }
  }
  c.runs.push_back(Run{p, n, c.before.size()});
  c.before.insert(c.before.end(), old, old + n);
}

// What changed since the snapshot, byte for byte.
Changes changes_since_snapshot() {
  Changes c;
  size_t at = 0;
  for (const auto& [p, n] : g_snapshot.ranges) {
    const unsigned char* old = g_snapshot.bytes.data() + at;
    at += n;
    for (size_t i = 0; i < n; i += kChunk) {
      const size_t m = n - i < kChunk ? n - i : kChunk;
      if (std::memcmp(p + i, old + i, m) == 0) continue;
      size_t j = i;
      while (j < i + m) {
        if (p[j] == old[j]) {
          ++j;
          continue;
        }
        size_t e = j + 1;
        while (e < i + m && p[e] != old[e]) ++e;
        add_run(c, p + j, old + j, e - j);
        j = e;
      }
    }
  }
  return c;
}

// "byte i of a buffer of n bytes" (the registered buffer holding p).
std::string where(const unsigned char* p) {
  for (const auto& [q, n] : global_ranges())
    if (p >= q && p < q + n)
      return "byte " + std::to_string(p - q) + " of a buffer of " + std::to_string(n) + " bytes";
  return "global memory";
}

// The view a programmatic kernel's blocks get before their wait: g_chain's changes undone,
// newest first, so a byte several of them changed holds its value from before the oldest.
class ChainView final : public PdlView {
 public:
  void stale() override {
    saved_.clear();
    live_.clear();
    for (auto c = g_chain.rbegin(); c != g_chain.rend(); ++c)
      for (const Run& r : c->runs) {
        saved_.push_back(Run{r.p, r.bytes, live_.size()});
        live_.insert(live_.end(), r.p, r.p + r.bytes);
        std::memcpy(r.p, c->before.data() + r.at, r.bytes);
      }
    installed_.clear();
    for (const Run& r : saved_) installed_.insert(installed_.end(), r.p, r.p + r.bytes);
  }

  std::string live() override {
    std::string fault;
    for (const Run& r : saved_) {
      if (!fault.empty()) break;
      const unsigned char* was = installed_.data() + r.at;
      if (std::memcmp(r.p, was, r.bytes) == 0) continue;
      size_t i = 0;
      while (r.p[i] == was[i]) ++i;
      fault = "wrote, before its griddepcontrol.wait, " + where(r.p + i) +
              ", which a kernel it may overlap writes too (a race on a GPU)";
    }
    for (auto r = saved_.rbegin(); r != saved_.rend(); ++r)
      std::memcpy(r->p, live_.data() + r->at, r->bytes);
    return fault;
  }

 private:
  std::vector<Run> saved_;           // the runs put in place, in that order (at: into both pools)
  std::vector<unsigned char> live_;  // their bytes before (the memory as it is)
  std::vector<unsigned char> installed_;  // their bytes once every run was in place
};

ChainView g_view;
int64_t g_checked = 0;

}  // namespace

void before(OpKind op, OpKind next) {
  g_snapshot.taken = false;
  if (!g_enabled || op == OpKind::kOther) {
    g_chain.clear();
    return;
  }
  if (op == OpKind::kProgrammatic && !g_chain.empty()) {
    set_pdl_view(&g_view);
    ++g_checked;
  }
  if (next == OpKind::kProgrammatic) take_snapshot();
}

std::string after(OpKind op) {
  set_pdl_view(nullptr);  // not left for a later launch, whether this one ran or not
  const bool let_early = g_let_early;
  g_let_early = op != OpKind::kOther && last_launch_pdl().triggered;
  if (!g_enabled || op == OpKind::kOther) return {};
  std::string fault;
  if (op == OpKind::kProgrammatic && let_early && !last_launch_pdl().waited)
    fault =
        "a programmatic launch none of whose threads waited (griddepcontrol.wait) after a kernel "
        "that let it launch early (griddepcontrol.launch_dependents): it may run, and end, before "
        "that kernel";
  // Nothing programmatic follows, or this kernel never let its dependents launch (the next one
  // then starts once it has ended): no later kernel reaches back past it.
  if (!g_snapshot.taken || !last_launch_pdl().triggered) {
    g_chain.clear();
    g_snapshot.taken = false;
    return fault;
  }
  // A later kernel reaches back past this one only when this one was programmatic and let its
  // dependents launch before it waited for the kernels before it.
  if (op != OpKind::kProgrammatic || !last_launch_pdl().early) g_chain.clear();
  g_chain.push_back(changes_since_snapshot());
  g_snapshot.taken = false;
  return fault;
}

void reset() {
  g_chain.clear();
  g_let_early = false;
  g_snapshot.taken = false;  // (its buffer kept for the next drain's snapshots)
}

int64_t checked_launches() {
  return g_checked;
}

bool enabled() {
  return g_enabled;
}

void set_enabled(bool on) {
  g_enabled = on;
  if (!on) reset();
}

}  // namespace emu::pdl_check
