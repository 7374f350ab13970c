// emu_selftest.h's run_cuda_api_selftest: a tiny kernel and CudaContext on the emulated device.
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/block_reduce.cuh"
#include "core/cuda_check.cuh"
#include "core/cuda_context.h"
#include "core/cuda_launch.cuh"
#include "core/dynamic_shared.cuh"
#include "tests/emu/emu_selftest.h"
#include "tests/emu/emu_status_message.h"

namespace emu {

namespace {

#define EMU_TRY(expr)                                       \
  do {                                                      \
    const ::npr::Status emu_try_s_ = (expr);                \
    if (!emu_try_s_.is_ok()) return emu_try_s_.to_string(); \
  } while (0)

// out[i] = i for i < n (n may pass the allocation: the broken kind).
__global__ void iota_kernel(float* out, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) out[i] = static_cast<float>(i);
}

// A 3-D block of (8, 4, 2) threads: each writes, at its linear index x + 8 (y + 4 z) of its
// block's 64 floats, the index of the lane beside it in its warp (its own index with bit 0
// flipped, where threads are numbered as CUDA numbers them).
__global__ void block_3d_kernel(float* out) {
  const unsigned linear = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const float mate = __shfl_xor_sync(0xffffffffu, static_cast<float>(linear), 1);
  out[blockIdx.x * 64 + linear] = mate;
}

// A block of 256 threads: out[i] = the sum of the values of threads 0 .. i - 1 by
// block_exclusive_sum (thread j's value (7 j) % 13, whole numbers: every sum exact), and out[256]
// the block's total; rev[i] = lane (31 - lane)'s value, each lane naming its own source.
__global__ void block_scan_kernel(double* out, int* rev) {
  NPR_STATIC_SHARED(double, sh, [8]);
  const int i = static_cast<int>(threadIdx.x), lane = i & 31;
  const npr::BlockSum<double> s =
      npr::block_exclusive_sum<8>(static_cast<double>((7 * i) % 13), sh);
  out[i] = s.before;
  if (i == 0) out[256] = s.total;
  rev[i] = __shfl_sync(0xffffffffu, i, 31 - lane);
}

std::string check_block_scan(npr::CudaContext& ctx) {
  npr::DeviceBuffer sums, rev;
  EMU_TRY(sums.grow(ctx.alloc(), 8 * 257, "selftest sums"));
  EMU_TRY(rev.grow(ctx.alloc(), 4 * 256, "selftest lanes"));
  NPR_LAUNCH(1, 256, 0, static_cast<cudaStream_t>(ctx.stream()), block_scan_kernel)
  (sums.as<double>(), rev.as<int>());
  EMU_TRY(npr::cuda_launch_status("selftest block scan"));
  std::vector<double> got(257);
  std::vector<int> lanes(256);
  EMU_TRY(ctx.download(got.data(), sums.get(), 8 * 257, "selftest download"));
  EMU_TRY(ctx.download(lanes.data(), rev.get(), 4 * 256, "selftest download"));
  double want = 0.0;
  for (int i = 0; i < 256; ++i) {
    if (got[i] != want)
      return "thread " + std::to_string(i) + " got " + std::to_string(got[i]) + " before it, not " +
             std::to_string(want);
    want += static_cast<double>((7 * i) % 13);
    if (lanes[i] != (i & ~31) + 31 - (i & 31))
      return "lane " + std::to_string(i) + " read thread " + std::to_string(lanes[i]);
  }
  if (got[256] != want) return "the total was " + std::to_string(got[256]);
  return {};
}

// Uploads of many sizes through the context's page-locked staging (and one past a staging
// block, straight from its source), each source overwritten as soon as its upload returns, each
// read back; enough bytes that the staging ring comes round several times.
std::string check_staged_copies(npr::CudaContext& ctx) {
  constexpr int64_t kBytes = 320 << 10;  // past npr::HostStaging::kBlockBytes
  npr::DeviceBuffer buf;
  EMU_TRY(buf.grow(ctx.alloc(), kBytes, "selftest staged buffer"));
  std::vector<unsigned char> src(kBytes), got(kBytes);
  int64_t total = 0;
  for (int i = 0; total < 6 * npr::HostStaging::kBlocks * npr::HostStaging::kBlockBytes; ++i) {
    const int64_t n = i % 17 == 16 ? kBytes : 1 + (int64_t{i} * 40009) % (250 << 10);
    for (int64_t b = 0; b < n; ++b) src[b] = static_cast<unsigned char>(b * 7 + i);
    EMU_TRY(ctx.upload(buf.get(), src.data(), n, "selftest staged upload"));
    std::fill(src.begin(), src.begin() + n, static_cast<unsigned char>(0));  // reused at once
    EMU_TRY(ctx.download(got.data(), buf.get(), n, "selftest staged download"));
    for (int64_t b = 0; b < n; ++b)
      if (got[b] != static_cast<unsigned char>(b * 7 + i))
        return "upload " + std::to_string(i) + " of " + std::to_string(n) + " bytes: byte " +
               std::to_string(b) + " read back wrong";
    total += n;
  }
  if (ctx.staging().turns() < 2 * npr::HostStaging::kBlocks)
    return "the staging ring turned only " + std::to_string(ctx.staging().turns()) + " times";
  return {};
}

// The same through the ring with no sync between the uploads: each into its own region of a
// device buffer, its source rewritten at once, all read back after one sync at the end. The
// copies run only at that sync (deferred mode), so a staging block the ring refilled before the
// stream had passed its copies would show as another upload's bytes.
std::string check_staged_copies_unsynced(npr::CudaContext& ctx) {
  constexpr int64_t kTotal = 5 * npr::HostStaging::kBlocks * npr::HostStaging::kBlockBytes / 2;
  npr::DeviceBuffer buf;
  EMU_TRY(buf.grow(ctx.alloc(), kTotal + (64 << 10), "selftest staged buffer"));
  std::vector<unsigned char> src(64 << 10);
  std::vector<int64_t> at, len;  // (uploads) each upload's offset and bytes
  for (int64_t total = 0, i = 0; total < kTotal; ++i) {
    const int64_t n = 1 + (i * 7919) % (64 << 10);
    for (int64_t b = 0; b < n; ++b) src[b] = static_cast<unsigned char>(b * 13 + i * 5);
    EMU_TRY(
        ctx.upload(static_cast<char*>(buf.get()) + total, src.data(), n, "selftest staged upload"));
    std::fill(src.begin(), src.begin() + n, static_cast<unsigned char>(0));
    at.push_back(total);
    len.push_back(n);
    total += n;
  }
  EMU_TRY(ctx.sync("selftest sync"));
  if (ctx.staging().turns() < 2 * npr::HostStaging::kBlocks)
    return "the staging ring turned only " + std::to_string(ctx.staging().turns()) + " times";
  std::vector<unsigned char> got(kTotal + (64 << 10));
  EMU_TRY(npr::cuda_status(cudaMemcpy(got.data(), buf.get(), got.size(), cudaMemcpyDeviceToHost),
                           "selftest read"));
  for (size_t i = 0; i < at.size(); ++i)
    for (int64_t b = 0; b < len[i]; ++b)
      if (got[at[i] + b] != static_cast<unsigned char>(b * 13 + static_cast<int64_t>(i) * 5))
        return "upload " + std::to_string(i) + " of " + std::to_string(len[i]) + " bytes: byte " +
               std::to_string(b) + " read back wrong";
  return {};
}

// What deferred mode gives a caller, as a GPU does: a kernel's result is not there before a
// sync; a page-locked source is read when the copy runs (so rewriting it early is seen), a
// pageable one when the call returns; a copy into page-locked memory lands at the sync; an
// event's sync runs the work up to its record and no further.
std::string check_deferred(npr::CudaContext& ctx, float* dev, int n) {
  cudaStream_t st = static_cast<cudaStream_t>(ctx.stream());
  void* pinned_raw = nullptr;
  EMU_TRY(npr::cuda_status(cudaHostAlloc(&pinned_raw, 8 * n, 0), "selftest pinned"));
  auto* pinned = static_cast<float*>(pinned_raw);
  std::string out;
  auto expect = [&](bool ok, const char* what) {
    if (!ok && out.empty()) out = what;
  };
  std::vector<float> page(n, 5.0f);
  std::fill(pinned, pinned + 2 * n, 7.0f);
  cudaMemcpyAsync(dev, page.data(), 4 * n, cudaMemcpyHostToDevice, st);
  page[0] = -1.0f;  // after the call: a pageable source's bytes are already taken
  cudaMemcpyAsync(dev + 1, pinned, 4, cudaMemcpyHostToDevice, st);
  pinned[0] = 9.0f;  // before the copy has run: a page-locked source is read then
  cudaMemcpyAsync(pinned + n, dev, 4 * n, cudaMemcpyDeviceToHost, st);
  expect(pinned[n] == 7.0f, "a copy into page-locked memory landed before a sync");
  cudaEvent_t ev = nullptr;
  cudaEventCreate(&ev);
  cudaEventRecord(ev, st);
  NPR_LAUNCH(1, 32, 0, st, iota_kernel)(dev, n);  // after the event
  cudaEventSynchronize(ev);
  expect(pinned[n] == 5.0f && pinned[n + 1] == 9.0f,
         "the event's sync did not run the copies before its record, as they were when run");
  expect(dev[2] == 5.0f, "the event's sync ran a launch after its record");
  cudaStreamSynchronize(st);
  expect(dev[2] == 2.0f, "the stream's sync did not run the launch");
  cudaEventDestroy(ev);
  cudaFreeHost(pinned);
  return out;
}

// Eager mode (set_deferred(false), NPR_EMU_EAGER=1): a launch's result is there when it returns.
std::string check_eager(npr::CudaContext& ctx, float* dev, int n) {
  const bool was = deferred();
  set_deferred(false);
  NPR_LAUNCH(1, 32, 0, static_cast<cudaStream_t>(ctx.stream()), iota_kernel)(dev, n);
  const bool ran = dev[3] == 3.0f;
  set_deferred(was);
  return ran ? std::string() : "an eager launch had not run when it returned";
}

cudaError_t launch_iota(float* out, int n, unsigned blocks, int smem, bool cooperative) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(blocks);
  cfg.blockDim = dim3(32);
  cfg.dynamicSmemBytes = static_cast<size_t>(smem);
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeCooperative;
  attr[0].val.cooperative = cooperative ? 1 : 0;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  return cudaLaunchKernelEx(&cfg, iota_kernel, out, n);
}

std::string run(const std::string& kind, npr::CudaContext& ctx) {
  constexpr int kFloats = 64;
  npr::DeviceBuffer buf;
  EMU_TRY(buf.grow(ctx.alloc(), 4 * kFloats, "selftest buffer"));
  if (kind == "poisoned") {
    std::vector<unsigned char> got(4 * kFloats);
    EMU_TRY(ctx.download(got.data(), buf.get(), 4 * kFloats, "selftest download"));
    for (unsigned char c : got)
      if (c != 0xff) return "a fresh allocation held " + std::to_string(c);
    return {};
  }
  if (kind == "copy_past_end") {
    std::vector<float> host(kFloats + 1, 1.0f);
    return status_message(ctx.upload(buf.get(), host.data(), 4 * (kFloats + 1), "selftest upload"));
  }
  if (kind == "error_then_launch") {  // the failed copy's error is its own, not the launch's
    std::vector<float> host(kFloats + 1, 1.0f);
    if (ctx.upload(buf.get(), host.data(), 4 * (kFloats + 1), "selftest upload").is_ok())
      return "an upload past the allocation went through";
  }
  if (kind == "block_3d" || kind == "block_too_large") {
    const dim3 block = kind == "block_3d" ? dim3(8, 4, 2) : dim3(32, 32, 2);
    NPR_LAUNCH(1, block, 0, static_cast<cudaStream_t>(ctx.stream()), block_3d_kernel)
    (buf.as<float>());
    EMU_TRY(npr::cuda_launch_status("selftest 3-D block launch"));
    std::vector<float> got(kFloats);
    EMU_TRY(ctx.download(got.data(), buf.get(), 4 * kFloats, "selftest download"));
    for (int i = 0; i < kFloats; ++i)
      if (got[i] != static_cast<float>(i ^ 1))
        return "thread " + std::to_string(i) + "'s neighbour was " + std::to_string(got[i]);
    return {};
  }
  if (kind == "grid_y_too_large") {  // y is at most 65,535 blocks (x up to 2^31 - 1)
    NPR_LAUNCH(dim3(1, 65536), 32, 0, static_cast<cudaStream_t>(ctx.stream()), iota_kernel)
    (buf.as<float>(), 0);
    return status_message(npr::cuda_launch_status("selftest 65,536-row grid launch"));
  }
  if (kind == "block_scan") return check_block_scan(ctx);
  if (kind == "staged_copies") return check_staged_copies(ctx);
  if (kind == "staged_copies_unsynced") return check_staged_copies_unsynced(ctx);
  if (kind == "deferred") {  // in deferred mode whatever the environment asked
    const bool was = deferred();
    set_deferred(true);
    const std::string got = check_deferred(ctx, buf.as<float>(), kFloats);
    set_deferred(was);
    return got;
  }
  if (kind == "eager") return check_eager(ctx, buf.as<float>(), kFloats);
  if (kind == "fault_is_sticky") {  // what each call returns after a kernel writes past its buffer
    std::string seen;
    const auto note = [&](const char* what, cudaError_t e) {
      seen += std::string(seen.empty() ? "" : "; ") + what + ": " + cudaGetErrorName(e);
    };
    note("launch", launch_iota(buf.as<float>(), kFloats + 1, 3, 0, false));
    note("launch check", cudaGetLastError());
    std::vector<float> got(kFloats);
    note("download", cudaMemcpy(got.data(), buf.get(), 4 * kFloats, cudaMemcpyDeviceToHost));
    note("next launch", launch_iota(buf.as<float>(), kFloats, 3, 0, false));
    note("last error", cudaGetLastError());
    note("again", cudaGetLastError());
    return seen;
  }
  if (kind == "out_of_memory") {
    npr::DeviceBuffer big;
    return status_message(big.grow(ctx.alloc(), 2 << 20, "selftest big buffer"));
  }
  const int n = kind == "write_past_end" ? kFloats + 1 : kFloats;
  const unsigned blocks = kind == "cooperative_too_large"
                              ? static_cast<unsigned>(occupancy(32, 0) * device().sms + 1)
                              : 3;  // 96 threads
  const int smem = kind == "shared_without_opt_in" ? 64 * 1024 : 0;
  EMU_TRY(npr::cuda_status(launch_iota(buf.as<float>(), n, blocks, smem, kind != "write_past_end"),
                           "selftest launch"));
  EMU_TRY(npr::cuda_launch_status("selftest launch"));  // a fault is found later, as on a GPU
  std::vector<float> got(kFloats);
  EMU_TRY(ctx.download(got.data(), buf.get(), 4 * kFloats, "selftest download"));
  for (int i = 0; i < kFloats; ++i)
    if (got[i] != static_cast<float>(i)) return "the kernel wrote " + std::to_string(got[i]);
  return {};
}

}  // namespace

std::string run_cuda_api_selftest(const std::string& kind) {
  const Device before = device();
  Device d;
  d.sms = 3;
  d.memory = kind == "staged_copies_unsynced" ? 16 << 20 : 1 << 20;
  set_device(d);
  std::string out;
  {
    std::unique_ptr<npr::CudaContext> ctx;
    out = status_message(npr::CudaContext::create(&ctx));
    if (out.empty()) out = run(kind, *ctx);
  }
  if (device_bytes_in_use() != 0 || device_allocations() != 0)
    out += " (and " + std::to_string(device_bytes_in_use()) + " bytes left allocated)";
  cudaDeviceReset();  // a fault's sticky error ends here, as with the process on a GPU
  set_device(before);
  return out;
}

}  // namespace emu
