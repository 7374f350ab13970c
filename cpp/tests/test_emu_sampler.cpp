// The device sampler run by the CPU emulator (cpp/tests/emu), against the CPU sampler, as
// test_cuda_sampler_plain.cpp and test_cuda_decode.cpp check it on a GPU: the same tokens and
// logprobs for greedy, temperature, top-k, top-p, min-p and all of them with the step-local
// repetition penalty (repeats in its token list, ties at the top, masked tokens), on the one-block
// kernel and on the many-block plain kernels, vocabularies from 1 token to past one plain chunk,
// rows read through a logit-row map; draws across a chunk boundary for many seeds; and the same
// refusals (NaN, +inf, nothing finite). CI runs the sampler's host code (staging, the penalty
// bitmaps, scratch carving) and kernels here on every machine with the toolkit's headers.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "sampler/sampler.h"
#include "sampler/sampler_plain_cuda.h"
#include "tests/harness.h"
#include "tests/test_util.h"
#if defined(NPR_HAVE_EMU)
#include "tests/emu/emu_sampler.h"
#endif

namespace npr::test {

#if defined(NPR_HAVE_EMU)
namespace {

struct Mode {
  const char* name;
  SamplingParams p;
  float penalty;
};

std::vector<emu::SamplerRow> plain_rows(const std::vector<SampleRow>& rows) {
  std::vector<emu::SamplerRow> out;
  for (const SampleRow& r : rows)
    out.push_back(emu::SamplerRow{r.request, r.branch, r.index, r.penalty_tokens, r.penalty_count,
                                  r.repetition_penalty});
  return out;
}

// The CPU sampler's results for rows (their logits pointers set), against the device's for the
// same rows over logits through map; "" or what differs first.
std::string compare(const std::vector<float>& logits, int64_t logit_rows, int64_t vocab,
                    const std::vector<SampleRow>& rows, const std::vector<int32_t>& map,
                    const SamplingParams& p, bool one_block) {
  const int64_t R = static_cast<int64_t>(rows.size());
  std::vector<SampleResult> want(rows.size());
  const Status s =
      sample_rows(CpuContext{nullptr, detect_simd()}, want.data(), rows.data(), R, vocab, p);
  if (!s.is_ok()) return "the CPU sampler: " + s.to_string();
  std::vector<emu::SamplerResult> got(rows.size());
  const std::vector<emu::SamplerRow> pr = plain_rows(rows);
  const std::string err = emu::sample_on_device(
      logits.data(), logit_rows, vocab, pr.data(), map.data(), R,
      emu::SamplerParams{p.temperature, p.top_k, p.top_p, p.min_p, p.seed}, one_block, got.data());
  if (!err.empty()) return err;
  for (int64_t r = 0; r < R; ++r) {
    if (got[r].token != want[r].token)
      return "row " + std::to_string(r) + ": token " + std::to_string(got[r].token) + " vs " +
             std::to_string(want[r].token);
    if (std::fabs(got[r].logprob - want[r].logprob) >= 1e-5f ||
        std::fabs(got[r].logprob_sampling - want[r].logprob_sampling) >= 1e-5f)
      return "row " + std::to_string(r) + ": logprobs " + std::to_string(got[r].logprob) + " / " +
             std::to_string(got[r].logprob_sampling) + " vs " + std::to_string(want[r].logprob) +
             " / " + std::to_string(want[r].logprob_sampling);
  }
  return {};
}

}  // namespace
#endif

TEST(emu_device_sampler_draws_the_cpu_samplers_tokens) {
#if !defined(NPR_HAVE_EMU)
  SKIP("the kernel emulator is not built (no CUDA toolkit headers, or NPR_EMU=off)");
#else
  const Mode modes[] = {
      {"greedy", {0.0f, 0, 1.0f, 0.0f, 1}, 1.0f},
      {"temperature 0.7", {0.7f, 0, 1.0f, 0.0f, 2}, 1.0f},
      {"temperature 1.6 + penalty", {1.6f, 0, 1.0f, 0.0f, 3}, 1.3f},
      {"top-k", {1.0f, 20, 1.0f, 0.0f, 4}, 1.0f},
      {"top-p", {1.0f, 0, 0.9f, 0.0f, 5}, 1.0f},
      {"min-p", {0.7f, 0, 1.0f, 0.05f, 6}, 1.0f},
      {"all + penalty", {0.6f, 50, 0.95f, 0.02f, 7}, 1.3f},
      {"greedy + penalty", {0.0f, 0, 1.0f, 0.0f, 8}, 1.5f},
  };
  Rng rng(91);
  int cases = 0;
  for (int64_t vocab : {1, 37, 1000, 4099}) {
    const int64_t logit_rows = 5;
    std::vector<float> logits = random_vector(rng, logit_rows * vocab);
    for (float& x : logits) x *= 6.0f;
    if (vocab > 8) logits[3] = logits[vocab + 5] = -INFINITY;  // masked tokens
    if (vocab >= 1000) logits[7] = logits[8] = 12.0f;          // a tie at the top
    const std::vector<int32_t> map = {2, 0, 2, 1, 4, 1};       // repeats
    std::vector<int32_t> pen;
    for (int i = 0; i < 9; ++i) pen.push_back(static_cast<int32_t>(rng.below(vocab)));
    pen.push_back(pen[0]);  // a repeat: penalised once
    for (const Mode& m : modes) {
      std::vector<SampleRow> rows(map.size());
      for (size_t r = 0; r < map.size(); ++r)
        rows[r] = SampleRow{logits.data() + map[r] * vocab,
                            static_cast<int64_t>(r % 2),
                            static_cast<int64_t>(r),
                            static_cast<int64_t>(500 + 7 * r),
                            pen.data(),
                            static_cast<int32_t>(pen.size()),
                            m.penalty};
      for (bool one_block : {false, true}) {
        const std::string err = compare(logits, logit_rows, vocab, rows, map, m.p, one_block);
        CHECK_MSG(err.empty(), std::string(m.name) + ", vocab " + std::to_string(vocab) +
                                   (one_block ? ", one-block kernel: " : ", auto kernel: ") + err);
        ++cases;
      }
    }
  }
  std::printf("    %d cases compared with the CPU sampler (tokens exact, logprobs within 1e-5)\n",
              cases);

  // Many seeds over a flat distribution of three plain chunks: draws cross chunk boundaries.
  const int64_t vocab = 5000, R = 48;
  std::vector<float> flat = random_vector(rng, vocab);
  for (float& x : flat) x *= 0.5f;
  std::vector<SampleRow> rows(static_cast<size_t>(R));
  for (int64_t r = 0; r < R; ++r) rows[r] = SampleRow{flat.data(), 3, r, r, nullptr, 0, 1.0f};
  const std::vector<int32_t> zero(static_cast<size_t>(R), 0);
  const SamplingParams plain{1.0f, 0, 1.0f, 0.0f, 5};
  CHECK_MSG(compare(flat, 1, vocab, rows, zero, plain, false).empty(),
            "many seeds: " + compare(flat, 1, vocab, rows, zero, plain, false));
  std::vector<SampleResult> want(static_cast<size_t>(R));
  CHECK_OK(sample_rows(CpuContext{}, want.data(), rows.data(), R, vocab, plain));
  int later_chunk = 0;
  for (const SampleResult& w : want) later_chunk += w.token >= kPlainSamplerChunk;
  CHECK_MSG(later_chunk > 0, "no draw passed the first chunk; the case lost its point");

  // The same refusals as the CPU: a NaN, +inf, no finite logit.
  for (int kind = 0; kind < 3; ++kind) {
    std::vector<float> x(6000, 0.5f);
    if (kind == 0) x[4500] = NAN;
    if (kind == 1) x[17] = INFINITY;
    if (kind == 2)
      for (float& v : x) v = -INFINITY;
    const SampleRow row{x.data(), 0, 0, 0, nullptr, 0, 1.0f};
    SampleResult w;
    const Status sc = sample_rows(CpuContext{}, &w, &row, 1, 6000, plain);
    const int32_t map0 = 0;
    for (bool one_block : {false, true}) {
      emu::SamplerResult g;
      const emu::SamplerRow pr{0, 0, 0, nullptr, 0, 1.0f};
      const std::string err =
          emu::sample_on_device(x.data(), 1, 6000, &pr, &map0, 1,
                                emu::SamplerParams{1.0f, 0, 1.0f, 0.0f, 1}, one_block, &g);
      const std::string code = sc.to_string().substr(0, sc.to_string().find(':'));
      CHECK_MSG(!sc.is_ok() && err.rfind(code + ":", 0) == 0, "refusal " + std::to_string(kind) +
                                                                  ": cpu \"" + sc.to_string() +
                                                                  "\", device \"" + err + "\"");
    }
  }
#endif
}

// The plain kernels' chunk sums, each under its own chunk's maxima, rescaled to the row's: rows
// whose chunks sit at different heights (one chunk wholly masked), sampled raw and processed (a
// penalty and temperature 0.8, where the processed logits' stats are their own), draws spread
// over the chunks; and a row of more chunks than the pick's threads, where a thread holds two.
TEST(emu_plain_sampler_rescales_chunk_sums_to_the_row) {
#if !defined(NPR_HAVE_EMU)
  SKIP("the kernel emulator is not built (no CUDA toolkit headers, or NPR_EMU=off)");
#else
  Rng rng(93);
  const float heights[] = {0.0f, 1.2f, -0.8f, 0.0f, 1.5f, 0.4f, -1.0f, 0.9f, 0.2f, 0.7f};
  for (const int64_t vocab : {9 * kPlainSamplerChunk + 77, 257 * kPlainSamplerChunk + 5}) {
    const int64_t chunks = (vocab + kPlainSamplerChunk - 1) / kPlainSamplerChunk;
    const bool many = chunks > 256;  // more chunks than the pick kernel's threads
    std::vector<float> logits = random_vector(rng, vocab);
    for (int64_t t = 0; t < vocab; ++t) {
      const int64_t c = t / kPlainSamplerChunk;
      logits[t] = 1.5f * logits[t] + heights[c % 10];
      if (c == 3) logits[t] = -INFINITY;  // a wholly masked chunk: its maxima are -inf
    }
    const int64_t R = many ? 6 : 40;
    std::vector<int32_t> pen;
    for (int i = 0; i < 40; ++i) pen.push_back(static_cast<int32_t>(rng.below(vocab)));
    const std::vector<int32_t> map(static_cast<size_t>(R), 0);
    for (const bool processed : {false, true}) {
      const SamplingParams p{processed ? 0.8f : 1.0f, 0, 1.0f, 0.0f, processed ? 31u : 32u};
      std::vector<SampleRow> rows(static_cast<size_t>(R));
      for (int64_t r = 0; r < R; ++r)
        rows[r] = SampleRow{
            logits.data(),          2, r, 900 + r, pen.data(), static_cast<int32_t>(pen.size()),
            processed ? 1.4f : 1.0f};
      const std::string err = compare(logits, 1, vocab, rows, map, p, false);
      CHECK_MSG(err.empty(), "vocab " + std::to_string(vocab) +
                                 (processed ? ", penalty + temperature 0.8: " : ", raw: ") + err);
      std::vector<SampleResult> want(static_cast<size_t>(R));
      CHECK_OK(sample_rows(CpuContext{}, want.data(), rows.data(), R, vocab, p));
      std::vector<int> hit(static_cast<size_t>(chunks), 0);
      int spread = 0;
      for (const SampleResult& w : want) spread += hit[w.token / kPlainSamplerChunk]++ == 0;
      CHECK_MSG(spread >= (many ? 3 : 5), "draws landed in only " + std::to_string(spread) +
                                              " chunks; the case lost its point");
    }
  }
#endif
}

}  // namespace npr::test
