// attention_plan: tile classification of a Structure (see parallel_attention.h).
//
// Tokens are grouped into runs: maximal stretches of one sequence whose branch paths are equal
// at every level. Visibility between two tokens of different runs depends only on their runs,
// so an off-diagonal tile pair is classified by testing the (few) run pairs it spans, weighted
// by their overlap; per-element masks are built only for PARTIAL tiles. Cost O(tile pairs x
// runs per tile pair + partial tiles x kAttnTile^2), memory O(tiles + partial tiles).
#include <algorithm>
#include <numeric>

#include "kernels/parallel_attention.h"

namespace npr {

namespace {

bool same_path(const StructureView& s, int64_t a, int64_t b) {
  for (int32_t d = 0; d < s.depth; ++d)
    if (s.block[a * s.depth + d] != s.block[b * s.depth + d] ||
        s.step[a * s.depth + d] != s.step[b * s.depth + d])
      return false;
  return true;
}

}  // namespace

int64_t AttentionPlan::bytes() const {
  auto b = [](const auto& v) { return static_cast<int64_t>(v.capacity() * sizeof(v[0])); };
  return b(seq_start) + b(seq_len) + b(seq_tile0) + b(tile_seq) + b(row_ptr) + b(row_pairs) +
         b(col_ptr) + b(col_pairs) + b(masks) + b(row_order);
}

TileKind AttentionPlan::kind(int64_t seq, int64_t qt, int64_t kt) const {
  const int64_t g = seq_tile0[seq] + qt;
  for (int64_t i = row_ptr[g]; i < row_ptr[g + 1]; ++i)
    if (row_pairs[i].other == kt)
      return row_pairs[i].partial < 0 ? TileKind::kFull : TileKind::kPartial;
  return TileKind::kSkip;
}

Status attention_plan(const StructureView& st_in, AttentionPlan* out, bool dense_causal) {
  NPR_TRY(check_structure(st_in));
  StructureView st = st_in;
  if (dense_causal) st.depth = 0;
  AttentionPlan p;
  p.tokens = st.tokens;
  // Runs (global token index of each run's first token, plus a sentinel at `tokens`).
  std::vector<int64_t> run_start;
  for (int64_t s = 0; s < st.sequences; ++s) {
    const int64_t a = st.cu_seqlens[s], b = st.cu_seqlens[s + 1];
    for (int64_t t = a; t < b; ++t)
      if (t == a || !same_path(st, t, t - 1)) run_start.push_back(t);
  }
  run_start.push_back(st.tokens);
  const auto first_run = [&](int64_t t) {
    return static_cast<int64_t>(std::upper_bound(run_start.begin(), run_start.end(), t) -
                                run_start.begin()) -
           1;
  };

  p.row_ptr.push_back(0);
  for (int64_t s = 0; s < st.sequences; ++s) {
    const int64_t s0 = st.cu_seqlens[s], L = st.cu_seqlens[s + 1] - s0;
    const int64_t nt = (L + kAttnTile - 1) / kAttnTile;
    p.seq_start.push_back(s0);
    p.seq_len.push_back(L);
    p.seq_tile0.push_back(p.tiles);
    p.causal_pairs += L * (L + 1) / 2;
    for (int64_t qt = 0; qt < nt; ++qt) {
      const int64_t qa = s0 + qt * kAttnTile, qb = std::min(qa + kAttnTile, s0 + L);
      p.tile_seq.push_back(static_cast<int32_t>(s));
      for (int64_t kt = 0; kt <= qt; ++kt) {
        const int64_t ka = s0 + kt * kAttnTile, kb = std::min(ka + kAttnTile, s0 + L);
        ++p.tiles_causal;
        int64_t vis = 0, all = (qb - qa) * (kb - ka);
        if (kt < qt) {
          for (int64_t rq = first_run(qa); run_start[rq] < qb; ++rq) {
            const int64_t nq = std::min(qb, run_start[rq + 1]) - std::max(qa, run_start[rq]);
            for (int64_t rk = first_run(ka); run_start[rk] < kb; ++rk) {
              const int64_t nk = std::min(kb, run_start[rk + 1]) - std::max(ka, run_start[rk]);
              if (structure_visible(st, run_start[rq], run_start[rk])) vis += nq * nk;
            }
          }
        }
        if (kt < qt && vis == 0) {
          ++p.tiles_skip;
          continue;
        }
        AttnTilePair pair{static_cast<int32_t>(kt), -1};
        if (kt < qt && vis == all) {
          ++p.tiles_full;
          p.visible_pairs += all;
        } else {  // the diagonal tile is always PARTIAL (causal inside it)
          ++p.tiles_partial;
          pair.partial = static_cast<int32_t>(p.masks.size());
          for (int64_t i = qa; i < qa + kAttnTile; ++i) {
            uint64_t w = 0;
            for (int64_t j = ka; i < qb && j < kb && j <= i; ++j)
              if (structure_visible(st, i, j)) w |= uint64_t{1} << (j - ka);
            p.masks.push_back(w);
            p.visible_pairs += __builtin_popcountll(w);
          }
        }
        p.row_pairs.push_back(pair);
      }
      p.row_ptr.push_back(static_cast<int64_t>(p.row_pairs.size()));
      ++p.tiles;
    }
  }
  // Column lists: the transpose of the row lists, ascending query tiles within each column.
  std::vector<int64_t> count(static_cast<size_t>(p.tiles) + 1, 0);
  for (int64_t g = 0; g < p.tiles; ++g)
    for (int64_t i = p.row_ptr[g]; i < p.row_ptr[g + 1]; ++i)
      ++count[p.seq_tile0[p.tile_seq[g]] + p.row_pairs[i].other + 1];
  p.col_ptr.assign(count.size(), 0);
  std::partial_sum(count.begin(), count.end(), p.col_ptr.begin());
  p.col_pairs.resize(p.row_pairs.size());
  std::vector<int64_t> fill(p.col_ptr.begin(), p.col_ptr.end() - 1);
  for (int64_t g = 0; g < p.tiles; ++g) {
    const int64_t t0 = p.seq_tile0[p.tile_seq[g]];
    for (int64_t i = p.row_ptr[g]; i < p.row_ptr[g + 1]; ++i) {
      const AttnTilePair& r = p.row_pairs[i];
      p.col_pairs[fill[t0 + r.other]++] = AttnTilePair{static_cast<int32_t>(g - t0), r.partial};
    }
  }
  // Longest rows first; ties by tile index so the order is a pure function of the plan.
  p.row_order.resize(static_cast<size_t>(p.tiles));
  std::iota(p.row_order.begin(), p.row_order.end(), 0);
  std::stable_sort(p.row_order.begin(), p.row_order.end(), [&](int32_t a, int32_t b) {
    return p.row_ptr[a + 1] - p.row_ptr[a] > p.row_ptr[b + 1] - p.row_ptr[b];
  });
  *out = std::move(p);
  return Status::ok();
}

}  // namespace npr
