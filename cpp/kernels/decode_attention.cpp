#include "kernels/decode_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "core/thread_pool.h"
#include "kernels/fast_exp.h"
#include "kernels/parallel_attention_internal.h"

namespace npr {

namespace {

// Online-softmax state of R query rows: running max, sum, and the weighted sum of values.
struct State {
  int64_t rows = 0, dim = 0;
  std::vector<float> m, l, acc;  // (rows), (rows), (rows, dim)
  void reset(int64_t r, int64_t d) {
    rows = r;
    dim = d;
    m.assign(static_cast<size_t>(r), -INFINITY);
    l.assign(static_cast<size_t>(r), 0.0f);
    acc.assign(static_cast<size_t>(r * d), 0.0f);
  }
};

// Dot product with 16 independent partial sums: one serial chain would run at FMA latency
// (the compiler may not reassociate a float sum); 16 lanes vectorise into one register.
inline float dot(const float* a, const float* b, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; ++l) acc[l] += a[i + l] * b[i + l];
  float s = 0.0f;
  for (; i < n; ++i) s += a[i] * b[i];
  for (float x : acc) s += x;
  return s;
}

// Width of the fixed-length inner loop below, which the compiler turns into one vector register.
constexpr int64_t kLanes = 16;

// acc (R, D) += p (R, ld_p) . V for one page of n values (rows `stride` apart), D a multiple of
// kLanes: each 16-wide chunk of a row's accumulator is loaded and stored once per page, not once
// per key.
void page_values_by_row(float* acc, const float* p, int64_t ld_p, int64_t R, int64_t D,
                        const float* vp, int64_t stride, int64_t n) {
  for (int64_t r = 0; r < R; ++r) {
    const float* pr = p + r * ld_p;
    for (int64_t d0 = 0; d0 < D; d0 += kLanes) {
      float t[kLanes];
      float* a = acc + r * D + d0;
      for (int64_t l = 0; l < kLanes; ++l) t[l] = a[l];
      for (int64_t j = 0; j < n; ++j) {
        const float w = pr[j];
        const float* v = vp + j * stride + d0;
        for (int64_t l = 0; l < kLanes; ++l) t[l] += w * v[l];
      }
      for (int64_t l = 0; l < kLanes; ++l) a[l] = t[l];
    }
  }
}

// Software prefetch of n rows of D floats, `stride` floats apart, into L1 ahead of use. The KV a
// decode step reads was evicted by the step's own weight stream (the whole model passes through
// the caches between two visits of a layer), and rows a kv_heads * D stride apart (4 KiB for
// Qwen3-0.6B) defeat the hardware prefetchers, so without this every row costs a full miss.
inline void prefetch_rows(const float* base, int64_t n, int64_t stride, int64_t D) {
  for (int64_t j = 0; j < n; ++j)
    for (int64_t x = 0; x < D; x += 16) __builtin_prefetch(base + j * stride + x);
}

// Folds pages [p0, p1) of the table row `pages` (the last of them holding `last` tokens) into
// the state of R query rows q (R, D) for kv head h, a page at a time: the page's scores for every
// row, one rescale per row and page (not per key), the page's probabilities through the
// vectorised exp, then each value vector added to every row. Each key and value vector is
// loaded once for all R rows: the cascade's saving.
void attend(State& st, const float* q, int64_t R, const PagedKv& kv, int64_t h,
            const int32_t* pages, int64_t p0, int64_t p1, int32_t last, bool last_is_partial,
            float scale, std::vector<float>& s) {
  const int64_t D = kv.head_dim, B = kv.block_tokens, stride = kv.kv_heads * D;
  s.resize(static_cast<size_t>(R * B));  // (R, B) scores, then probabilities, of one page
  auto page_len = [&](int64_t p) { return (p + 1 == p1 && last_is_partial) ? last : B; };
  auto prefetch_page = [&](int64_t p) {
    const int64_t at = static_cast<int64_t>(pages[p]) * B * stride + h * D;
    prefetch_rows(kv.k + at, page_len(p), stride, D);
    prefetch_rows(kv.v + at, page_len(p), stride, D);
  };
  if (p0 < p1) prefetch_page(p0);
  for (int64_t p = p0; p < p1; ++p) {
    if (p + 1 < p1) prefetch_page(p + 1);
    const int64_t n = page_len(p);
    const float* kp = kv.k + static_cast<int64_t>(pages[p]) * B * stride + h * D;
    const float* vp = kv.v + static_cast<int64_t>(pages[p]) * B * stride + h * D;
    for (int64_t r = 0; r < R; ++r)
      for (int64_t j = 0; j < n; ++j) s[r * B + j] = dot(q + r * D, kp + j * stride, D) * scale;
    for (int64_t r = 0; r < R; ++r) {
      float* sr = s.data() + r * B;
      float mx = st.m[r];
      for (int64_t j = 0; j < n; ++j) mx = std::max(mx, sr[j]);
      if (mx > st.m[r]) {  // rescale to the new maximum, once per page
        const float f = std::exp(st.m[r] - mx);
        float* a = st.acc.data() + r * D;
        st.l[r] *= f;
        for (int64_t d = 0; d < D; ++d) a[d] *= f;
        st.m[r] = mx;
      }
      for (int64_t j = 0; j < n; ++j) sr[j] -= mx;
      exp_nonpositive(sr, sr, n);
      float sum = 0.0f;
      for (int64_t j = 0; j < n; ++j) sum += sr[j];
      st.l[r] += sum;
    }
    if (D % kLanes == 0) {
      page_values_by_row(st.acc.data(), s.data(), B, R, D, vp, stride, n);
    } else {
      for (int64_t j = 0; j < n; ++j) {
        const float* vj = vp + j * stride;
        for (int64_t r = 0; r < R; ++r) {
          const float w = s[r * B + j];
          float* a = st.acc.data() + r * D;
          for (int64_t d = 0; d < D; ++d) a[d] += w * vj[d];
        }
      }
    }
  }
}

// Keys per chunk of the many-row path: the chunk's packed K and V (kChunk, D) and its
// transposed scores (kChunk, rp) stay in L1 beside the query columns and the output rows.
constexpr int kChunk = 16;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// Per-worker buffers of attend_many.
struct ManyScratch {
  std::vector<float> qt, st, m, l, alpha, o;  // (D, rp), (kChunk, rp), (rp) x 3, (rows, D)
  std::vector<float> kc, vc;                  // (kChunk, D) the chunk's keys and values
  std::vector<const float*> keys, vals;       // (keys) row pointers into the pages
};

// The same fold as attend for full pages [p0, p1), for many query rows at once (the branches of
// a fork over their shared prefix) through the ISA's decode tiles: scores transposed (keys, rows)
// so that each key element is broadcast into every row's column and no dot product needs a
// horizontal sum. Rows run in blocks of the tiles' width, keys in chunks of kChunk, each chunk
// first packed into contiguous rows: in the pages one head's rows sit kv_heads * D floats apart
// (4 KiB for Qwen3-0.6B), all in the same few L1 sets, which the tiles would thrash. The chunks
// two ahead are prefetched into L2 (into L1 they would evict each other for the same reason).
void attend_many(State& st, const float* q, int64_t R, const PagedKv& kv, int64_t h,
                 const int32_t* pages, int64_t p0, int64_t p1, float scale,
                 const attn_internal::AttnIsa& isa, ManyScratch& w) {
  const int64_t D = kv.head_dim, B = kv.block_tokens, stride = kv.kv_heads * D;
  const int64_t n_keys = (p1 - p0) * B, lanes = isa.dec_lanes;
  w.keys.resize(static_cast<size_t>(n_keys));
  w.vals.resize(static_cast<size_t>(n_keys));
  for (int64_t p = p0; p < p1; ++p)
    for (int64_t j = 0; j < B; ++j) {
      const int64_t at = (static_cast<int64_t>(pages[p]) * B + j) * stride + h * D;
      w.keys[(p - p0) * B + j] = kv.k + at;
      w.vals[(p - p0) * B + j] = kv.v + at;
    }
  auto prefetch_chunk = [&](int64_t c0) {
    for (int64_t i = c0; i < std::min(c0 + kChunk, n_keys); ++i)
      for (int64_t x = 0; x < D; x += 16) {
        __builtin_prefetch(w.keys[i] + x, 0, 2);
        __builtin_prefetch(w.vals[i] + x, 0, 2);
      }
  };
  w.kc.resize(static_cast<size_t>(kChunk * D));
  w.vc.resize(static_cast<size_t>(kChunk * D));
  const float qscale = scale * kLog2e;
  for (int64_t r0 = 0; r0 < R; r0 += lanes * isa.dec_max_vecs) {
    const int64_t rows = std::min<int64_t>(lanes * isa.dec_max_vecs, R - r0);
    const int nv = static_cast<int>((rows + lanes - 1) / lanes);
    const int64_t rp = nv * lanes;
    w.qt.assign(static_cast<size_t>(D * rp), 0.0f);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t d = 0; d < D; ++d) w.qt[d * rp + r] = q[(r0 + r) * D + d] * qscale;
    w.st.resize(static_cast<size_t>(kChunk * rp));
    w.m.assign(static_cast<size_t>(rp), -INFINITY);
    w.l.assign(static_cast<size_t>(rp), 0.0f);
    w.alpha.resize(static_cast<size_t>(rp));
    w.o.assign(static_cast<size_t>(rows * D), 0.0f);
    prefetch_chunk(0);
    prefetch_chunk(kChunk);
    for (int64_t c0 = 0; c0 < n_keys; c0 += kChunk) {
      prefetch_chunk(c0 + 2 * kChunk);
      const int n = static_cast<int>(std::min<int64_t>(kChunk, n_keys - c0));
      for (int i = 0; i < n; ++i) {
        std::copy(w.keys[c0 + i], w.keys[c0 + i] + D, w.kc.data() + i * D);
        std::copy(w.vals[c0 + i], w.vals[c0 + i] + D, w.vc.data() + i * D);
      }
      isa.dec_scores(nv, w.qt.data(), w.kc.data(), n, D, w.st.data());
      isa.dec_softmax(nv, w.st.data(), n, w.m.data(), w.l.data(), w.alpha.data());
      isa.dec_values(w.o.data(), rows, D, w.st.data(), rp, w.vc.data(), n, w.alpha.data());
    }
    for (int64_t r = 0; r < rows; ++r) {
      st.m[r0 + r] = w.m[r] * kLn2;
      st.l[r0 + r] = w.l[r];
      std::copy(w.o.data() + r * D, w.o.data() + (r + 1) * D, st.acc.data() + (r0 + r) * D);
    }
  }
}

// out/lse rows from one state, or from the merge of two (a: shared prefix, b: own pages).
void finish(float* out, float* lse, const State& a, const State* b, int64_t r_a, int64_t r_b,
            int64_t D) {
  float m = a.m[r_a], l = a.l[r_a];
  const float* acc_a = a.acc.data() + r_a * D;
  float fa = 1.0f, fb = 0.0f;
  if (b) {
    const float mb = b->m[r_b];
    const float mm = std::max(m, mb);
    fa = m == -INFINITY ? 0.0f : std::exp(m - mm);
    fb = mb == -INFINITY ? 0.0f : std::exp(mb - mm);
    l = l * fa + b->l[r_b] * fb;
    m = mm;
  }
  const float inv = 1.0f / l;
  for (int64_t d = 0; d < D; ++d)
    out[d] = (acc_a[d] * fa + (b ? b->acc[r_b * D + d] * fb : 0.0f)) * inv;
  if (lse) *lse = m + std::log(l);
}

template <typename F>
void for_tasks(const CpuContext& ctx, int64_t n, F&& fn) {
  if (ctx.pool && n > 1) {
    ctx.pool->parallel_for(n, [&](int64_t t, int) { fn(t); });
  } else {
    for (int64_t t = 0; t < n; ++t) fn(t);
  }
}

}  // namespace

Status check_page_table(const PageTable& t, int32_t num_blocks, int32_t block_tokens) {
  if (t.sequences < 0 || t.indptr[0] != 0)
    return Status::invalid("page table: indptr must start at 0");
  for (int64_t s = 0; s < t.sequences; ++s) {
    if (t.indptr[s + 1] <= t.indptr[s])
      return Status::invalid("page table: sequence " + std::to_string(s) + " has no pages");
    if (t.last_len[s] < 1 || t.last_len[s] > block_tokens)
      return Status::out_of_range("page table: last_len of sequence " + std::to_string(s) +
                                  " must be in [1, " + std::to_string(block_tokens) + "]");
  }
  for (int64_t i = 0; i < t.indptr[t.sequences]; ++i)
    if (t.indices[i] < 0 || t.indices[i] >= num_blocks)
      return Status::out_of_range("page table: block " + std::to_string(t.indices[i]) +
                                  " is outside the pool");
  return Status::ok();
}

CascadePlan cascade_plan(const PageTable& t, int32_t min_shared_pages) {
  CascadePlan plan;
  // Pages of sequence s that may be shared: all but the last (a sequence appends into its last
  // page, so that one is always read as the sequence's own).
  auto full_pages = [&](int64_t s) { return t.indptr[s + 1] - t.indptr[s] - 1; };
  int64_t s = 0;
  while (s < t.sequences) {
    plan.group_start.push_back(static_cast<int32_t>(plan.order.size()));
    plan.order.push_back(static_cast<int32_t>(s));
    int32_t shared = full_pages(s);
    int64_t e = s + 1;
    for (; e < t.sequences; ++e) {
      int32_t common = 0;
      const int32_t limit = std::min(shared, full_pages(e));
      while (common < limit && t.indices[t.indptr[s] + common] == t.indices[t.indptr[e] + common])
        ++common;
      if (common < min_shared_pages) break;
      shared = common;
      plan.order.push_back(static_cast<int32_t>(e));
    }
    plan.shared_pages.push_back(e - s > 1 ? shared : 0);
    s = e;
  }
  plan.group_start.push_back(static_cast<int32_t>(plan.order.size()));
  return plan;
}

Status decode_attention(const CpuContext& ctx, float* out, float* lse, const float* q,
                        int64_t heads, const PagedKv& kv, const PageTable& t, float scale) {
  if (heads <= 0 || kv.kv_heads <= 0 || heads % kv.kv_heads != 0)
    return Status::invalid("decode attention: heads must be a positive multiple of kv_heads");
  const int64_t G = heads / kv.kv_heads, D = kv.head_dim;
  for_tasks(ctx, t.sequences * kv.kv_heads, [&](int64_t task) {
    const int64_t s = task / kv.kv_heads, h = task % kv.kv_heads;
    thread_local State st;
    thread_local std::vector<float> scratch;
    st.reset(G, D);
    const int64_t p0 = t.indptr[s], p1 = t.indptr[s + 1];
    attend(st, q + (s * heads + h * G) * D, G, kv, h, t.indices, p0, p1, t.last_len[s], true, scale,
           scratch);
    for (int64_t g = 0; g < G; ++g)
      finish(out + (s * heads + h * G + g) * D, lse ? lse + s * heads + h * G + g : nullptr, st,
             nullptr, g, 0, D);
  });
  return Status::ok();
}

Status decode_attention_cascade(const CpuContext& ctx, float* out, float* lse, const float* q,
                                int64_t heads, const PagedKv& kv, const PageTable& t,
                                const CascadePlan& plan, float scale) {
  if (heads <= 0 || kv.kv_heads <= 0 || heads % kv.kv_heads != 0)
    return Status::invalid("decode attention: heads must be a positive multiple of kv_heads");
  const int64_t G = heads / kv.kv_heads, D = kv.head_dim;
  const int64_t groups = static_cast<int64_t>(plan.shared_pages.size());
  const attn_internal::AttnIsa& isa = attn_internal::isa_for(ctx.simd);
  for_tasks(ctx, groups * kv.kv_heads, [&](int64_t task) {
    const int64_t g = task / kv.kv_heads, h = task % kv.kv_heads;
    const int32_t* members = plan.order.data() + plan.group_start[g];
    const int64_t n = plan.group_start[g + 1] - plan.group_start[g];
    const int32_t shared = plan.shared_pages[g];
    thread_local State prefix, own;
    thread_local std::vector<float> qrows, scratch;
    thread_local ManyScratch many;
    // The shared prefix, once, for the G query heads of every member: rows (n * G, D).
    prefix.reset(n * G, D);
    if (shared > 0) {
      qrows.resize(static_cast<size_t>(n * G * D));
      for (int64_t i = 0; i < n; ++i)
        std::copy(q + (members[i] * heads + h * G) * D, q + (members[i] * heads + h * G + G) * D,
                  qrows.data() + i * G * D);
      attend_many(prefix, qrows.data(), n * G, kv, h, t.indices + t.indptr[members[0]], 0, shared,
                  scale, isa, many);
    }
    for (int64_t i = 0; i < n; ++i) {
      const int64_t s = members[i];
      own.reset(G, D);
      attend(own, q + (s * heads + h * G) * D, G, kv, h, t.indices, t.indptr[s] + shared,
             t.indptr[s + 1], t.last_len[s], true, scale, scratch);
      for (int64_t k = 0; k < G; ++k)
        finish(out + (s * heads + h * G + k) * D, lse ? lse + s * heads + h * G + k : nullptr, own,
               &prefix, k, i * G + k, D);
    }
  });
  return Status::ok();
}

void decode_attention_reference(float* out, float* lse, const float* q, int64_t heads,
                                const PagedKv& kv, const PageTable& t, float scale) {
  const int64_t G = heads / kv.kv_heads, D = kv.head_dim, B = kv.block_tokens,
                stride = kv.kv_heads * D;
  for (int64_t s = 0; s < t.sequences; ++s) {
    const int64_t pages = t.indptr[s + 1] - t.indptr[s];
    const int64_t len = (pages - 1) * B + t.last_len[s];
    for (int64_t hq = 0; hq < heads; ++hq) {
      const int64_t h = hq / G;
      std::vector<const float*> keys, values;  // the sequence gathered contiguously
      for (int64_t i = 0; i < len; ++i) {
        const int64_t block = t.indices[t.indptr[s] + i / B];
        keys.push_back(kv.k + (block * B + i % B) * stride + h * D);
        values.push_back(kv.v + (block * B + i % B) * stride + h * D);
      }
      std::vector<double> sc(static_cast<size_t>(len));
      double m = -INFINITY;
      for (int64_t i = 0; i < len; ++i) {
        double dot = 0.0;
        for (int64_t d = 0; d < D; ++d)
          dot += static_cast<double>(q[(s * heads + hq) * D + d]) * keys[i][d];
        sc[i] = dot * scale;
        m = std::max(m, sc[i]);
      }
      double sum = 0.0;
      for (double& x : sc) sum += (x = std::exp(x - m));
      for (int64_t d = 0; d < D; ++d) {
        double acc = 0.0;
        for (int64_t i = 0; i < len; ++i) acc += sc[i] * values[i][d];
        out[(s * heads + hq) * D + d] = static_cast<float>(acc / sum);
      }
      if (lse) lse[s * heads + hq] = static_cast<float>(m + std::log(sum));
    }
  }
}

}  // namespace npr
