// The many-block plain sampler (sampler_plain_cuda.h, what sample_rows_cuda takes for plain
// params) and the one-block kernel (DeviceSamplerKernel::kOneBlock) against the CPU sampler: the
// same tokens and logprobs for temperatures below, at and above 1,
// the step-local penalty with repeats, masked tokens, vocabularies from 1 token to Qwen3's,
// rows read through a logit-row map; truncating params still take the one-block kernel; the
// same refusals.
#include <cmath>
#include <string>
#include <vector>

#include "sampler/sampler.h"
#include "tests/harness.h"
#include "tests/test_util.h"
#if defined(NPR_WITH_CUDA)
#include "sampler/sampler_cuda.h"
#include "sampler/sampler_plain_cuda.h"
#include "tests/test_cuda_util.h"
#endif

namespace npr::test {

#if defined(NPR_WITH_CUDA)

TEST(cuda_plain_sampling_is_only_the_untruncated_case) {
  CHECK(plain_sampling(SamplingParams{1.0f, 0, 1.0f, 0.0f, 0}, 100));
  CHECK(plain_sampling(SamplingParams{0.6f, 100, 1.0f, 0.0f, 0}, 100));  // top-k >= vocab: off
  CHECK(!plain_sampling(SamplingParams{0.0f, 0, 1.0f, 0.0f, 0}, 100));   // greedy
  CHECK(!plain_sampling(SamplingParams{1.0f, 20, 1.0f, 0.0f, 0}, 100));
  CHECK(!plain_sampling(SamplingParams{1.0f, 0, 0.95f, 0.0f, 0}, 100));
  CHECK(!plain_sampling(SamplingParams{1.0f, 0, 1.0f, 0.05f, 0}, 100));
}

TEST(cuda_plain_sampler_draws_the_cpu_tokens) {
  CudaContext& ctx = cuda_test_context();
  Rng rng(77);
  int cases = 0;
  for (int64_t vocab : {1, 37, 1000, 2048, 2049, 4099, 151936}) {
    const int64_t logit_rows = vocab > 10000 ? 3 : 7;
    auto logits = random_vector(rng, logit_rows * vocab);
    for (float& x : logits) x *= 7.0f;
    if (vocab > 8) logits[3] = logits[vocab + 5] = -INFINITY;  // masked tokens
    DeviceBuffer dl = to_device(ctx, logits, DevDType::kF32);
    const std::vector<int32_t> map = {2, 0, 2, 1, logit_rows > 3 ? 6 : 0, 1};  // repeats
    const int64_t R = static_cast<int64_t>(map.size());
    std::vector<int32_t> pen;
    for (int i = 0; i < 9; ++i) pen.push_back(static_cast<int32_t>(rng.below(vocab)));
    pen.push_back(pen[0]);  // a repeat: penalised once
    for (float temperature : {0.7f, 1.0f, 1.6f})
      for (float penalty : {1.0f, 1.3f}) {
        const SamplingParams p{temperature, 0, 1.0f, 0.0f, static_cast<uint64_t>(11 + cases)};
        std::vector<SampleRow> rows(map.size());
        for (int64_t r = 0; r < R; ++r)
          rows[r] = SampleRow{logits.data() + map[r] * vocab,   r % 2,  r, 500 + r * 7, pen.data(),
                              static_cast<int32_t>(pen.size()), penalty};
        std::vector<SampleResult> want(map.size()), got(map.size());
        CHECK_OK(sample_rows(CpuContext{}, want.data(), rows.data(), R, vocab, p));
        for (auto kernel : {DeviceSamplerKernel::kAuto, DeviceSamplerKernel::kOneBlock}) {
          for (SampleResult& g : got) g.token = -1;  // poisoned: a row left unwritten fails
          CHECK_OK(sample_rows_cuda(ctx, got.data(), dl.as<float>(), rows.data(), R, vocab, p,
                                    map.data(), logit_rows, kernel));
          for (int64_t r = 0; r < R; ++r) {
            const std::string what =
                std::string(kernel == DeviceSamplerKernel::kAuto ? "many-block" : "one-block") +
                " vocab " + std::to_string(vocab) + " T " + std::to_string(temperature) +
                " penalty " + std::to_string(penalty) + " row " + std::to_string(r);
            CHECK_MSG(got[r].token == want[r].token, what + ": token " +
                                                         std::to_string(got[r].token) + " vs " +
                                                         std::to_string(want[r].token));
            CHECK_MSG(std::fabs(got[r].logprob - want[r].logprob) < 1e-5f &&
                          std::fabs(got[r].logprob_sampling - want[r].logprob_sampling) < 1e-5f,
                      what + ": logprobs " + std::to_string(got[r].logprob) + " / " +
                          std::to_string(got[r].logprob_sampling) + " vs " +
                          std::to_string(want[r].logprob) + " / " +
                          std::to_string(want[r].logprob_sampling));
          }
        }
        ++cases;
      }
  }
  std::printf("    %d plain sampler cases\n", cases);
}

TEST(cuda_plain_sampler_draws_many_seeds_like_the_cpu) {
  CudaContext& ctx = cuda_test_context();
  Rng rng(78);
  const int64_t vocab = 5000, R = 64;  // three chunks; many draws cross chunk boundaries
  auto logits = random_vector(rng, vocab);
  for (float& x : logits) x *= 0.5f;  // a flat distribution: draws land everywhere
  DeviceBuffer dl = to_device(ctx, logits, DevDType::kF32);
  std::vector<SampleRow> rows(static_cast<size_t>(R));
  std::vector<int32_t> map(static_cast<size_t>(R), 0);
  for (int64_t r = 0; r < R; ++r) rows[r] = SampleRow{logits.data(), 3, r, r, nullptr, 0, 1.0f};
  const SamplingParams p{1.0f, 0, 1.0f, 0.0f, 5};
  std::vector<SampleResult> want(static_cast<size_t>(R)), got(static_cast<size_t>(R));
  CHECK_OK(sample_rows(CpuContext{}, want.data(), rows.data(), R, vocab, p));
  CHECK_OK(
      sample_rows_cuda(ctx, got.data(), dl.as<float>(), rows.data(), R, vocab, p, map.data(), 1));
  int same = 0, later_chunk = 0;
  for (int64_t r = 0; r < R; ++r) {
    same += got[r].token == want[r].token;
    later_chunk += want[r].token >= kPlainSamplerChunk;
  }
  CHECK_MSG(same == R, std::to_string(R - same) + " of " + std::to_string(R) + " draws differ");
  CHECK_MSG(later_chunk > 0, "no draw passed the first chunk; the test lost its point");
}

TEST(cuda_plain_sampler_refuses_like_the_cpu) {
  CudaContext& ctx = cuda_test_context();
  for (int kind = 0; kind < 3; ++kind) {
    std::vector<float> x(6000, 0.5f);
    if (kind == 0) x[4500] = NAN;
    if (kind == 1) x[17] = INFINITY;
    if (kind == 2)
      for (float& v : x) v = -INFINITY;
    DeviceBuffer dl = to_device(ctx, x, DevDType::kF32);
    SampleRow row{x.data(), 0, 0, 0, nullptr, 0, 1.0f};
    SampleResult want, got;
    const SamplingParams p{1.0f, 0, 1.0f, 0.0f, 1};
    const Status sc = sample_rows(CpuContext{}, &want, &row, 1, 6000, p);
    const Status sg = sample_rows_cuda(ctx, &got, dl.as<float>(), &row, 1, 6000, p);
    CHECK_MSG(!sc.is_ok() && sg.code() == sc.code(),
              "cpu: " + sc.to_string() + " / cuda: " + sg.to_string());
  }
}

#else
TEST(cuda_plain_sampler_needs_a_cuda_build) {
  SKIP("built without CUDA (NPR_CUDA=off or no nvcc)");
}
#endif

}  // namespace npr::test
