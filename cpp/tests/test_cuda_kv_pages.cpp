// Device KV pages and paged decode attention on CUDA. The soak drives the host bookkeeping with
// the CPU soak's kind of operation sequence (requests, appends writing K/V, forks, joins, frees,
// closes, reclaim under pressure) into CPU pages and device pages at once: the device pages
// must equal the CPU pages after every check, and device memory in use must return to its
// starting figure. The attention cases: device flat == device cascade == contiguous reference
// == the CPU kernel, on odd sizes (block sizes 1, 8, 16; prefixes 17, 97, 513), GQA, fp32 and
// bf16 pages, over page tables made by real forks.
#include <array>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/decode_attention.h"
#include "kvcache/kv_cache.h"
#include "kvcache/kv_pages.h"
#include "tests/harness.h"
#include "tests/test_page_tables.h"
#include "tests/test_util.h"
#if defined(NPR_WITH_CUDA)
#include "kernels/decode_attention_cuda.h"
#include "kvcache/kv_pages_cuda.h"
#include "tests/test_cuda_util.h"
#endif

namespace npr::test {

#if defined(NPR_WITH_CUDA)
namespace {

// K/V rows of a token (all kv heads): a function of its value and the layer.
std::vector<float> token_rows(int64_t value, int64_t layer, int kv, int64_t n_elems, bool bf16) {
  std::vector<float> r(static_cast<size_t>(n_elems));
  for (int64_t e = 0; e < n_elems; ++e)
    r[e] = std::sin(0.37f * static_cast<float>(value) + 1.3f * static_cast<float>(e) +
                    10.0f * static_cast<float>(layer) + (kv ? 0.5f : 0.0f));
  return bf16 ? bf16_rounded(r) : r;
}

// Device pages == CPU pages, every layer (pad block excluded).
bool pages_equal(KvPagesCuda& dev, KvPages& cpu, int64_t layers, int64_t n) {
  for (int64_t l = 0; l < layers; ++l) {
    std::vector<float> k, v;
    CHECK_OK(dev.download(l, &k, &v));
    for (int64_t i = 0; i < n; ++i)
      if (k[i] != cpu.k(l)[i] || v[i] != cpu.v(l)[i]) return false;
  }
  return true;
}

void device_soak(uint64_t seed, int64_t ops, int32_t blocks, int32_t B, DevDType t) {
  CudaContext& ctx = cuda_test_context();
  const int64_t layers = 2, kvh = 2, D = 3, se = kvh * D;
  const bool bf16 = t == DevDType::kBF16;
  const int64_t start = ctx.alloc().bytes_in_use();
  {
    Rng rng(seed);
    KvCache kv(blocks, B);
    KvPages cpu;
    CHECK_OK(KvPages::create(layers, blocks, B, kvh, D, &cpu));
    std::unique_ptr<KvPagesCuda> dev;
    CHECK_OK(KvPagesCuda::create(ctx, t, layers, blocks, B, kvh, D, &dev));
    if (!dev) return;
    std::vector<int32_t> open, live;
    int64_t next_value = 0, forks = 0, joins = 0, checks = 0;
    for (int64_t op = 0; op < ops; ++op) {
      live.clear();
      for (int32_t s = 0; s < 4 * blocks; ++s)
        if (kv.is_live(s)) live.push_back(s);
      const int kind = static_cast<int>(rng.below(100));
      if (kind < 8 || open.empty()) {
        const int32_t r = kv.open_request(static_cast<int64_t>(rng.below(400)));
        open.push_back(r);
        int32_t s;
        CHECK_OK(kv.create_sequence(r, &s));
      } else if (kind < 60 && !live.empty()) {  // append: K/V of the new tokens written
        const int32_t s = live[rng.below(static_cast<int64_t>(live.size()))];
        const int64_t n = 1 + rng.below(24), len = kv.length(s);
        KvAnswer a;
        if (!kv.append(s, n, rng.below(4) != 0, &a).is_ok()) continue;  // frozen parent
        if (a == KvAnswer::kNoBlocks) {                                 // reclaim under pressure
          const size_t victim = static_cast<size_t>(rng.below(static_cast<int64_t>(open.size())));
          CHECK_OK(kv.close_request(open[victim]));
          open.erase(open.begin() + static_cast<int64_t>(victim));
          continue;
        }
        if (a != KvAnswer::kOk) continue;
        std::vector<int32_t> slots;
        for (int64_t l = 0; l < layers; ++l) {
          std::vector<float> krows, vrows;
          slots.clear();
          for (int64_t i = 0; i < n; ++i) {
            const int64_t p = len + i, slot = kv.table(s)[p / B] * int64_t{B} + p % B;
            slots.push_back(static_cast<int32_t>(slot));
            const auto kr = token_rows(next_value + i, l, 0, se, bf16);
            const auto vr = token_rows(next_value + i, l, 1, se, bf16);
            std::copy(kr.begin(), kr.end(), cpu.k(l) + slot * se);
            std::copy(vr.begin(), vr.end(), cpu.v(l) + slot * se);
            krows.insert(krows.end(), kr.begin(), kr.end());
            vrows.insert(vrows.end(), vr.begin(), vr.end());
          }
          DeviceBuffer dk = to_device(ctx, krows, t), dv = to_device(ctx, vrows, t);
          DeviceBuffer ds = to_device_i32(ctx, slots);
          CHECK_OK(dev->write(l, dk.get(), dv.get(), ds.as<int32_t>(), n));
          CHECK_OK(ctx.sync("soak write"));
        }
        next_value += n;
      } else if (kind < 75 && !live.empty()) {
        std::vector<int32_t> kids;
        std::vector<SlotCopy> copies;
        KvAnswer a;
        const int32_t s = live[rng.below(static_cast<int64_t>(live.size()))];
        if (kv.fork(s, 1 + static_cast<int32_t>(rng.below(6)), &kids, &a, &copies).is_ok() &&
            a == KvAnswer::kOk) {
          cpu.apply(copies);
          CHECK_OK(dev->apply(copies));
          ++forks;
        }
      } else if (kind < 88 && !live.empty()) {
        std::vector<int32_t> forked;
        for (int32_t c : live)
          if (!kv.children(c).empty()) forked.push_back(c);
        if (forked.empty()) continue;
        std::vector<SlotCopy> copies;
        if (kv.join(forked[rng.below(static_cast<int64_t>(forked.size()))], &copies).is_ok()) {
          cpu.apply(copies);
          CHECK_OK(dev->apply(copies));
          ++joins;
        }
      } else if (kind < 95 && !live.empty()) {
        (void)kv.free_sequence(live[rng.below(static_cast<int64_t>(live.size()))]);
      } else if (!open.empty()) {
        const size_t r = static_cast<size_t>(rng.below(static_cast<int64_t>(open.size())));
        CHECK_OK(kv.close_request(open[r]));
        open.erase(open.begin() + static_cast<int64_t>(r));
      }
      CHECK_OK(kv.check_invariants());
      if (op % 101 == 0 || op + 1 == ops) {
        ++checks;
        CHECK_MSG(pages_equal(*dev, cpu, layers, int64_t{blocks} * B * se),
                  "seed " + std::to_string(seed) + ": device pages differ after op " +
                      std::to_string(op));
      }
    }
    std::printf(
        "    device soak seed %llu (B %d, %s): %lld ops, %lld forks, %lld joins, %lld checks\n",
        static_cast<unsigned long long>(seed), B, dev_dtype_name(t), static_cast<long long>(ops),
        static_cast<long long>(forks), static_cast<long long>(joins),
        static_cast<long long>(checks));
    CHECK(forks > ops / 100 && joins > ops / 100);
    for (int32_t r : open) CHECK_OK(kv.close_request(r));
    CHECK(kv.free_blocks() == blocks);
  }
  CHECK_MSG(ctx.alloc().bytes_in_use() == start,
            "device memory in use " + std::to_string(ctx.alloc().bytes_in_use()) +
                " bytes after the soak, " + std::to_string(start) + " before");
}

}  // namespace

TEST(cuda_kv_pages_soak_matches_cpu_pages_and_returns_device_memory) {
  device_soak(7, 20000, 97, 16, DevDType::kF32);
  device_soak(11, 8000, 61, 8, DevDType::kBF16);
  device_soak(13, 5000, 40, 1, DevDType::kF32);
}

TEST(cuda_kv_pages_budget_in_bytes_and_named_out_of_memory) {
  CudaContext& ctx = cuda_test_context();
  const int64_t bb = KvPagesCuda::block_bytes(DevDType::kBF16, 28, 16, 8, 128);
  CHECK(bb == 2 * 28 * 16 * 8 * 128 * 2);
  CHECK(KvPagesCuda::blocks_for_budget(10 * bb, bb) == 9);
  CHECK(KvPagesCuda::blocks_for_budget(bb, bb) == 0);
  CHECK(KvPagesCuda::budget_from_free_fraction(0.5) > 0);
  std::unique_ptr<KvPagesCuda> huge;
  const Status s = KvPagesCuda::create(ctx, DevDType::kF32, 1024, 1 << 24, 16, 8, 128, &huge);
  CHECK_MSG(s.code() == StatusCode::kOutOfMemory && !huge,
            "expected a named OOM: " + s.to_string());
}

TEST(cuda_decode_attention_cascade_equals_flat_equals_reference) {
  CudaContext& ctx = cuda_test_context();
  Rng rng(171);
  ThreadPool pool(2);
  int cases = 0;
  for (DevDType t : {DevDType::kF32, DevDType::kBF16}) {
    for (int32_t B : {1, 8, 16}) {
      for (int64_t prefix : {17, 97, 513}) {
        for (auto [heads, kvh, D] : {std::tuple<int64_t, int64_t, int64_t>{4, 2, 32},
                                     {6, 2, 24},
                                     {8, 1, 128},
                                     {16, 8, 128},
                                     {8, 2, 64}}) {
          const int64_t blocks = (prefix + 600) / B * 2 + 64;
          KvCache kv(static_cast<int32_t>(blocks), B);
          const int branches = 1 + static_cast<int>(rng.below(8));
          ForkedTables f = forked_tables(rng, kv, prefix, branches);
          const PageTable pt = f.table();
          auto k = random_vector(rng, blocks * B * kvh * D),
               v = random_vector(rng, blocks * B * kvh * D);
          const int64_t n = pt.sequences;
          auto q = random_vector(rng, n * heads * D);
          if (t == DevDType::kBF16) k = bf16_rounded(k), v = bf16_rounded(v), q = bf16_rounded(q);
          const float scale = 1.0f / std::sqrt(static_cast<float>(D));
          PagedKv pk{k.data(), v.data(), B, kvh, D};
          auto ref = poisoned(n * heads * D), cpu = poisoned(n * heads * D);
          auto rl = poisoned(n * heads);
          decode_attention_reference(ref.data(), rl.data(), q.data(), heads, pk, pt, scale);
          CHECK_OK(decode_attention(CpuContext{&pool, detect_simd()}, cpu.data(), nullptr, q.data(),
                                    heads, pk, pt, scale));
          DeviceBuffer dk = to_device(ctx, k, t), dv = to_device(ctx, v, t),
                       dq = to_device(ctx, q, t);
          const DevicePagedKv dpk{dk.get(), dv.get(), B, kvh, D};
          const CascadePlan cplan = cascade_plan(pt, 1);
          const bool mma = decode_attention_mma_applies(t, D, DecodeWorkOptions{}.max_rows);
          for (int variant = 0; variant < (mma ? 4 : 2); ++variant) {
            const bool cascade = variant % 2 == 1;
            const DecodeAttnKernel kernel =
                variant < 2 ? DecodeAttnKernel::kSimt : DecodeAttnKernel::kMma;
            DeviceDecodePlan plan;
            const DecodeWork w =
                decode_work(pt, cascade ? &cplan : nullptr, B, heads / kvh, DecodeWorkOptions{});
            CHECK_OK(plan.upload(ctx, w, pt, heads, D));
            DeviceBuffer out = poisoned_device(ctx, n * heads * D, t);
            DeviceBuffer lse = poisoned_device(ctx, n * heads, DevDType::kF32);
            CHECK_OK(decode_attention_cuda(ctx, t, plan, out.get(), lse.as<float>(), dq.get(),
                                           heads, dpk, scale, 0, kernel));
            const auto got = to_host(ctx, out, n * heads * D, t);
            const auto gl = to_host(ctx, lse, n * heads, DevDType::kF32);
            const double tol = t == DevDType::kF32 ? 2e-5 : 1e-2;
            const std::string what = std::string(dev_dtype_name(t)) + " B " + std::to_string(B) +
                                     " prefix " + std::to_string(prefix) + " heads " +
                                     std::to_string(heads) + "/" + std::to_string(kvh) + " D " +
                                     std::to_string(D) + (cascade ? " cascade" : " flat") +
                                     (variant >= 2 ? " tensor cores" : " simt");
            CHECK_MSG(max_abs_diff(got, ref) < tol,
                      what + ": vs reference " + std::to_string(max_abs_diff(got, ref)));
            CHECK_MSG(max_abs_diff(got, cpu) < tol, what + ": vs the CPU kernel");
            CHECK_MSG(max_abs_diff(gl, rl) < 1e-4,
                      what + ": lse " + std::to_string(max_abs_diff(gl, rl)));
            // The staged merge gives the serial merge's bits.
            DeviceBuffer out2 = poisoned_device(ctx, n * heads * D, t);
            DeviceBuffer lse2 = poisoned_device(ctx, n * heads, DevDType::kF32);
            CHECK_OK(decode_attention_cuda(ctx, t, plan, out2.get(), lse2.as<float>(), dq.get(),
                                           heads, dpk, scale, 0, kernel, DecodeMerge::kStaged));
            const auto got2 = to_host(ctx, out2, n * heads * D, t);
            const auto gl2 = to_host(ctx, lse2, n * heads, DevDType::kF32);
            CHECK_MSG(std::memcmp(got2.data(), got.data(), 4 * got.size()) == 0 &&
                          std::memcmp(gl2.data(), gl.data(), 4 * gl.size()) == 0,
                      what + ": the staged merge's bits differ from the serial merge's");
            // ... and so do the attend kernel and the staged merge as programmatic launches.
            DeviceBuffer out3 = poisoned_device(ctx, n * heads * D, t);
            DeviceBuffer lse3 = poisoned_device(ctx, n * heads, DevDType::kF32);
            CHECK_OK(decode_attention_cuda(ctx, t, plan, out3.get(), lse3.as<float>(), dq.get(),
                                           heads, dpk, scale, 0, kernel, DecodeMerge::kStaged,
                                           true));
            const auto got3 = to_host(ctx, out3, n * heads * D, t);
            const auto gl3 = to_host(ctx, lse3, n * heads, DevDType::kF32);
            CHECK_MSG(std::memcmp(got3.data(), got.data(), 4 * got.size()) == 0 &&
                          std::memcmp(gl3.data(), gl.data(), 4 * gl.size()) == 0,
                      what + ": the pdl launches' bits differ");
            ++cases;
            if (!mma && variant == 1)  // the tensor-core kernel refuses what it cannot run
              CHECK(decode_attention_cuda(ctx, t, plan, out.get(), nullptr, dq.get(), heads, dpk,
                                          scale, 0, DecodeAttnKernel::kMma)
                        .code() == StatusCode::kInvalidArgument);
          }
        }
      }
    }
  }
  std::printf("    %d device attention cases\n", cases);
}

// A replayed decode graph launches decode_item_bound(S) attention items whatever the step: no
// plan of S one-token queries may make more, flat or cascade, under any work options. Host only.
namespace {

// A random decode step for the host tests of decode_work: 1..8 branches forked off a prefix of
// 1..700 tokens in pages of `block_choices`, one new token each, with random work options and
// heads per kv head.
struct RandomStep {
  int32_t B;
  int64_t prefix, G;
  std::unique_ptr<KvCache> kv;
  ForkedTables f;
  PageTable pt;
  CascadePlan cplan;
  DecodeWorkOptions opt;
};
RandomStep random_step(Rng& rng, const std::array<int32_t, 3>& block_choices) {
  RandomStep r;
  r.B = block_choices[rng.below(3)];
  r.prefix = 1 + static_cast<int64_t>(rng.below(700));
  r.kv = std::make_unique<KvCache>(static_cast<int32_t>((r.prefix + 600) / r.B * 2 + 64), r.B);
  r.f = forked_tables(rng, *r.kv, r.prefix, 1 + static_cast<int>(rng.below(8)));
  r.pt = r.f.table();
  r.cplan = cascade_plan(r.pt, 1);
  r.opt.min_pages_per_item = 1 + static_cast<int32_t>(rng.below(4));
  r.opt.max_items_per_run = 1 + static_cast<int32_t>(rng.below(16));
  r.opt.max_rows = 1 + static_cast<int64_t>(rng.below(32));
  r.G = std::array<int64_t, 3>{1, 2, 4}[rng.below(3)];
  return r;
}

}  // namespace

TEST(decode_work_stays_within_the_graph_item_bound) {
  Rng rng(173);
  int plans = 0;
  for (int trial = 0; trial < 60; ++trial) {
    const RandomStep st = random_step(rng, {1, 8, 16});
    const PageTable& pt = st.pt;
    const CascadePlan& cplan = st.cplan;
    const DecodeWorkOptions& opt = st.opt;
    const int32_t B = st.B;
    const int64_t G = st.G, prefix = st.prefix;
    for (bool cascade : {false, true}) {
      const DecodeWork w = decode_work(pt, cascade ? &cplan : nullptr, B, G, opt);
      const int64_t bound = decode_item_bound(pt.sequences, opt);
      CHECK_MSG(w.n_items() <= bound && w.partials <= bound,
                std::to_string(w.n_items()) + " items, " + std::to_string(w.partials) +
                    " partials over the bound " + std::to_string(bound) + " (" +
                    std::to_string(pt.sequences) + " sequences, prefix " + std::to_string(prefix) +
                    ", B " + std::to_string(B) + (cascade ? ", cascade)" : ", flat)"));
      ++plans;
    }
  }
  std::printf("    %d plans\n", plans);
}

// The one-kernel decode step writes each query's new K and V in the one item that ends at its
// new token (item_ends_at_new_token): every plan of one-token queries, flat or cascade, under
// any work options, has exactly one such item per query, and it is that query's. Host only.
TEST(decode_work_has_one_item_ending_at_each_new_token) {
  Rng rng(181);
  int plans = 0;
  for (int trial = 0; trial < 60; ++trial) {
    const RandomStep st = random_step(rng, {1, 4, 16});
    const PageTable& pt = st.pt;
    const int32_t B = st.B;
    const int64_t prefix = st.prefix;
    std::vector<int32_t> slots(static_cast<size_t>(pt.sequences));
    for (int64_t s = 0; s < pt.sequences; ++s)
      slots[s] = pt.indices[pt.indptr[s + 1] - 1] * B + pt.last_len[s] - 1;
    for (bool cascade : {false, true}) {
      const DecodeWork w = decode_work(pt, cascade ? &st.cplan : nullptr, B, st.G, st.opt);
      std::vector<int> ending(static_cast<size_t>(pt.sequences), 0);
      for (int64_t i = 0; i < w.n_items(); ++i) {
        const int32_t* it = w.items.data() + DecodeWork::kItemFields * i;
        if (item_ends_at_new_token(it, w.q_order.data(), pt.indices, slots.data(), B))
          ++ending[w.q_order[it[0]]];
      }
      for (int64_t s = 0; s < pt.sequences; ++s)
        CHECK_MSG(ending[s] == 1, "sequence " + std::to_string(s) + " of " +
                                      std::to_string(pt.sequences) + " has " +
                                      std::to_string(ending[s]) + " items ending at its token (" +
                                      (cascade ? "cascade" : "flat") + ", B " + std::to_string(B) +
                                      ", prefix " + std::to_string(prefix) + ")");
      ++plans;
    }
  }
  std::printf("    %d plans\n", plans);
}

namespace {

// Many partials per query (split-KV items of one page, up to 64 a run, cascade on, several
// chunks of partials) and many queries per shared run: `kernel` attends, then the serial merge
// once and the staged merge `staged_runs` times, each staged run with the serial merge's bits
// and within `tol` (lse: `lse_tol`) of the reference.
void staged_merge_over_many_partials(Rng& rng, DevDType t, DecodeAttnKernel kernel, int64_t heads,
                                     int64_t kvh, int64_t D, int branches, int64_t prefix,
                                     int staged_runs, double tol, double lse_tol) {
  CudaContext& ctx = cuda_test_context();
  const int32_t B = 1;
  const int64_t blocks = prefix + 64 * branches + 64;
  KvCache kv(static_cast<int32_t>(blocks), B);
  ForkedTables f = forked_tables(rng, kv, prefix, branches);
  const PageTable pt = f.table();
  const bool bf16 = t == DevDType::kBF16;
  auto rounded = [&](std::vector<float> x) { return bf16 ? bf16_rounded(x) : x; };
  const auto k = rounded(random_vector(rng, blocks * B * kvh * D));
  const auto v = rounded(random_vector(rng, blocks * B * kvh * D));
  const int64_t n = pt.sequences;
  const auto q = rounded(random_vector(rng, n * heads * D));
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  PagedKv pk{k.data(), v.data(), B, kvh, D};
  auto ref = poisoned(n * heads * D), rl = poisoned(n * heads);
  decode_attention_reference(ref.data(), rl.data(), q.data(), heads, pk, pt, scale);
  DeviceBuffer dk = to_device(ctx, k, t), dv = to_device(ctx, v, t), dq = to_device(ctx, q, t);
  const DevicePagedKv dpk{dk.get(), dv.get(), B, kvh, D};
  const CascadePlan cplan = cascade_plan(pt, 1);
  DecodeWorkOptions opt;
  opt.min_pages_per_item = 1;
  opt.max_items_per_run = 64;
  const DecodeWork w = decode_work(pt, &cplan, B, heads / kvh, opt);
  int64_t most = 0;
  for (size_t qi = 0; qi + 1 < w.merge_ptr.size(); ++qi)
    most = std::max<int64_t>(most, w.merge_ptr[qi + 1] - w.merge_ptr[qi]);
  CHECK_MSG(most > 64, "expected more than two chunks of partials, got " + std::to_string(most));
  DeviceDecodePlan plan;
  CHECK_OK(plan.upload(ctx, w, pt, heads, D));
  const std::string what = std::string(dev_dtype_name(t)) + " heads " + std::to_string(heads) +
                           "/" + std::to_string(kvh) + " D " + std::to_string(D) + " branches " +
                           std::to_string(branches);
  std::vector<float> serial_out, serial_lse;
  for (int m = 0; m <= staged_runs; ++m) {  // serial, then staged
    DeviceBuffer out = poisoned_device(ctx, n * heads * D, t);
    DeviceBuffer lse = poisoned_device(ctx, n * heads, DevDType::kF32);
    CHECK_OK(decode_attention_cuda(ctx, t, plan, out.get(), lse.as<float>(), dq.get(), heads, dpk,
                                   scale, 0, kernel,
                                   m == 0 ? DecodeMerge::kSerial : DecodeMerge::kStaged));
    const auto got = to_host(ctx, out, n * heads * D, t);
    const auto gl = to_host(ctx, lse, n * heads, DevDType::kF32);
    if (m == 0) {
      serial_out = got;
      serial_lse = gl;
      continue;
    }
    CHECK_MSG(max_abs_diff(got, ref) < tol,
              what + ": staged merge vs reference " + std::to_string(max_abs_diff(got, ref)));
    CHECK_MSG(max_abs_diff(gl, rl) < lse_tol, what + ": lse vs reference");
    CHECK_MSG(std::memcmp(got.data(), serial_out.data(), 4 * got.size()) == 0 &&
                  std::memcmp(gl.data(), serial_lse.data(), 4 * gl.size()) == 0,
              what + ": staged run " + std::to_string(m) + " differs from the serial merge");
  }
}

}  // namespace

// After the SIMT attend kernel (fp32, D = 200: two outputs a thread).
TEST(cuda_decode_attention_staged_merge_over_many_partials) {
  Rng rng(172);
  staged_merge_over_many_partials(rng, DevDType::kF32, DecodeAttnKernel::kSimt, 8, 2, 200, 3, 301,
                                  1, 2e-5, 1e-4);
}

// After the tensor-core attend kernel (bf16), GQA 2, 4 and 1, launch after launch.
TEST(cuda_decode_attention_staged_merge_after_tensor_cores) {
  Rng rng(174);
  for (auto [heads, kvh, D, branches] :
       {std::tuple<int64_t, int64_t, int64_t, int>{16, 8, 128, 8}, {8, 2, 64, 4}, {4, 4, 128, 7}})
    staged_merge_over_many_partials(rng, DevDType::kBF16, DecodeAttnKernel::kMma, heads, kvh, D,
                                    branches, 211, 3, 1e-2, 1e-3);
}

#else
TEST(cuda_kv_pages_need_a_cuda_build) {
  SKIP("built without CUDA (NPR_CUDA=off or no nvcc)");
}
#endif

}  // namespace npr::test
