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

// Software prefetch of n rows of D floats, `stride` floats apart, into L2 ahead of use. The KV a
// decode step reads was evicted by the step's own weight stream (the whole model passes through
// the caches between two visits of a layer), and one head's rows sit kv_heads * D floats apart
// (4 KiB for Qwen3-0.6B), a pattern the hardware prefetchers follow poorly (measured: a 1-row
// decode's attention ~5% faster with it). Into L1 the rows would evict each other: they all map
// to the same few sets.
inline void prefetch_rows(const float* base, int64_t n, int64_t stride, int64_t D) {
  for (int64_t j = 0; j < n; ++j)
    for (int64_t x = 0; x < D; x += 16) __builtin_prefetch(base + j * stride + x, 0, 2);
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
  for (int64_t p = p0; p < std::min(p0 + 2, p1); ++p) prefetch_page(p);
  for (int64_t p = p0; p < p1; ++p) {
    if (p + 2 < p1) prefetch_page(p + 2);
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

using attn_internal::kLn2;
using attn_internal::kLog2e;

// The many-row fold of one kv head (the branches of a fork over their shared prefix) through the
// ISA's decode tiles: scores kept transposed (keys, query columns), so that each key element is
// broadcast into every row's column and no dot product needs a horizontal sum. Rows run in
// blocks of the tiles' width; each block keeps its query columns and its online softmax (log2
// domain) between pages. A page's rows of this head are read in place (packing them into
// contiguous rows first measured 25% slower: the copy takes the misses the tiles would overlap).
struct ManyHead {
  struct Block {
    int64_t r0 = 0, rows = 0, rp = 0;
    int nv = 0;
    std::vector<float> qt, m, l, o;  // (D, rp), (rp), (rp), (rows, D)
  };
  std::vector<Block> blocks;

  void init(const float* q, int64_t R, int64_t D, float scale, const attn_internal::AttnIsa& isa) {
    const int64_t lanes = isa.dec_lanes, width = lanes * isa.dec_max_vecs;
    blocks.resize(static_cast<size_t>((R + width - 1) / width));
    for (size_t b = 0; b < blocks.size(); ++b) {
      Block& k = blocks[b];
      k.r0 = static_cast<int64_t>(b) * width;
      k.rows = std::min(width, R - k.r0);
      k.nv = static_cast<int>((k.rows + lanes - 1) / lanes);
      k.rp = k.nv * lanes;
      k.qt.assign(static_cast<size_t>(D * k.rp), 0.0f);
      for (int64_t r = 0; r < k.rows; ++r)
        for (int64_t d = 0; d < D; ++d) k.qt[d * k.rp + r] = q[(k.r0 + r) * D + d] * scale * kLog2e;
      k.m.assign(static_cast<size_t>(k.rp), -INFINITY);
      k.l.assign(static_cast<size_t>(k.rp), 0.0f);
      k.o.assign(static_cast<size_t>(k.rows * D), 0.0f);
    }
  }

  // Folds n keys k and values v (n, D; rows ld apart) into every block; st is scratch.
  void fold(const float* k, const float* v, int64_t ld, int n, int64_t D,
            const attn_internal::AttnIsa& isa, std::vector<float>& st) {
    for (Block& b : blocks) {
      if (st.size() < static_cast<size_t>(n * b.rp)) st.resize(static_cast<size_t>(n * b.rp));
      if (alpha_.size() < static_cast<size_t>(b.rp)) alpha_.resize(static_cast<size_t>(b.rp));
      isa.dec_scores(b.nv, b.qt.data(), k, ld, n, D, st.data());
      isa.dec_softmax(b.nv, st.data(), n, b.m.data(), b.l.data(), alpha_.data());
      isa.dec_values(b.o.data(), b.rows, D, st.data(), b.rp, v, ld, n, alpha_.data());
    }
  }

  // The state as State holds it (natural-log max).
  void finish(State& st, int64_t D) const {
    for (const Block& k : blocks)
      for (int64_t r = 0; r < k.rows; ++r) {
        st.m[k.r0 + r] = k.m[r] * kLn2;
        st.l[k.r0 + r] = k.l[r];
        std::copy(k.o.data() + r * D, k.o.data() + (r + 1) * D, st.acc.data() + (k.r0 + r) * D);
      }
  }

 private:
  std::vector<float> alpha_;  // (rp) the blocks' rescale factors, scratch
};

// The weights of two online-softmax states with maxima ma and mb in their log-sum-exp merge:
// m = max(ma, mb), fa = e^(ma - m), fb = e^(mb - m) (0 for a state that has seen no key).
struct MergeWeights {
  float m, fa, fb;
};
MergeWeights merge_weights(float ma, float mb) {
  const float m = std::max(ma, mb);
  return {m, ma == -INFINITY ? 0.0f : std::exp(ma - m), mb == -INFINITY ? 0.0f : std::exp(mb - m)};
}

// out/lse rows from one state, or from the merge of two (a: shared prefix, b: own pages).
void finish(float* out, float* lse, const State& a, const State* b, int64_t r_a, int64_t r_b,
            int64_t D) {
  float m = a.m[r_a], l = a.l[r_a];
  const float* acc_a = a.acc.data() + r_a * D;
  float fa = 1.0f, fb = 0.0f;
  if (b) {
    const MergeWeights w = merge_weights(m, b->m[r_b]);
    fa = w.fa;
    fb = w.fb;
    l = l * fa + b->l[r_b] * fb;
    m = w.m;
  }
  const float inv = 1.0f / l;
  for (int64_t d = 0; d < D; ++d)
    out[d] = (acc_a[d] * fa + (b ? b->acc[r_b * D + d] * fb : 0.0f)) * inv;
  if (lse) *lse = m + std::log(l);
}

// a <- the state of a's keys and b's keys together (same rows): the log-sum-exp merge.
void merge_into(State& a, const State& b) {
  for (int64_t r = 0; r < a.rows; ++r) {
    const MergeWeights w = merge_weights(a.m[r], b.m[r]);
    a.l[r] = a.l[r] * w.fa + b.l[r] * w.fb;
    for (int64_t d = 0; d < a.dim; ++d)
      a.acc[r * a.dim + d] = a.acc[r * a.dim + d] * w.fa + b.acc[r * a.dim + d] * w.fb;
    a.m[r] = w.m;
  }
}

template <typename F>
void for_tasks(const CpuContext& ctx, int64_t n, F&& fn) {
  if (ctx.pool && n > 1) {
    ctx.pool->parallel_for(n, [&](int64_t t, int) { fn(t); });
  } else {
    for (int64_t t = 0; t < n; ++t) fn(t);
  }
}

// Runs the attention of every sequence over groups of sequences (see decode_attention.h). A
// group of one sequence shares nothing, but its full pages (all but the last) run like a prefix.
Status run_groups(const CpuContext& ctx, float* out, float* lse, const float* q, int64_t heads,
                  const PagedKv& kv, const PageTable& t, const CascadePlan& plan, float scale) {
  if (heads <= 0 || kv.kv_heads <= 0 || heads % kv.kv_heads != 0)
    return Status::invalid("decode attention: heads must be a positive multiple of kv_heads");
  const int64_t KV = kv.kv_heads, G = heads / KV, D = kv.head_dim, B = kv.block_tokens;
  const int64_t groups = static_cast<int64_t>(plan.shared_pages.size());
  const attn_internal::AttnIsa& isa = attn_internal::isa_for(ctx.simd);
  const int threads = ctx.pool ? ctx.pool->size() : 1;
  auto members_of = [&](int64_t g) { return plan.order.data() + plan.group_start[g]; };
  auto count_of = [&](int64_t g) { return plan.group_start[g + 1] - plan.group_start[g]; };
  std::vector<int64_t> prefix(static_cast<size_t>(groups));  // (groups) pages run as a prefix
  int64_t with_prefix = 0;
  for (int64_t g = 0; g < groups; ++g) {
    const int32_t s = members_of(g)[0];
    prefix[g] = count_of(g) > 1 ? plan.shared_pages[g] : t.indptr[s + 1] - t.indptr[s] - 1;
    with_prefix += prefix[g] > 0;
  }
  // Phase 1: prefixes, page-major, in parts when there are fewer groups than threads.
  struct Part {
    int64_t g, p0, p1;
  };
  std::vector<Part> parts;
  std::vector<int64_t> first_part(static_cast<size_t>(groups), -1);  // (groups)
  const int64_t split = std::max<int64_t>(1, threads / std::max<int64_t>(1, with_prefix));
  for (int64_t g = 0; g < groups; ++g) {
    if (prefix[g] == 0) continue;
    const int64_t n = std::min(split, std::max<int64_t>(1, prefix[g] / 4));
    first_part[g] = static_cast<int64_t>(parts.size());
    for (int64_t i = 0; i < n; ++i)
      parts.push_back({g, prefix[g] * i / n, prefix[g] * (i + 1) / n});
  }
  std::vector<State> states(parts.size() * KV);  // (parts, kv heads) rows (members * G, D)
  // Fewer tasks than threads (a short lone sequence): the kv heads split among tasks as well.
  auto head_split = [&](int64_t tasks) {
    return tasks == 0 || tasks >= threads ? int64_t{1}
                                          : std::min(KV, (threads + tasks - 1) / tasks);
  };
  const int64_t hs1 = head_split(static_cast<int64_t>(parts.size()));
  for_tasks(ctx, static_cast<int64_t>(parts.size()) * hs1, [&](int64_t task) {
    const int64_t u = task / hs1, h0 = KV * (task % hs1) / hs1, h1 = KV * (task % hs1 + 1) / hs1;
    const Part& part = parts[u];
    const int32_t* members = members_of(part.g);
    const int64_t n = count_of(part.g), R = n * G;
    const int32_t* pages = t.indices + t.indptr[members[0]];
    thread_local std::vector<float> qrows, st, scratch;
    thread_local std::vector<ManyHead> many;
    qrows.resize(static_cast<size_t>(KV * R * D));  // (kv heads, members * G, D)
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t i = 0; i < n; ++i)
        std::copy(q + (members[i] * heads + h * G) * D, q + (members[i] * heads + h * G + G) * D,
                  qrows.data() + (h * R + i * G) * D);
    const bool tiles = R >= isa.dec_lanes / 2;
    many.resize(static_cast<size_t>(KV));
    for (int64_t h = h0; h < h1; ++h) {
      states[u * KV + h].reset(R, D);
      if (tiles) many[h].init(qrows.data() + h * R * D, R, D, scale, isa);
    }
    const int64_t stride = KV * D;
    for (int64_t p = part.p0; p < part.p1; ++p) {
      const float* kp = kv.k + static_cast<int64_t>(pages[p]) * B * stride;
      const float* vp = kv.v + static_cast<int64_t>(pages[p]) * B * stride;
      for (int64_t h = h0; h < h1; ++h) {
        if (!tiles) {
          attend(states[u * KV + h], qrows.data() + h * R * D, R, kv, h, pages, p, p + 1, 0, false,
                 scale, scratch);
          continue;
        }
        many[h].fold(kp + h * D, vp + h * D, stride, static_cast<int>(B), D, isa, st);
      }
    }
    if (tiles)
      for (int64_t h = h0; h < h1; ++h) many[h].finish(states[u * KV + h], D);
  });
  // The parts of one prefix merge into its first.
  for (size_t u = 0; u < parts.size(); ++u) {
    const int64_t f = first_part[parts[u].g];
    if (static_cast<int64_t>(u) != f)
      for (int64_t h = 0; h < KV; ++h) merge_into(states[f * KV + h], states[u * KV + h]);
  }
  // Phase 2: each sequence's own pages (its last at least), page-major, merged with its prefix.
  const int64_t hs2 = head_split(t.sequences);
  for_tasks(ctx, t.sequences * hs2, [&](int64_t task) {
    const int64_t at = task / hs2, h0 = KV * (task % hs2) / hs2, h1 = KV * (task % hs2 + 1) / hs2;
    const int64_t s = plan.order[at];
    const int64_t g = std::upper_bound(plan.group_start.begin(), plan.group_start.end(),
                                       static_cast<int32_t>(at)) -
                      plan.group_start.begin() - 1;
    const int64_t i = at - plan.group_start[g];
    thread_local std::vector<State> own;
    thread_local std::vector<float> scratch;
    own.resize(static_cast<size_t>(KV));
    for (int64_t h = h0; h < h1; ++h) own[h].reset(G, D);
    const int64_t p1 = t.indptr[s + 1];
    for (int64_t p = t.indptr[s] + prefix[g]; p < p1; ++p)
      for (int64_t h = h0; h < h1; ++h)
        attend(own[h], q + (s * heads + h * G) * D, G, kv, h, t.indices, p, p + 1, t.last_len[s],
               p + 1 == p1, scale, scratch);
    for (int64_t h = h0; h < h1; ++h) {
      const State* pre = first_part[g] >= 0 ? &states[first_part[g] * KV + h] : nullptr;
      for (int64_t k = 0; k < G; ++k)
        finish(out + (s * heads + h * G + k) * D, lse ? lse + s * heads + h * G + k : nullptr,
               own[h], pre, k, i * G + k, D);
    }
  });
  return Status::ok();
}

}  // namespace

Status decode_attention(const CpuContext& ctx, float* out, float* lse, const float* q,
                        int64_t heads, const PagedKv& kv, const PageTable& t, float scale) {
  CascadePlan alone;  // every sequence a group of its own
  for (int32_t s = 0; s < static_cast<int32_t>(t.sequences); ++s) {
    alone.group_start.push_back(s);
    alone.order.push_back(s);
    alone.shared_pages.push_back(0);
  }
  alone.group_start.push_back(static_cast<int32_t>(t.sequences));
  return run_groups(ctx, out, lse, q, heads, kv, t, alone, scale);
}

Status decode_attention_cascade(const CpuContext& ctx, float* out, float* lse, const float* q,
                                int64_t heads, const PagedKv& kv, const PageTable& t,
                                const CascadePlan& plan, float scale) {
  return run_groups(ctx, out, lse, q, heads, kv, t, plan, scale);
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
