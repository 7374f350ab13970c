// Core pieces: the thread pool, bf16 conversion, tensor checks, SIMD detection, the FMA probe,
// the huge-page buffers.
#include <atomic>
#include <cmath>
#include <cstdint>
#include <thread>
#include <vector>

#include "core/cpu_info.h"
#include "core/dtype.h"
#include "core/huge_pages.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "kernels/fma_peak.h"
#include "tests/harness.h"

namespace npr::test {

TEST(huge_page_buffers_hold_their_contents_and_large_ones_sit_on_2mib_boundaries) {
  // Sizes around the threshold and odd ones; the large ones are 2 MiB aligned whether or not
  // the kernel grants huge pages (the advice alone may be refused).
  for (size_t n : {size_t{0}, size_t{1}, size_t{1000}, (kHugeMin / 4) - 1, kHugeMin / 4,
                   (size_t{9} << 20) / 4 + 3}) {
    HugeFloats v;
    v.assign(n, 1.5f);
    CHECK(v.size() == n);
    if (n * sizeof(float) >= kHugeMin)
      CHECK(reinterpret_cast<uintptr_t>(v.data()) % kHugePage == 0);
    bool same = true;
    for (size_t i = 0; i < n; i += 997) same &= v[i] == 1.5f;
    if (n > 0) same &= v[n - 1] == 1.5f;
    CHECK(same);
    v.resize(n + 5, 2.0f);  // a regrow copies into a new buffer and frees the old one
    CHECK(v[n + 4] == 2.0f && (n == 0 || v[0] == 1.5f));
  }
}

TEST(thread_pool_runs_every_task_once) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    CHECK(pool.size() == threads);
    for (int64_t n : {0, 1, 2, 7, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      for (auto& h : hits) h.store(0);
      std::atomic<int> bad_worker{0};
      pool.parallel_for(n, [&](int64_t task, int worker) {
        hits[task].fetch_add(1);
        if (worker < 0 || worker >= threads) bad_worker.fetch_add(1);
      });
      for (auto& h : hits) CHECK(h.load() == 1);
      CHECK(bad_worker.load() == 0);
    }
  }
}

TEST(thread_pool_nested_and_concurrent_calls) {
  ThreadPool pool(3);
  std::atomic<int64_t> sum{0};
  pool.parallel_for(4, [&](int64_t outer, int) {
    pool.parallel_for(5, [&](int64_t inner, int) { sum.fetch_add(outer * 10 + inner); });
  });
  CHECK(sum.load() == (0 + 10 + 20 + 30) * 5 + 4 * (0 + 1 + 2 + 3 + 4));
  // Two threads submitting at once are serialised, not interleaved into one job.
  std::atomic<int64_t> a{0}, b{0};
  std::thread other([&] {
    for (int r = 0; r < 200; ++r) pool.parallel_for(16, [&](int64_t, int) { a.fetch_add(1); });
  });
  for (int r = 0; r < 200; ++r) pool.parallel_for(16, [&](int64_t, int) { b.fetch_add(1); });
  other.join();
  CHECK(a.load() == 200 * 16);
  CHECK(b.load() == 200 * 16);
}

TEST(bf16_round_trip_and_rounding) {
  for (float f : {0.0f, 1.0f, -2.5f, 3.140625f, 65504.0f, 1e-30f}) {
    CHECK(bf16_to_f32(f32_to_bf16(f)) == f || std::fabs(f) < 1e-20f ||
          std::fabs(bf16_to_f32(f32_to_bf16(f)) - f) <= std::fabs(f) * (1.0f / 128));
  }
  // 1 + 2^-8 is halfway between two bf16 values: ties go to even (1.0).
  CHECK(bf16_to_f32(f32_to_bf16(1.0f + 1.0f / 256)) == 1.0f);
  CHECK(bf16_to_f32(f32_to_bf16(1.0f + 3.0f / 256)) == 1.0f + 4.0f / 256);
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
  CHECK(std::isinf(bf16_to_f32(f32_to_bf16(INFINITY))));
}

TEST(tensor_view_checks_name_the_tensor) {
  float data[6];
  TensorView t = TensorView::contiguous(data, DType::kF32, {2, 3});
  CHECK(t.numel() == 6);
  CHECK(t.is_contiguous());
  CHECK(t.strides[0] == 3 && t.strides[1] == 1);
  CHECK_OK(check_tensor(t, "x", DType::kF32, {2, 3}));
  Status st = check_tensor(t, "weights", DType::kBF16, {3, 2});
  CHECK(st.code() == StatusCode::kInvalidArgument);
  CHECK(st.message() == "weights: expected [3, 2] bf16, got [2, 3] f32");
  int64_t out = 0;
  CHECK(!mul_overflows(1 << 20, 1 << 20, &out) && out == (int64_t{1} << 40));
  CHECK(mul_overflows(int64_t{1} << 40, int64_t{1} << 40, &out));
  CHECK(mul_overflows(-1, 2, &out));
}

TEST(simd_detection_and_fma_probe) {
  SimdLevel level;
  CHECK(parse_simd("avx2", &level) && level == SimdLevel::kAvx2);
  CHECK(!parse_simd("sse9", &level));
  SimdLevel best = detect_simd();
  CHECK_OK(check_simd(best));
  CHECK_OK(check_simd(SimdLevel::kScalar));
  if (best != SimdLevel::kAvx512)
    CHECK(check_simd(SimdLevel::kAvx512).code() == StatusCode::kUnavailable);
  double g = 0.0;
  CHECK_OK(fma_peak_gflops(best, 0.05, &g));
  CHECK(g > 1.0);
  CHECK(fma_peak_gflops(best, -1.0, &g).code() == StatusCode::kOutOfRange);
}

}  // namespace npr::test
