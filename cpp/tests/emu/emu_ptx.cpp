// The emulator's instructions (emu_ptx.h). Fragment layouts, lane = 4 g + c (g = lane / 4,
// c = lane % 4), as the PTX ISA gives them for m16n8k16 and for wgmma m64nNk16 (warp w of the
// warpgroup holds rows 16 w .. 16 w + 15 in the m16n8k16 layouts):
//   A: a[0] = (g, 2c..2c+1), a[1] = (g+8, 2c..), a[2] = (g, 2c+8..), a[3] = (g+8, 2c+8..);
//   B (k x n, m16n8k16): b[0] = (k 2c..2c+1, n g), b[1] = (k 2c+8.., n g);
//   C / D: fragment i, {(g, 8i+2c), (g, 8i+2c+1), (g+8, 8i+2c), (g+8, 8i+2c+1)}.
// A register holds two bf16, the lower column in its low half.
#include "tests/emu/emu_ptx.h"

#include <cfloat>
#include <cmath>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "tests/emu/emu_runtime.h"
#include "tests/emu/wgmma_canonical.h"

namespace emu::ptx {

namespace {

float bf16_lo(uint32_t r) {
  const uint32_t u = r << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
float bf16_hi(uint32_t r) {
  const uint32_t u = r & 0xffff0000u;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
float bf16_at(const unsigned char* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return bf16_lo(h);
}
uint32_t pack(uint16_t lo, uint16_t hi) {
  return static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16);
}

// A 16 x 16 A operand of one warp (rows 0..15) from its lanes' registers.
void a_from_regs(float (&a)[16][16], const uint32_t* const* regs) {
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane / 4, c = lane % 4;
    const uint32_t* r = regs[lane];
    const int rows[4] = {g, g + 8, g, g + 8}, cols[4] = {2 * c, 2 * c, 2 * c + 8, 2 * c + 8};
    for (int i = 0; i < 4; ++i) {
      a[rows[i]][cols[i]] = bf16_lo(r[i]);
      a[rows[i]][cols[i] + 1] = bf16_hi(r[i]);
    }
  }
}

// ---- warp collectives ---------------------------------------------------------------------

void shfl_fn(const void* const* ins, void* const* outs, int, void* ctx) {
  const int mask = *static_cast<const int*>(ctx);
  for (int l = 0; l < 32; ++l)
    *static_cast<uint32_t*>(outs[l]) = *static_cast<const uint32_t*>(ins[l ^ (mask & 31)]);
}

// Each lane's value and the lane it reads (its own choice: a scan reads lane - o).
struct IdxIn {
  uint32_t v;
  int src;
};
void shfl_idx_fn(const void* const* ins, void* const* outs, int, void*) {
  for (int l = 0; l < 32; ++l) {
    const int src = static_cast<const IdxIn*>(ins[l])->src & 31;
    *static_cast<uint32_t*>(outs[l]) = static_cast<const IdxIn*>(ins[src])->v;
  }
}

void any_fn(const void* const* ins, void* const* outs, int, void*) {
  bool v = false;
  for (int l = 0; l < 32; ++l) v = v || *static_cast<const bool*>(ins[l]);
  for (int l = 0; l < 32; ++l) *static_cast<bool*>(outs[l]) = v;
}

struct LdmatrixShape {
  int matrices;
  bool trans;
};
void ldmatrix_fn(const void* const* ins, void* const* outs, int, void* ctx) {
  const auto* shape = static_cast<const LdmatrixShape*>(ctx);
  for (int i = 0; i < shape->matrices; ++i) {
    uint16_t m[8][8];
    for (int r = 0; r < 8; ++r) {
      const uint32_t addr = *static_cast<const uint32_t*>(ins[8 * i + r]);
      if (addr % 16 != 0) fail("ldmatrix: row address " + std::to_string(addr) + " not 16-aligned");
      std::memcpy(m[r], shared_bytes(addr, 16, "ldmatrix"), 16);
    }
    for (int l = 0; l < 32; ++l) {
      const int g = l / 4, c = l % 4;
      static_cast<uint32_t*>(outs[l])[i] =
          shape->trans ? pack(m[2 * c][g], m[2 * c + 1][g]) : pack(m[g][2 * c], m[g][2 * c + 1]);
    }
  }
}

struct MmaIn {
  uint32_t a[4], b[2];
  float c[4];
};
void mma_fn(const void* const* ins, void* const* outs, int, void*) {
  float a[16][16], b[16][8];
  const uint32_t* regs[32];
  for (int l = 0; l < 32; ++l) {
    const auto* in = static_cast<const MmaIn*>(ins[l]);
    regs[l] = in->a;
    const int g = l / 4, c = l % 4;
    b[2 * c][g] = bf16_lo(in->b[0]);
    b[2 * c + 1][g] = bf16_hi(in->b[0]);
    b[2 * c + 8][g] = bf16_lo(in->b[1]);
    b[2 * c + 9][g] = bf16_hi(in->b[1]);
  }
  a_from_regs(a, regs);
  for (int l = 0; l < 32; ++l) {
    const auto* in = static_cast<const MmaIn*>(ins[l]);
    float* d = static_cast<float*>(outs[l]);
    const int g = l / 4, c = l % 4;
    for (int e = 0; e < 4; ++e) {
      const int row = g + (e >> 1) * 8, col = 2 * c + (e & 1);
      float sum = 0.0f;
      for (int k = 0; k < 16; ++k) sum += a[row][k] * b[k][col];
      d[e] = in->c[e] + sum;
    }
  }
}

// ---- cp.async (per thread) ------------------------------------------------------------------

struct Copy {
  uint32_t dst;
  const unsigned char* src;
  int bytes, src_bytes;
};

void complete(const Copy& c) {
  unsigned char* d = shared_bytes(c.dst, static_cast<uint32_t>(c.bytes), "cp.async");
  if (c.src_bytes > 0) {
    check_global(c.src, static_cast<size_t>(c.src_bytes), "cp.async source");
    std::memcpy(d, c.src, static_cast<size_t>(c.src_bytes));
  }
  std::memset(d + c.src_bytes, 0, static_cast<size_t>(c.bytes - c.src_bytes));
  mark_async_written(c.dst, static_cast<uint32_t>(c.bytes));
}

// A bulk reduction: bytes / 4 floats at a shared address added into global dst.
struct BulkAdd {
  float* dst;
  uint32_t src;
  int bytes;
};

void complete(const BulkAdd& b) {
  const unsigned char* s =
      shared_bytes(b.src, static_cast<uint32_t>(b.bytes), "cp.reduce.async.bulk source");
  check_global(b.dst, static_cast<size_t>(b.bytes), "cp.reduce.async.bulk destination");
  for (int i = 0; i < b.bytes / 4; ++i) {
    float v;
    std::memcpy(&v, s + 4 * i, 4);
    b.dst[i] += v;
  }
}

// A thread's open group of operations closed into its committed groups, and the committed
// groups completed, oldest first, until at most n are left: cp.async's and the bulk copies'.
template <typename Op>
void commit_group(std::deque<std::vector<Op>>& committed, std::vector<Op>& open) {
  committed.push_back(std::move(open));
  open.clear();
}
// An operation issued: done at once (eager_async), or left in the open group.
template <typename Op>
void issue(const Op& op, std::vector<Op>& open) {
  if (options().eager_async)
    complete(op);
  else
    open.push_back(op);
}
template <typename Op>
void complete_groups(std::deque<std::vector<Op>>& committed, int n) {
  while (static_cast<int>(committed.size()) > n) {
    for (const Op& op : committed.front()) complete(op);
    committed.pop_front();
  }
}

// A thread's asynchronous copies: cp.async groups and bulk groups, each completed in order.
struct CpAsyncState : AsyncState {
  std::deque<std::vector<Copy>> committed;
  std::vector<Copy> open;
  std::deque<std::vector<BulkAdd>> bulk_committed;
  std::vector<BulkAdd> bulk_open;
  void thread_exit() override {
    commit_group(committed, open);
    complete_groups(committed, 0);
    commit_group(bulk_committed, bulk_open);
    complete_groups(bulk_committed, 0);
  }
};
CpAsyncState& cp_state() {
  auto& slot = thread_async();
  if (!slot) slot = std::make_unique<CpAsyncState>();
  return static_cast<CpAsyncState&>(*slot);
}

// ---- wgmma (per warpgroup) ------------------------------------------------------------------

struct WgmmaOp {
  int n = 0;
  bool scale_d = false, trans_a = false, trans_b = false, regs_a = false, check_d = false;
  bool done = false;
  uint64_t a_desc = 0, b_desc = 0;
  float* d[128];
  const uint32_t* a_src[128];
  uint32_t a[128][4];
  std::vector<float> d_at_issue;  // (128, n / 2) when check_d
};

// A warpgroup's MMAs, issued by its 128 threads together; each warp commits and waits for them
// on its own (the fence, commit and wait are per warp, as on the hardware), and an MMA runs when
// the first warp waits for it.
struct WgmmaState : AsyncState {
  std::vector<std::unique_ptr<WgmmaOp>> ops;  // every MMA of the block so far
  struct Warp {
    std::deque<std::vector<WgmmaOp*>> committed;
    std::vector<WgmmaOp*> open;
    bool fenced = false;
  } warps[4];
  std::string block_end() override {
    for (const Warp& w : warps)
      if (!w.committed.empty() || !w.open.empty())
        return "the kernel ended with wgmma operations not waited for";
    return {};
  }
};
WgmmaState& wg_state() {
  auto& slot = warpgroup_async();
  if (!slot) slot = std::make_unique<WgmmaState>();
  return static_cast<WgmmaState&>(*slot);
}

void execute(WgmmaOp& op) {
  const int half = op.n / 2;
  if (op.check_d)
    for (int t = 0; t < 128; ++t)
      if (std::memcmp(op.d[t], &op.d_at_issue[static_cast<size_t>(t) * half],
                      sizeof(float) * static_cast<size_t>(half)) != 0)
        fail("thread " + std::to_string(t) +
             " of the warpgroup changed the accumulator registers of a wgmma in flight "
             "(before the wgmma.wait_group that covers it)");
  if (op.regs_a)
    for (int t = 0; t < 128; ++t)
      if (std::memcmp(op.a_src[t], op.a[t], 16) != 0)
        fail("thread " + std::to_string(t) +
             " of the warpgroup changed the A registers of a wgmma in flight");
  for (const uint64_t desc : {op.a_desc, op.b_desc}) {
    if (desc == op.a_desc && op.regs_a) continue;
    if (wgmma_desc_swizzle(desc) != 1 || wgmma_desc_base_offset(desc) != 0)
      fail("wgmma: a descriptor that is not a 128-byte-swizzle one with base offset 0");
  }
  std::vector<float> a(64 * 16), b(static_cast<size_t>(op.n) * 16);  // (m, k), (n, k)
  const auto read = [](uint64_t desc, bool k_major, int mn, int k) {
    const uint32_t addr = wgmma_sw128_address(desc, k_major, mn, k);
    check_async_visible(addr, 2, "wgmma");
    return bf16_at(shared_bytes(addr, 2, "wgmma operand"));
  };
  if (op.regs_a) {
    for (int w = 0; w < 4; ++w) {
      float blk[16][16];
      const uint32_t* regs[32];
      for (int l = 0; l < 32; ++l) regs[l] = op.a[w * 32 + l];
      a_from_regs(blk, regs);
      for (int r = 0; r < 16; ++r)
        for (int k = 0; k < 16; ++k) a[static_cast<size_t>(16 * w + r) * 16 + k] = blk[r][k];
    }
  } else {
    for (int m = 0; m < 64; ++m)
      for (int k = 0; k < 16; ++k) a[m * 16 + k] = read(op.a_desc, !op.trans_a, m, k);
  }
  for (int nn = 0; nn < op.n; ++nn)
    for (int k = 0; k < 16; ++k)
      b[static_cast<size_t>(nn) * 16 + k] = read(op.b_desc, !op.trans_b, nn, k);
  for (int t = 0; t < 128; ++t) {
    const int w = t / 32, g = (t % 32) / 4, c = t % 4;
    for (int i = 0; i < op.n / 8; ++i)
      for (int e = 0; e < 4; ++e) {
        const int row = 16 * w + g + (e >> 1) * 8, col = 8 * i + 2 * c + (e & 1);
        float sum = 0.0f;
        for (int k = 0; k < 16; ++k)
          sum += a[static_cast<size_t>(row) * 16 + k] * b[static_cast<size_t>(col) * 16 + k];
        float& d = op.d[t][i * 4 + e];
        d = (op.scale_d ? d : 0.0f) + sum;
      }
  }
}

struct WgmmaIn {
  int n;
  float* d;
  const uint32_t* a_regs;
  uint32_t a[4];
  uint64_t a_desc, b_desc;
  bool scale_d, trans_a, trans_b;
};
void wgmma_fn(const void* const* ins, void* const*, int, void*) {
  WgmmaState& st = wg_state();
  const auto* first = static_cast<const WgmmaIn*>(ins[0]);
  for (int w = 0; w < 4; ++w)
    if (!st.warps[w].fenced)
      fail("wgmma.mma_async with no wgmma.fence in warp " + std::to_string(w) +
           " since its last wgmma.wait_group");
  auto op = std::make_unique<WgmmaOp>();
  op->n = first->n;
  op->scale_d = first->scale_d;
  op->trans_a = first->trans_a;
  op->trans_b = first->trans_b;
  op->regs_a = first->a_regs != nullptr;
  op->a_desc = first->a_desc;
  op->b_desc = first->b_desc;
  for (int t = 0; t < 128; ++t) {
    const auto* in = static_cast<const WgmmaIn*>(ins[t]);
    if (in->n != first->n || in->scale_d != first->scale_d || in->trans_a != first->trans_a ||
        in->trans_b != first->trans_b || (in->a_regs != nullptr) != op->regs_a ||
        in->b_desc != first->b_desc || (!op->regs_a && in->a_desc != first->a_desc))
      fail("wgmma.mma_async: thread " + std::to_string(t) +
           " of the warpgroup passed other descriptors or flags than thread 0");
    op->d[t] = in->d;
    op->a_src[t] = in->a_regs;
    if (op->regs_a) std::memcpy(op->a[t], in->a, 16);
  }
  if (options().eager_async && !options().mma_at_wait) {
    execute(*op);
    op->done = true;
  }
  // A wgmma accumulating onto one still in flight reads that one's result: check only the
  // first of such a chain against its registers at issue.
  bool chained = false;
  for (const auto& o : st.ops) chained = chained || (!o->done && o->d[0] == op->d[0]);
  op->check_d = !chained && !op->done;
  if (op->check_d) {
    const int half = op->n / 2;
    op->d_at_issue.resize(static_cast<size_t>(128) * half);
    for (int t = 0; t < 128; ++t)
      std::memcpy(&op->d_at_issue[static_cast<size_t>(t) * half], op->d[t],
                  sizeof(float) * static_cast<size_t>(half));
  }
  for (auto& w : st.warps) w.open.push_back(op.get());
  st.ops.push_back(std::move(op));
}

WgmmaState::Warp& my_warp() {
  return wg_state().warps[group_of(Scope::kWarp) % 4];
}
void fence_fn(const void* const*, void* const*, int, void*) {
  my_warp().fenced = true;
}
void commit_fn(const void* const*, void* const*, int, void*) {
  WgmmaState::Warp& w = my_warp();
  w.committed.push_back(std::move(w.open));
  w.open.clear();
}
void wait_fn(const void* const*, void* const*, int, void* ctx) {
  const int n = *static_cast<const int*>(ctx);
  WgmmaState::Warp& w = my_warp();
  while (static_cast<int>(w.committed.size()) > n) {
    for (WgmmaOp* op : w.committed.front())
      if (!op->done) {
        execute(*op);
        op->done = true;
      }
    w.committed.pop_front();
  }
  w.fenced = false;
}

}  // namespace

uint32_t shfl_xor(uint32_t v, int lane_mask) {
  uint32_t out = 0;
  collective(Scope::kWarp, "shfl.sync.bfly", &v, &out, shfl_fn, &lane_mask);
  return out;
}

uint32_t shfl_idx(uint32_t v, int src_lane) {
  uint32_t out = 0;
  IdxIn in{v, src_lane};
  collective(Scope::kWarp, "shfl.sync.idx", &in, &out, shfl_idx_fn, nullptr);
  return out;
}

void syncwarp() {
  collective(
      Scope::kWarp, "bar.warp.sync", nullptr, nullptr, [](auto...) {}, nullptr);
}

bool any(bool pred) {
  bool out = false;
  collective(Scope::kWarp, "vote.any", &pred, &out, any_fn, nullptr);
  return out;
}

void ldmatrix(uint32_t* r, int matrices, bool trans, uint32_t addr) {
  if (matrices != 1 && matrices != 2 && matrices != 4)
    fail("ldmatrix of " + std::to_string(matrices) + " matrices");
  // The collective's context is the last arriving lane's shape: every lane passes the same.
  LdmatrixShape shape{matrices, trans};
  collective(Scope::kWarp, trans ? "ldmatrix.trans" : "ldmatrix", &addr, r, ldmatrix_fn, &shape);
}

void mma_m16n8k16(float d[4], const uint32_t a[4], const uint32_t b[2]) {
  MmaIn in;
  std::memcpy(in.a, a, 16);
  std::memcpy(in.b, b, 8);
  std::memcpy(in.c, d, 16);
  collective(Scope::kWarp, "mma.sync.m16n8k16", &in, d, mma_fn, nullptr);
}

void cp_async(uint32_t dst, const void* src, int cp_bytes, int src_bytes) {
  if (dst % static_cast<uint32_t>(cp_bytes) != 0 ||
      reinterpret_cast<uintptr_t>(src) % static_cast<uintptr_t>(cp_bytes) != 0)
    fail("cp.async of " + std::to_string(cp_bytes) + " bytes: addresses not aligned to it");
  if (src_bytes < 0 || src_bytes > cp_bytes)
    fail("cp.async: source size " + std::to_string(src_bytes) + " of a " +
         std::to_string(cp_bytes) + "-byte copy");
  detail::traffic_counters().cp_async_bytes += static_cast<uint64_t>(src_bytes);
  issue(Copy{dst, static_cast<const unsigned char*>(src), cp_bytes, src_bytes}, cp_state().open);
}

void cp_async_commit() {
  commit_group(cp_state().committed, cp_state().open);
}

void cp_async_wait(int n) {
  complete_groups(cp_state().committed, n);
}

void bulk_reduce_add_f32(float* dst, uint32_t src, int bytes) {
  if (bytes <= 0 || bytes % 16 != 0 || src % 16 != 0 || reinterpret_cast<uintptr_t>(dst) % 16 != 0)
    fail("cp.reduce.async.bulk of " + std::to_string(bytes) +
         " bytes: size not a positive multiple of 16, or an address not 16-aligned");
  issue(BulkAdd{dst, src, bytes}, cp_state().bulk_open);
}

void bulk_commit() {
  commit_group(cp_state().bulk_committed, cp_state().bulk_open);
}

void bulk_wait(int n) {
  complete_groups(cp_state().bulk_committed, n);
}

void fence_proxy_async() {
  emu::fence_proxy_async();
}

void wgmma_fence() {
  collective(Scope::kWarp, "wgmma.fence", nullptr, nullptr, fence_fn, nullptr);
}
void wgmma_commit() {
  collective(Scope::kWarp, "wgmma.commit_group", nullptr, nullptr, commit_fn, nullptr);
}
void wgmma_wait(int n) {
  collective(Scope::kWarp, "wgmma.wait_group", nullptr, nullptr, wait_fn, &n);
}

void wgmma(int n, float* d, const uint32_t* a_regs, uint64_t a_desc, uint64_t b_desc, bool scale_d,
           bool trans_a, bool trans_b) {
  WgmmaIn in{n, d, a_regs, {0, 0, 0, 0}, a_desc, b_desc, scale_d, trans_a, trans_b};
  if (a_regs) std::memcpy(in.a, a_regs, 16);
  collective(Scope::kWarpgroup, "wgmma.mma_async", &in, nullptr, wgmma_fn, nullptr);
}

void red_add_f32x2(float* p, float x, float y) {
  check_global(p, 8, "red.global.add.v2.f32");
  if (reinterpret_cast<uintptr_t>(p) % 8 != 0) fail("red.global.add.v2.f32: address not 8-aligned");
  p[0] += x;
  p[1] += y;
}

void red_add_u32(uint32_t* p, uint32_t v) {
  check_global(p, 4, "red.global.add.u32");
  *p += v;
}

namespace detail {
Traffic& traffic_counters() {
  static Traffic counters;
  return counters;
}
}  // namespace detail

const Traffic& traffic() {
  return detail::traffic_counters();
}
void reset_traffic() {
  detail::traffic_counters() = Traffic{};
}

void load_global_nc(void* dst, const void* src, int bytes) {
  check_read_only(src, static_cast<size_t>(bytes), "ld.global.nc");
  detail::traffic_counters().nc_bytes += static_cast<uint64_t>(bytes);
  std::memcpy(dst, src, static_cast<size_t>(bytes));
}

namespace {
struct PrefetchRecord {
  bool on = false;
  std::set<uint64_t> lines;
};
PrefetchRecord& prefetch_record() {
  static PrefetchRecord r;
  return r;
}
}  // namespace

void prefetch_l2(const void* p) {
  check_global(p, 1, "prefetch.global.L2");
  PrefetchRecord& r = prefetch_record();
  if (r.on) r.lines.insert(reinterpret_cast<uintptr_t>(p) / 128);
}

void record_prefetches(bool on) {
  PrefetchRecord& r = prefetch_record();
  if (on) r.lines.clear();
  r.on = on;
}

const std::set<uint64_t>& prefetched_lines() {
  return prefetch_record().lines;
}

float ex2_approx_ftz(float x) {
  const float y = std::exp2(x);
  return y < FLT_MIN ? 0.0f : y;
}

}  // namespace emu::ptx

// The device library's fast exponential (crt/device_functions.h declares it, with C linkage, in
// the kernels' translation units): ex2.approx.ftz of x log2 e, as nvcc compiles it.
extern "C" float __expf(float x) {
  return emu::ptx::ex2_approx_ftz(x * 1.44269504088896341f);
}
