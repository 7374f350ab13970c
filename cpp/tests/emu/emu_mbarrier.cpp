// Hopper mbarriers and the 1-D bulk (TMA-style) global -> shared loads they track, under the
// emulator (emu_ptx.h gives the semantics). A block's mbarriers live in a side table in its own
// async slot (block_async), keyed by shared address; waiters give way on an mbarrier's count of
// completed phases as they do on a barrier's generation. In the deferred mode a load waits,
// attached to its mbarrier, until a thread waits on that mbarrier, or until the whole launch can
// go no further (stalled): the latest the copy engine could land it, so a thread that reads the
// destination without waiting reads the poison.
//
// The tiled tensor-map form (2-D, 128-byte swizzle) lands as a bulk load of 16-byte pieces, one
// a swizzled chunk, those outside the matrix read from zeros.
//
// Not emulated: clusters (multicast, another CTA's mbarrier), tensor maps of other ranks,
// swizzles or interleaves, mbarrier.test_wait / try_wait with a state token, and the mbarrier's own
// 8 bytes (plain stores over them go unnoticed).
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/emu/emu_ptx.h"
#include "tests/emu/emu_runtime.h"
#include "tests/emu/emu_runtime_state.h"

namespace emu::ptx {

namespace {

// The ISA's limits: an arrival count in [1, 2^20 - 1]; an expect_tx may not bring the
// transaction count past 2^20 - 1.
constexpr uint32_t kMaxArrivals = (1u << 20) - 1;
constexpr int64_t kMaxTx = (int64_t{1} << 20) - 1;

// A bulk load in flight (the deferred mode): what it copies when it lands.
struct BulkLoad {
  uint32_t dst;
  const unsigned char* src;
  uint32_t bytes;
};

struct Mbarrier {
  uint32_t count = 0;              // arrivals a phase expects (mbarrier.init)
  uint32_t pending = 0;            // arrivals the current phase still waits for
  int64_t tx = 0;                  // bytes announced and not yet landed (below zero: landed first)
  uint64_t phases = 0;             // phases completed: the generation waiters give way on
  unsigned waiters = 0;            // threads asleep in mbarrier_wait_parity on it
  std::vector<BulkLoad> deferred;  // in issue order
};

std::string at(uint32_t addr) {
  return "the mbarrier at shared address " + std::to_string(addr);
}

// The phase ends once every arrival and every byte is in; its waiters may run again.
void complete_if_done(state::Block& b, Mbarrier& m) {
  if (m.pending != 0 || m.tx != 0) return;
  ++m.phases;
  m.pending = m.count;
  state::wake_block(b);
}

// complete_tx: a load's bytes land and count off its mbarrier's transactions. The source and
// destination were checked at issue (this also runs from the scheduler, where nothing may fault).
void land(state::Block& b, Mbarrier& m, const BulkLoad& load) {
  std::memcpy(b.shared + load.dst, load.src, load.bytes);
  m.tx -= load.bytes;
  complete_if_done(b, m);
}

// Lands every load m tracks, oldest first; false when none was in flight. Each may complete a
// phase, and the ones after it then count off the next phase's transactions, as on the hardware.
bool land_deferred(state::Block& b, Mbarrier& m) {
  if (m.deferred.empty()) return false;
  std::vector<BulkLoad> loads;
  loads.swap(m.deferred);
  for (const BulkLoad& load : loads) land(b, m, load);
  return true;
}

// A block's mbarriers. A map: a sleeping waiter holds &phases, which must not move when another
// mbarrier is initialised.
struct MbarrierTable : AsyncState {
  state::Block* block = nullptr;
  std::map<uint32_t, Mbarrier> bars;

  std::string block_end() override {
    size_t left = 0;
    uint32_t first = 0;
    for (const auto& [addr, m] : bars) {
      if (left == 0 && !m.deferred.empty()) first = addr;
      left += m.deferred.size();
    }
    if (left == 0) return {};
    return std::to_string(left) +
           " cp.async.bulk load(s) left in flight at block end (the first tracked by " + at(first) +
           ", which no thread waited on after issuing them)";
  }

  // Lands the loads of one mbarrier that a thread sleeps on (the first by address), so that a
  // thread waiting on another mbarrier still finds its own loads not landed.
  bool stalled() override {
    for (auto& entry : bars)
      if (entry.second.waiters > 0 && land_deferred(*block, entry.second)) return true;
    return false;
  }
};

MbarrierTable& table() {
  std::unique_ptr<AsyncState>& slot = block_async();
  if (!slot) {
    auto t = std::make_unique<MbarrierTable>();
    t->block = &state::my_block();
    slot = std::move(t);
  }
  return static_cast<MbarrierTable&>(*slot);
}

// An mbarrier's 8 bytes: 8-aligned and inside the block's window.
void check_address(uint32_t addr, const char* what) {
  if (addr % 8 != 0) fail(std::string(what) + ": " + at(addr) + " is not 8-aligned");
  shared_bytes(addr, 8, what);
}

Mbarrier& initialised(uint32_t addr, const char* what) {
  check_address(addr, what);
  auto& bars = table().bars;
  const auto it = bars.find(addr);
  if (it == bars.end())
    fail(std::string(what) + ": " + at(addr) +
         " was never initialised (no mbarrier.init of it in this block)");
  return it->second;
}

void arrive(uint32_t addr, uint32_t tx, const char* what) {
  Mbarrier& m = initialised(addr, what);
  if (tx > kMaxTx || m.tx + tx > kMaxTx)
    fail(std::string(what) + ": " + std::to_string(tx) + " transaction bytes bring " + at(addr) +
         "'s count to " + std::to_string(m.tx + tx) + ", past the 2^20 - 1 the ISA allows");
  if (m.pending == 0)
    fail(std::string(what) + ": one arrival more than the " + std::to_string(m.count) +
         " the current phase of " + at(addr) + " expects (it still waits for " +
         std::to_string(m.tx) + " transaction bytes)");
  m.tx += tx;
  --m.pending;
  complete_if_done(state::my_block(), m);
}

}  // namespace

void mbarrier_init(uint32_t addr, uint32_t count) {
  check_address(addr, "mbarrier.init");
  if (count == 0 || count > kMaxArrivals)
    fail("mbarrier.init of " + at(addr) + " with count " + std::to_string(count) +
         " (1 to 2^20 - 1)");
  Mbarrier& m = table().bars[addr];
  if (!m.deferred.empty())
    fail("mbarrier.init of " + at(addr) + " while " + std::to_string(m.deferred.size()) +
         " cp.async.bulk load(s) it tracks are in flight");
  const uint64_t before = m.phases;
  m.count = m.pending = count;
  m.tx = 0;
  m.phases = 0;
  if (before != 0) state::wake_block(state::my_block());  // sleepers look at the new phase
}

void mbarrier_arrive(uint32_t addr) {
  arrive(addr, 0, "mbarrier.arrive");
}

void mbarrier_arrive_expect_tx(uint32_t addr, uint32_t tx) {
  arrive(addr, tx, "mbarrier.arrive.expect_tx");
}

void mbarrier_wait_parity(uint32_t addr, uint32_t parity) {
  const char* what = "mbarrier.try_wait.parity";
  if (parity > 1) fail(std::string(what) + " with parity " + std::to_string(parity));
  Mbarrier& m = initialised(addr, what);
  state::Block& b = state::my_block();
  state::me().polled = false;  // it meets its block here, as at a barrier
  for (;;) {
    if ((m.phases & 1) != parity) return;
    land_deferred(b, m);
    if ((m.phases & 1) != parity) return;
    ++m.waiters;
    state::wait_for(&m.phases);
    --m.waiters;
  }
}

void bulk_load(uint32_t dst, const void* src, uint32_t bytes, uint32_t mbar) {
  const auto src_addr = reinterpret_cast<uintptr_t>(src);
  if (bytes == 0 || bytes % 16 != 0)
    fail("cp.async.bulk of " + std::to_string(bytes) +
         " bytes: the size must be a positive multiple of 16");
  if (dst % 16 != 0)
    fail("cp.async.bulk: shared destination " + std::to_string(dst) + " is not 16-aligned");
  if (src_addr % 16 != 0) {
    char hex[32];
    std::snprintf(hex, sizeof(hex), "%#llx", static_cast<unsigned long long>(src_addr));
    fail(std::string("cp.async.bulk: global source address ") + hex + " is not 16-aligned");
  }
  check_global(src, bytes, "cp.async.bulk source");
  shared_bytes(dst, bytes, "cp.async.bulk destination");
  Mbarrier& m = initialised(mbar, "cp.async.bulk (its mbarrier)");
  for (const auto& entry : table().bars)
    if (dst < entry.first + 8 && entry.first < dst + bytes)
      fail("cp.async.bulk: shared destination [" + std::to_string(dst) + ", " +
           std::to_string(dst + bytes) + ") overwrites " + at(entry.first));
  detail::traffic_counters().bulk_load_bytes += bytes;
  const BulkLoad load{dst, static_cast<const unsigned char*>(src), bytes};
  if (options().eager_async)
    land(state::my_block(), m, load);
  else
    m.deferred.push_back(load);
}

void tensor_load_2d(uint32_t dst, const void* map, int x, int y, uint32_t mbar) {
  const char* what = "cp.async.bulk.tensor.2d";
  TensorMap2d t;
  std::memcpy(&t, map, sizeof(t));
  if (t.magic != TensorMap2d::kMagic)
    fail(std::string(what) + ": the tensor map was not made by the emulator build's encoder");
  const int64_t box_bytes = static_cast<int64_t>(t.box_inner) * t.elem_bytes;
  if (box_bytes != 128)
    fail(std::string(what) + ": the 128-byte swizzle wants boxes of 128-byte rows, not " +
         std::to_string(box_bytes));
  if (dst % 1024 != 0)
    fail(std::string(what) + ": shared destination " + std::to_string(dst) +
         " is not 1024-aligned (the swizzle pattern's period)");
  if (x < 0 || y < 0 || x % (16 / static_cast<int>(t.elem_bytes)) != 0)
    fail(std::string(what) + ": box origin (" + std::to_string(x) + ", " + std::to_string(y) +
         ") is negative or not on a 16-byte column");
  const uint32_t bytes = static_cast<uint32_t>(t.box_rows) * 128u;
  shared_bytes(dst, bytes, "cp.async.bulk.tensor destination");
  Mbarrier& m = initialised(mbar, "cp.async.bulk.tensor (its mbarrier)");
  for (const auto& entry : table().bars)
    if (dst < entry.first + 8 && entry.first < dst + bytes)
      fail(std::string(what) + ": shared destination overwrites " + at(entry.first));
  static const unsigned char zeros[16] = {};
  const auto* base = static_cast<const unsigned char*>(t.base);
  std::vector<BulkLoad> pieces;
  for (int r = 0; r < t.box_rows; ++r)
    for (int c = 0; c < 8; ++c) {
      const int64_t row = static_cast<int64_t>(y) + r;
      const int64_t col_bytes = static_cast<int64_t>(x) * t.elem_bytes + 16 * c;
      const bool in = row < t.rows && col_bytes < t.inner * t.elem_bytes;
      const unsigned char* src = in ? base + row * t.row_bytes + col_bytes : zeros;
      if (in) {
        check_global(src, 16, "cp.async.bulk.tensor source");
        detail::traffic_counters().bulk_load_bytes += 16;
      }
      pieces.push_back(
          BulkLoad{dst + 128u * r + 16u * (static_cast<uint32_t>(c) ^ (r % 8u)), src, 16});
    }
  // Every piece counts off the transactions, zeros included, as the whole box does on the hardware.
  for (const BulkLoad& piece : pieces)
    if (options().eager_async)
      land(state::my_block(), m, piece);
    else
      m.deferred.push_back(piece);
}

}  // namespace emu::ptx
