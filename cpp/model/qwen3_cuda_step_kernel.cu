// The one-kernel decode step's launcher (see qwen3_cuda_step_kernel.h): the kernel is
// qwen3_step_kernel.cuh's, its typed launches qwen3_step_launch.cuh's; on sm_90 devices of builds
// with sm_90a kernels its streamed form (qwen3_cuda_step_kernel_stream_sm90a.cu).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "core/cuda_check.cuh"
#include "model/qwen3_cuda_step_kernel.h"
#include "model/qwen3_step_launch.cuh"

namespace npr {

namespace {

using namespace onestep;
constexpr uint64_t kBarrierTimeoutNs = 5000000000ull;  // 5 s: far above any step, even memcheck's
// The launch state, all zeroed before each launch: the grid barrier's counter and flag; from
// byte kHeadsAt the q|k|v readiness counts (kv_heads) uint32; then the folded merges' arrival
// counts (at most kSkinnyMaxRows rows, kv_heads) uint32.
constexpr int64_t kHeadsAt = 64;

}  // namespace

#if !defined(NPR_HAVE_SM90A) && !defined(NPR_EMU)
// This build has no sm_90a kernel: the plain kernel runs everywhere.
bool onestep::streamed_compiled() {
  return false;
}
Status onestep::launch_streamed(int64_t, const Params&, int64_t, int64_t*, cudaStream_t) {
  return Status::unavailable(
      "decode (cuda, one-kernel step): this build has no sm_90a kernel for the streamed weights");
}
#endif

StepKernel::~StepKernel() {
  if (broken_host_) cudaFreeHost(broken_host_);
}

bool StepKernel::fits(const Qwen3Config& c, DevDType t, int64_t rows, std::string* why) {
  auto no = [&](const std::string& s) {
    if (why) *why = s;
    return false;
  };
  if (t != DevDType::kBF16) return no("the one-kernel step runs bf16 models only");
  if (rows < 1 || rows > kSkinnyMaxRows)
    return no("the one-kernel step takes 1.." + std::to_string(kSkinnyMaxRows) +
              " sequences, not " + std::to_string(rows));
  if (c.head_dim != kHeadDim)
    return no("the one-kernel step needs head dim " + std::to_string(kHeadDim) +
              " (every Qwen3 size has it), not " + std::to_string(c.head_dim));
  if (c.kv_heads <= 0 || c.heads % c.kv_heads != 0 || c.heads / c.kv_heads > decode_mma::kRows)
    return no("the one-kernel step needs at most " + std::to_string(decode_mma::kRows) +
              " query heads per kv head");
  if (c.hidden % 8 != 0 || c.intermediate % 8 != 0)
    return no("the one-kernel step needs hidden and intermediate sizes that are multiples of 8");
  if (!skinny_rmsnorm_fits(rows, c.hidden) ||
      2 * rows * std::max(c.heads * c.head_dim, c.intermediate) > kSkinnyStageMaxBytes)
    return no("the one-kernel step's staged rows would pass " +
              std::to_string(kSkinnyStageMaxBytes) + " bytes of shared memory");
  return true;
}

Status StepKernel::set_layers(CudaContext& ctx, const std::vector<StepKernelLayer>& layers) {
  const int64_t bytes = static_cast<int64_t>(sizeof(StepKernelLayer) * layers.size());
  NPR_TRY(layers_.grow(ctx.alloc(), bytes, "decode (cuda, one-kernel step): layer table"));
  NPR_TRY(ctx.upload(layers_.get(), layers.data(), bytes,
                     "decode (cuda, one-kernel step): layer table"));
  layers_n_ = static_cast<int64_t>(layers.size());
  return Status::ok();
}

Status StepKernel::add_phase_ms(CudaContext& ctx, const Qwen3Config& c,
                                std::map<std::string, double>* ms) {
  static const char* const kLayerPhases[] = {"qkv",    "qk_norm_rope_attend", "merge",
                                             "o_proj", "gate_up_swiglu",      "down"};
  static_assert(sizeof(kLayerPhases) / sizeof(kLayerPhases[0]) == kPhasesPerLayer,
                "a name for every phase of a layer");
  const int64_t n = kStampsFixed + kPhasesPerLayer * c.layers;
  if (!stamps_.get() || stamps_.bytes() < 8 * (n + kCtaClockFields) || grid_ <= 0)
    return Status::invalid("decode (cuda, one-kernel step): no timed launch to read");
  std::vector<uint64_t> t(static_cast<size_t>(n + kCtaClockFields));
  NPR_TRY(ctx.download(t.data(), stamps_.get(), 8 * (n + kCtaClockFields),
                       "decode (cuda, one-kernel step): phase clock"));
  NPR_TRY(check());
  for (int64_t i = 1; i < n; ++i)  // zeroed before the launch: a stamp left out shows here
    if (t[i] < t[i - 1] || t[0] == 0)
      return Status::internal(
          "decode (cuda, one-kernel step): the phase clock is out of order at stamp " +
          std::to_string(i) + ": the kernel ends a different number of phases than the host reads");
  const auto span = [&](int64_t i) { return static_cast<double>(t[i] - t[i - 1]) * 1e-6; };
  // An empty phase: the calibration barriers after the first (which waits for every CTA to
  // start), per barrier.
  (*ms)["barrier"] += static_cast<double>(t[kCalibBarriers] - t[1]) * 1e-6 / (kCalibBarriers - 1);
  const int64_t e0 = 1 + kCalibBarriers;  // the embedding's stamp
  (*ms)["embedding"] += span(e0);
  for (int64_t l = 0; l < c.layers; ++l)
    for (int k = 0; k < kPhasesPerLayer; ++k)
      (*ms)[kLayerPhases[k]] += span(e0 + 1 + kPhasesPerLayer * l + k);
  (*ms)["head"] += span(n - 1);
  // Where the CTAs' time went, per CTA on average (and the most one waited), also by phase.
  static const char* const kRingPhaseNames[] = {"qkv", "o_proj", "gate_up_swiglu", "down", "head"};
  static_assert(sizeof(kRingPhaseNames) / sizeof(kRingPhaseNames[0]) == kRingPhases,
                "a name for every streamed phase");
  const auto grid_phase_name = [&](int i) -> std::string {
    return i == kGridEmbedding ? "embedding" : i == kGridHead ? "head" : kLayerPhases[i - kGridQkv];
  };
  const uint64_t* w = t.data() + n;
  uint64_t ring_by_phase = 0, grid_by_phase = 0;
  for (int i = 0; i < kRingPhases; ++i) ring_by_phase += w[kCtaRingByPhase + i];
  for (int i = 0; i < kGridPhases; ++i) grid_by_phase += w[kCtaGridByPhase + i];
  if (w[kCtaRing] + w[kCtaGrid] > w[kCtaSpan] || w[kCtaRingMax] > w[kCtaRing] ||
      w[kCtaGridMax] > w[kCtaGrid] || ring_by_phase != w[kCtaRing] || grid_by_phase != w[kCtaGrid])
    return Status::internal(
        "decode (cuda, one-kernel step): the CTAs' waits add up to more than their time, or "
        "their waits by phase not to their totals");
  const double per_cta = 1e-6 / static_cast<double>(grid_);
  (*ms)["cta_wait_ring"] += static_cast<double>(w[kCtaRing]) * per_cta;
  (*ms)["cta_wait_ring_max"] += static_cast<double>(w[kCtaRingMax]) * 1e-6;
  for (int i = 0; i < kRingPhases; ++i)
    (*ms)[std::string("cta_wait_ring_") + kRingPhaseNames[i]] +=
        static_cast<double>(w[kCtaRingByPhase + i]) * per_cta;
  (*ms)["cta_wait_grid"] += static_cast<double>(w[kCtaGrid]) * per_cta;
  (*ms)["cta_wait_grid_max"] += static_cast<double>(w[kCtaGridMax]) * 1e-6;
  for (int i = 0; i < kGridPhases; ++i)
    (*ms)["cta_wait_grid_" + grid_phase_name(i)] +=
        static_cast<double>(w[kCtaGridByPhase + i]) * per_cta;
  (*ms)["cta_work"] += static_cast<double>(w[kCtaSpan] - w[kCtaRing] - w[kCtaGrid]) * per_cta;
  return Status::ok();
}

Status StepKernel::query_device() {
  const char* op = "decode (cuda, one-kernel step)";
  int dev = 0, major = 0, minor = 0, optin = 0;
  NPR_CUDA_TRY(cudaGetDevice(&dev), op);
  NPR_CUDA_TRY(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev), op);
  NPR_CUDA_TRY(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev), op);
  NPR_CUDA_TRY(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev), op);
  sm90a_ = major == 9 && minor == 0;  // sm_90a code runs on 9.0 alone
  smem_optin_ = optin;
  return Status::ok();
}

Status StepKernel::check() const {
  if (broken_host_ && *reinterpret_cast<volatile int32_t*>(broken_host_) != 0)
    return Status::internal(
        "decode (cuda, one-kernel step): a wait for the other CTAs (a grid barrier, or the "
        "q|k|v tiles of a head) passed 5 s, so not every CTA was resident (another process on "
        "the GPU?) and that step's results were garbage; turn the stepKernel option off");
  return Status::ok();
}

Status StepKernel::launch(CudaContext& ctx, const Qwen3Config& c, int64_t rows,
                          const StepKernelArgs& a) {
  const char* op = "decode (cuda, one-kernel step)";
  std::string why;
  if (!fits(c, DevDType::kBF16, rows, &why)) return Status::invalid(why);
  if (layers_n_ != c.layers) return Status::internal(std::string(op) + ": no layer table");
  if (!a.plan || !a.plan->header || a.plan->max_rows() > decode_mma::kRows ||
      a.plan->queries() != rows)
    return Status::invalid(std::string(op) +
                           ": needs an uploaded plan of one query per row and at most " +
                           std::to_string(decode_mma::kRows) + " rows per item");
  NPR_TRY(check());
  // Sized for the most rows at once, so the pointers a captured graph holds stay valid.
  const int64_t counts_at = kHeadsAt + 4 * c.kv_heads;
  const int64_t state_bytes = counts_at + 4 * kSkinnyMaxRows * c.kv_heads;
  NPR_TRY(state_.grow(ctx.alloc(), state_bytes,
                      "decode (cuda, one-kernel step): barrier and arrival counts"));
  if (!broken_host_) {  // both pointers or neither: a launch never gets a null flag
    void* h = nullptr;
    NPR_CUDA_TRY(cudaHostAlloc(&h, sizeof(int32_t), cudaHostAllocMapped),
                 "decode (cuda, one-kernel step): host-mapped flag");
    void* d = nullptr;
    const Status mapped = cuda_status(cudaHostGetDevicePointer(&d, h, 0),
                                      "decode (cuda, one-kernel step): host-mapped flag");
    if (!mapped.is_ok()) {
      cudaFreeHost(h);
      return mapped;
    }
    broken_host_ = static_cast<int32_t*>(h);
    *broken_host_ = 0;
    broken_dev_ = static_cast<int32_t*>(d);
  }
  cudaStream_t st = static_cast<cudaStream_t>(ctx.stream());
  NPR_CUDA_TRY(cudaMemsetAsync(state_.get(), 0, static_cast<size_t>(state_bytes), st),
               "decode (cuda, one-kernel step): barrier and arrival counts reset");
  const DeviceDecodePlan& pl = *a.plan;
  Params p = params_of(c, a);
  p.layers = layers_.as<StepKernelLayer>();
  p.header = pl.header;
  p.items = pl.items;
  p.q_order = pl.q_order;
  p.indices = pl.indices;
  p.merge_ptr = pl.merge_ptr;
  p.merge_rows = pl.merge_rows;
  p.part_m = pl.part_m;
  p.part_l = pl.part_l;
  p.part_acc = pl.part_acc;
  p.head_ready = reinterpret_cast<uint32_t*>(static_cast<char*>(state_.get()) + kHeadsAt);
  p.merge_counts = reinterpret_cast<uint32_t*>(static_cast<char*>(state_.get()) + counts_at);
  p.bar = grid::Barrier{state_.as<uint32_t>(), state_.as<int32_t>() + 1, broken_dev_,
                        kBarrierTimeoutNs};
  p.stamps = nullptr;
  if (a.timing) {
    const int64_t bytes = 8 * (kStampsFixed + kPhasesPerLayer * c.layers + kCtaClockFields);
    NPR_TRY(stamps_.grow(ctx.alloc(), bytes, "decode (cuda, one-kernel step): phase clock"));
    p.stamps = stamps_.as<uint64_t>();
    NPR_CUDA_TRY(cudaMemsetAsync(p.stamps, 0, static_cast<size_t>(bytes), st),
                 "decode (cuda, one-kernel step): phase clock reset");
  }
  if (a.ring_slots < kMinRingSlots || a.ring_slots > kMaxRingSlots)
    return Status::invalid(std::string(op) + ": the weight stream's ring takes " +
                           std::to_string(kMinRingSlots) + ".." + std::to_string(kMaxRingSlots) +
                           " slots at most, not " + std::to_string(a.ring_slots));
  // The streamed form where the device is an sm_90 one and its ring fits.
  bool streamed = false;
  int64_t smem = dyn_smem_bytes(c, rows);
  if (a.stream && streamed_compiled()) {
    if (smem_optin_ == 0) NPR_TRY(query_device());
    const int64_t slots = std::min<int64_t>(stream_slots_for(c, rows, smem_optin_), a.ring_slots);
    if (sm90a_ && slots >= stream::kMinSlots) {
      streamed = true;
      p.ring_slots = static_cast<int>(slots);
      p.ring_offset = stream_ring_offset(c, rows);
      smem = stream_smem_bytes(c, rows, slots);
    }
  }
  // Each row count is its own kernel: its grid once per shared-memory size.
  const int mode = streamed ? 1 : 0;
  if (smem_of_[mode][rows] != smem) {
    grid_of_[mode][rows] = 0;
    smem_of_[mode][rows] = smem;
  }
  const Status s = streamed ? launch_streamed(rows, p, smem, &grid_of_[mode][rows], st)
                            : launch_rows<false>(rows, p, smem, &grid_of_[mode][rows], st);
  if (!s.is_ok()) return s;
  streamed_ = streamed;
  ring_slots_ = streamed ? p.ring_slots : 0;
  grid_ = grid_of_[mode][rows];
  ++launches_;
  return s;
}

}  // namespace npr
