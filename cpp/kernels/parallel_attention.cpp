// Fused block-sparse attention runs over an AttentionPlan (see parallel_attention.h).
//
// Work items: (kv head, query tile) for forward, (kv head, key tile) for backward, kv head
// major so consecutive items share one kv head's K/V (cache reuse). The query heads of one kv
// head are stacked as the rows of one (G * nq, D) block, so each K/V tile serves the whole
// group. K/V tiles are packed once per run (K^T for the score products, contiguous rows for
// the others). Scores live in the log2 domain (q is pre-scaled by scale * log2 e). Items write
// only their own output rows (dQ: their chunk's partial), accumulating in plan order.
#include "kernels/parallel_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <new>
#include <string>

#include "core/thread_pool.h"
#include "kernels/parallel.h"
#include "kernels/parallel_attention_internal.h"

namespace npr {

namespace {

using attn_internal::AttnIsa;
using attn_internal::isa_for;
static_assert(attn_internal::kTile == kAttnTile, "one tile size");
constexpr int kT = kAttnTile;
using attn_internal::kLn2;
using attn_internal::kLog2e;

struct Dims {
  int64_t H, KV, D, G, ldq, ldk;
  float scale;
};

Status check(const AttentionPlan& plan, const AttentionShape& s, Dims* d) {
  if (s.heads <= 0 || s.kv_heads <= 0 || s.head_dim <= 0 || s.heads % s.kv_heads != 0)
    return Status::invalid("attention: heads (" + std::to_string(s.heads) +
                           ") must be a positive multiple of kv_heads (" +
                           std::to_string(s.kv_heads) + ") and head_dim positive");
  if (plan.row_ptr.size() != static_cast<size_t>(plan.tiles) + 1)
    return Status::invalid("attention: the plan is empty; build it with attention_plan");
  *d = Dims{s.heads,
            s.kv_heads,
            s.head_dim,
            s.heads / s.kv_heads,
            s.heads * s.head_dim,
            s.kv_heads * s.head_dim,
            s.scale};
  return Status::ok();
}

// A tile of one sequence: first token and live length.
struct Tile {
  int64_t start, n;
};
Tile tile_at(const AttentionPlan& p, int64_t g, int64_t local) {
  const int64_t seq = p.tile_seq[g], end = p.seq_start[seq] + p.seq_len[seq];
  const int64_t start = p.seq_start[seq] + local * kT;
  return Tile{start, std::min<int64_t>(kT, end - start)};
}
int64_t local_of(const AttentionPlan& p, int64_t g) {
  return g - p.seq_tile0[p.tile_seq[g]];
}

// dst (D, kT) = rows [0, n) of src (n, D, row stride ld) transposed; columns >= n zero.
void pack_t(float* dst, const float* src, int64_t ld, int64_t n, int64_t D) {
  for (int64_t d = 0; d < D; ++d) {
    float* o = dst + d * kT;
    for (int64_t c = 0; c < n; ++c) o[c] = src[c * ld + d];
    for (int64_t c = n; c < kT; ++c) o[c] = 0.0f;
  }
}

// dst (G * n, D): row hh * n + i = f * src row (token t0 + i, head h0 + hh).
void gather_rows(float* dst, const float* src, int64_t t0, int64_t n, int64_t h0, const Dims& d,
                 float f) {
  for (int64_t hh = 0; hh < d.G; ++hh)
    for (int64_t i = 0; i < n; ++i) {
      const float* s = src + (t0 + i) * d.ldq + (h0 + hh) * d.D;
      float* o = dst + (hh * n + i) * d.D;
      for (int64_t x = 0; x < d.D; ++x) o[x] = f * s[x];
    }
}

// An uninitialised float buffer: every element the kernels read is written first, so zeroing
// would only cost a pass over memory (and the buffers are O(tokens)).
class Buf {
 public:
  explicit Buf(int64_t n) : p_(new float[static_cast<size_t>(n)]) {}
  float* data() const { return p_.get(); }
  float& operator[](int64_t i) const { return p_[i]; }

 private:
  std::unique_ptr<float[]> p_;
};

// Runs fn(item, worker) over n items on the pool (inline without one).
template <typename F>
void run_items(const CpuContext& ctx, int64_t n, F&& fn) {
  if (ctx.pool && n > 1 && ctx.pool->size() > 1)
    ctx.pool->parallel_for(n, [&](int64_t i, int w) { fn(i, w); });
  else
    for (int64_t i = 0; i < n; ++i) fn(i, 0);
}

int threads_of(const CpuContext& ctx) {
  return ctx.pool ? ctx.pool->size() : 1;
}

// Buffers packed once per run, per (global tile g, kv head): K^T or V^T tiles (D, kT); rows of
// the G query heads of the group, (G * nq, D) as gather_rows writes them; per-row statistics.
struct Packed {
  const Dims& d;
  int64_t kv(int64_t g, int64_t kvh) const { return (g * d.KV + kvh) * d.D * kT; }
  int64_t rows(int64_t g, int64_t kvh) const { return (g * d.KV + kvh) * d.G * kT * d.D; }
  int64_t stats(int64_t g, int64_t kvh) const { return (g * d.KV + kvh) * d.G * kT; }
};

// Per-worker scratch, carved from one buffer per worker (floats).
struct FwdScratch {
  float *qs, *o, *s, *m, *l, *alpha;
  static int64_t floats(const Dims& d) {
    const int64_t R = d.G * kT;
    return 2 * R * d.D + R * kT + 3 * R;
  }
  FwdScratch(float* p, const Dims& d) {
    const int64_t R = d.G * kT;
    qs = p, o = qs + R * d.D, s = o + R * d.D, m = s + R * kT, l = m + R, alpha = l + R;
  }
};
struct BwdScratch {
  float *acc, *acc2, *s, *dp;
  static int64_t floats(const Dims& d) {
    const int64_t R = d.G * kT;
    return R * d.D + kT * d.D + 2 * R * kT;
  }
  BwdScratch(float* p, const Dims& d) {
    const int64_t R = d.G * kT;
    acc = p, acc2 = acc + R * d.D, s = acc2 + kT * d.D, dp = s + R * kT;
  }
};

const uint64_t* masks_of(const AttentionPlan& p, const AttnTilePair& pair) {
  return pair.partial < 0 ? nullptr : p.masks.data() + pair.partial;
}

// dst[Packed::kv(g, kvh)] = tile g of src (tokens, KV, D) for kv head kvh: transposed (D, kT)
// when transpose, else its rows (n, D) contiguous. Either way the tile no longer sits at a
// kv_heads * D stride, which would map its rows onto a few L1 sets.
void pack_all_kv(const CpuContext& ctx, const AttentionPlan& plan, const Dims& d, const float* src,
                 float* dst, bool transpose) {
  const Packed pk{d};
  run_items(ctx, plan.tiles * d.KV, [&](int64_t item, int) {
    const int64_t g = item / d.KV, kvh = item % d.KV;
    const Tile t = tile_at(plan, g, local_of(plan, g));
    const float* s = src + t.start * d.ldk + kvh * d.D;
    if (transpose) {
      pack_t(dst + pk.kv(g, kvh), s, d.ldk, t.n, d.D);
    } else {
      for (int64_t r = 0; r < t.n; ++r)
        std::copy(s + r * d.ldk, s + r * d.ldk + d.D, dst + pk.kv(g, kvh) + r * d.D);
    }
  });
}

void forward_impl(const CpuContext& ctx, const AttentionPlan& plan, const Dims& d, float* out,
                  float* lse, const float* q, const float* k, const float* v) {
  const AttnIsa& isa = isa_for(ctx.simd);
  const int64_t per = FwdScratch::floats(d);
  const Packed pk{d};
  const int64_t kv_n = plan.tiles * d.KV * d.D * kT;
  Buf scratch(per * threads_of(ctx));
  Buf kt_all(kv_n), v_all(kv_n);  // per (tile, kv head): K^T (D, kT), V (kT, D)
  pack_all_kv(ctx, plan, d, k, kt_all.data(), true);
  pack_all_kv(ctx, plan, d, v, v_all.data(), false);
  const float qscale = d.scale * kLog2e;
  run_items(ctx, plan.tiles * d.KV, [&](int64_t item, int worker) {
    const int64_t g = plan.row_order[item % plan.tiles], kvh = item / plan.tiles, h0 = kvh * d.G;
    const int64_t t0 = plan.seq_tile0[plan.tile_seq[g]];
    const Tile qt = tile_at(plan, g, g - t0);
    const int64_t R = d.G * qt.n;
    FwdScratch w(scratch.data() + worker * per, d);
    gather_rows(w.qs, q, qt.start, qt.n, h0, d, qscale);
    std::fill(w.o, w.o + R * d.D, 0.0f);
    std::fill(w.m, w.m + R, -std::numeric_limits<float>::infinity());
    std::fill(w.l, w.l + R, 0.0f);
    for (int64_t i = plan.row_ptr[g]; i < plan.row_ptr[g + 1]; ++i) {
      const AttnTilePair& pair = plan.row_pairs[i];
      const Tile kt = tile_at(plan, g, pair.other);
      const float* ktile = kt_all.data() + pk.kv(t0 + pair.other, kvh);
      isa.nn(R, kT, d.D, w.qs, d.D, ktile, kT, w.s, kT, nullptr, false);  // S (R, kT)
      isa.softmax(w.s, R, static_cast<int>(qt.n), static_cast<int>(kt.n), masks_of(plan, pair), w.m,
                  w.l, w.alpha);
      isa.nn(R, d.D, kt.n, w.s, kT, v_all.data() + pk.kv(t0 + pair.other, kvh), d.D, w.o, d.D,
             w.alpha, false);  // O (R, D) = alpha * O + P V
    }
    for (int64_t hh = 0; hh < d.G; ++hh)
      for (int64_t i = 0; i < qt.n; ++i) {
        const int64_t r = hh * qt.n + i;
        const float inv = 1.0f / w.l[r];
        float* o = out + (qt.start + i) * d.ldq + (h0 + hh) * d.D;
        for (int64_t x = 0; x < d.D; ++x) o[x] = w.o[r * d.D + x] * inv;
        lse[(qt.start + i) * d.H + h0 + hh] = (w.m[r] + std::log2(w.l[r])) * kLn2;
      }
  });
}

void backward_impl(const CpuContext& ctx, const AttentionPlan& plan, const Dims& d, float* dq,
                   float* dk, float* dv, const float* dout, const float* q, const float* k,
                   const float* v, const float* out, const float* lse) {
  const AttnIsa& isa = isa_for(ctx.simd);
  const int64_t per = BwdScratch::floats(d), T = plan.tokens;
  const Packed pk{d};
  const int64_t kv_n = plan.tiles * d.KV * d.D * kT, rows_n = plan.tiles * d.H * kT;
  Buf scratch(per * threads_of(ctx));
  Buf kt_all(kv_n), vt_all(kv_n), k_all(kv_n);  // per (tile, kv head): K^T, V^T (D, kT), K (kT, D)
  Buf qs_all(rows_n * d.D), dos_all(rows_n * d.D);  // (G * nq, D) rows: q * scale * log2 e, dO
  Buf lse2_all(rows_n), delta_all(rows_n);          // (G * nq): lse * log2 e, rowsum(dO * O)
  Buf delta(T * d.H);                               // (T, H) rowsum(dO * O)
  parallel_rows(ctx, T * d.H, 256, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      float acc = 0.0f;
      for (int64_t x = 0; x < d.D; ++x) acc += dout[r * d.D + x] * out[r * d.D + x];
      delta[r] = acc;
    }
  });
  pack_all_kv(ctx, plan, d, k, kt_all.data(), true);
  pack_all_kv(ctx, plan, d, v, vt_all.data(), true);
  pack_all_kv(ctx, plan, d, k, k_all.data(), false);
  const float qscale = d.scale * kLog2e;
  run_items(ctx, plan.tiles * d.KV, [&](int64_t item, int) {
    const int64_t g = item / d.KV, kvh = item % d.KV, h0 = kvh * d.G;
    const Tile qt = tile_at(plan, g, local_of(plan, g));
    gather_rows(qs_all.data() + pk.rows(g, kvh), q, qt.start, qt.n, h0, d, qscale);
    gather_rows(dos_all.data() + pk.rows(g, kvh), dout, qt.start, qt.n, h0, d, 1.0f);
    for (int64_t hh = 0; hh < d.G; ++hh)
      for (int64_t i = 0; i < qt.n; ++i) {
        lse2_all[pk.stats(g, kvh) + hh * qt.n + i] = lse[(qt.start + i) * d.H + h0 + hh] * kLog2e;
        delta_all[pk.stats(g, kvh) + hh * qt.n + i] = delta[(qt.start + i) * d.H + h0 + hh];
      }
  });
  // S and dS of query tile gq against key tile gk (both global) into w.s / w.dp.
  auto scores = [&](const BwdScratch& w, int64_t gq, int64_t gk, int64_t kvh, int nq, int nk,
                    const AttnTilePair& pair) {
    const int64_t R = d.G * nq;
    isa.nn(R, kT, d.D, qs_all.data() + pk.rows(gq, kvh), d.D, kt_all.data() + pk.kv(gk, kvh), kT,
           w.s, kT, nullptr, false);  // S (R, kT)
    isa.nn(R, kT, d.D, dos_all.data() + pk.rows(gq, kvh), d.D, vt_all.data() + pk.kv(gk, kvh), kT,
           w.dp, kT, nullptr, false);  // dP (R, kT)
    isa.grad_probs(w.s, w.dp, R, nq, nk, masks_of(plan, pair), lse2_all.data() + pk.stats(gq, kvh),
                   delta_all.data() + pk.stats(gq, kvh));
  };
  // One pass over (kv head, key tile) items, kv head major: each item sums dV = P^T dO and
  // dK = scale * dS^T Q over its column list in plan order, and adds dS K into dQ rows. The items
  // are split into `chunks` contiguous ranges of about equal cost, fixed before any thread
  // starts; chunk c adds into its own dQ partial, and the partials are summed in chunk order.
  // So a run is a pure function of its inputs and the thread count (no atomics).
  const int64_t items = plan.tiles * d.KV;
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(threads_of(ctx), items));
  std::vector<int64_t> bounds(static_cast<size_t>(chunks) + 1, items);
  {
    const int64_t total = items + d.KV * static_cast<int64_t>(plan.col_pairs.size());
    int64_t acc = 0, c = 1;
    bounds[0] = 0;
    for (int64_t it = 0; it < items && c < chunks; ++it) {
      const int64_t g = it % plan.tiles;
      acc += 1 + plan.col_ptr[g + 1] - plan.col_ptr[g];
      while (c < chunks && acc * chunks >= total * c) bounds[c++] = it + 1;
    }
  }
  Buf dq_part(chunks * rows_n * d.D);  // (chunks, rows_n, D) in grouped row layout
  run_items(ctx, chunks, [&](int64_t chunk, int worker) {
    float* dqp = dq_part.data() + chunk * rows_n * d.D;
    std::fill(dqp, dqp + rows_n * d.D, 0.0f);
    BwdScratch w(scratch.data() + worker * per, d);
    for (int64_t item = bounds[chunk]; item < bounds[chunk + 1]; ++item) {
      const int64_t g = item % plan.tiles, kvh = item / plan.tiles;
      const int64_t t0 = plan.seq_tile0[plan.tile_seq[g]];
      const Tile kt = tile_at(plan, g, g - t0);
      float* dk_acc = w.acc;   // (kT, D)
      float* dv_acc = w.acc2;  // (kT, D)
      std::fill(dk_acc, dk_acc + kt.n * d.D, 0.0f);
      std::fill(dv_acc, dv_acc + kt.n * d.D, 0.0f);
      for (int64_t i = plan.col_ptr[g]; i < plan.col_ptr[g + 1]; ++i) {
        const AttnTilePair& pair = plan.col_pairs[i];
        const Tile qt = tile_at(plan, g, pair.other);
        const int64_t gq = t0 + pair.other, R = d.G * qt.n;
        scores(w, gq, g, kvh, static_cast<int>(qt.n), static_cast<int>(kt.n), pair);
        isa.nn_t(kt.n, d.D, R, w.s, kT, dos_all.data() + pk.rows(gq, kvh), d.D, dv_acc, d.D,
                 nullptr, true);  // dV += P^T dO
        isa.nn_t(kt.n, d.D, R, w.dp, kT, qs_all.data() + pk.rows(gq, kvh), d.D, dk_acc, d.D,
                 nullptr, true);  // dK += dS^T qs
        isa.nn(R, d.D, kt.n, w.dp, kT, k_all.data() + pk.kv(g, kvh), d.D, dqp + pk.rows(gq, kvh),
               d.D, nullptr, true);  // dQ += dS K
      }
      // qs carries scale * log2 e: dK = dS^T (scale Q) = dS^T qs / log2 e.
      for (int64_t c = 0; c < kt.n; ++c) {
        float* ok = dk + (kt.start + c) * d.ldk + kvh * d.D;
        float* ov = dv + (kt.start + c) * d.ldk + kvh * d.D;
        for (int64_t x = 0; x < d.D; ++x) {
          ok[x] = dk_acc[c * d.D + x] * kLn2;
          ov[x] = dv_acc[c * d.D + x];
        }
      }
    }
  });
  // dQ = scale * (sum of the partials in chunk order).
  run_items(ctx, items, [&](int64_t item, int) {
    const int64_t g = item % plan.tiles, kvh = item / plan.tiles, h0 = kvh * d.G;
    const Tile qt = tile_at(plan, g, local_of(plan, g));
    for (int64_t hh = 0; hh < d.G; ++hh)
      for (int64_t i = 0; i < qt.n; ++i) {
        float* o = dq + (qt.start + i) * d.ldq + (h0 + hh) * d.D;
        const int64_t r = pk.rows(g, kvh) + (hh * qt.n + i) * d.D;
        for (int64_t x = 0; x < d.D; ++x) {
          float sum = dq_part[r + x];
          for (int64_t c = 1; c < chunks; ++c) sum += dq_part[c * rows_n * d.D + r + x];
          o[x] = sum * d.scale;
        }
      }
  });
}

}  // namespace

int64_t attention_fused_workspace_bytes(const AttentionPlan& plan, const AttentionShape& s,
                                        int threads, bool backward) {
  const int64_t G = s.kv_heads > 0 ? s.heads / s.kv_heads : 0;
  const Dims d{s.heads, s.kv_heads, s.head_dim, G, 0, 0, s.scale};
  const int64_t kv = plan.tiles * d.KV * d.D * kT, rows = plan.tiles * d.H * kT;
  const int64_t floats = backward ? BwdScratch::floats(d) * threads + 3 * kv +
                                        (2 + threads) * rows * d.D + 2 * rows + plan.tokens * d.H
                                  : FwdScratch::floats(d) * threads + 2 * kv;
  return static_cast<int64_t>(sizeof(float)) * floats;
}

Status attention_forward_fused(const CpuContext& ctx, const AttentionPlan& plan, float* out,
                               float* lse, const float* q, const float* k, const float* v,
                               const AttentionShape& shape) {
  Dims d;
  NPR_TRY(check(plan, shape, &d));
  try {
    forward_impl(ctx, plan, d, out, lse, q, k, v);
  } catch (const std::bad_alloc&) {
    return Status::oom("attention forward: could not allocate the workspace of " +
                       std::to_string(plan.tokens) + " tokens");
  }
  return Status::ok();
}

Status attention_backward_fused(const CpuContext& ctx, const AttentionPlan& plan, float* dq,
                                float* dk, float* dv, const float* dout, const float* q,
                                const float* k, const float* v, const float* out, const float* lse,
                                const AttentionShape& shape) {
  Dims d;
  NPR_TRY(check(plan, shape, &d));
  try {
    backward_impl(ctx, plan, d, dq, dk, dv, dout, q, k, v, out, lse);
  } catch (const std::bad_alloc&) {
    return Status::oom("attention backward: could not allocate the workspace of " +
                       std::to_string(plan.tokens) + " tokens");
  }
  return Status::ok();
}

const attn_internal::AttnIsa& attn_internal::isa_for(SimdLevel level) {
#if defined(NPR_HAVE_X86_KERNELS)
  if (level == SimdLevel::kAvx512) return kAttnAvx512;
  if (level == SimdLevel::kAvx2) return kAttnAvx2;
#endif
  (void)level;
  return kAttnPortable;
}

}  // namespace npr
