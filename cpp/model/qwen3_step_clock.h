// The one-kernel decode step's phase clock (qwen3_step_kernel.cuh writes it on timed launches,
// StepKernel::add_phase_ms reads it): the layout of the stamps and of the CTAs' wait sums after
// them, shared by the kernel and its host launcher. Plain C++.
#pragma once

namespace npr::onestep {

// A layer's phases (q|k|v, attention, merge, o-proj, gate|up, down), each ended by a grid
// barrier but the q|k|v phase with head_flags and a folded merge phase (their stamps: when CTA
// 0 moved on).
constexpr int kPhasesPerLayer = 6;
// Timed launches first pass kCalibBarriers barriers with no work between them (what a barrier
// alone costs), then stamp the embedding, every layer's phases and the head.
constexpr int kCalibBarriers = 8;
constexpr int kStampsFixed = 1 + kCalibBarriers + 2;  // start, calibration, embedding, head
// The phases a timed launch counts the CTAs' waits by: those whose weights stream (ring waits)
// and those a grid barrier ends (waits for other CTAs: with head_flags, q|k|v's are the
// attention's waits for its heads; a folded merge phase has none).
enum RingPhase { kRingQkv, kRingOProj, kRingGateUp, kRingDown, kRingHead, kRingPhases };
enum GridPhase {
  kGridEmbedding,
  kGridQkv,  // then the rest of a layer's phases in their order (kPhasesPerLayer in all)
  kGridAttend,
  kGridMerge,
  kGridOProj,
  kGridGateUp,
  kGridDown,
  kGridHead,
  kGridPhases
};
static_assert(kGridHead == kGridQkv + kPhasesPerLayer,
              "a layer's phases between embedding and head");
// After the stamps, what a timed launch's CTAs waited for, summed over them (thread 0's
// nanoseconds from the calibration's end to the kernel's): their spans, the waits for ring chunks
// to land (the streamed kernel) and their maximum, the waits at grid barriers and for q|k|v heads
// and their maximum, then the ring waits by RingPhase and the grid waits by GridPhase (each over
// the layers). The rest of a CTA's span is its own work.
enum CtaClock {
  kCtaSpan,
  kCtaRing,
  kCtaRingMax,
  kCtaGrid,
  kCtaGridMax,
  kCtaRingByPhase,
  kCtaGridByPhase = kCtaRingByPhase + kRingPhases,
  kCtaClockFields = kCtaGridByPhase + kGridPhases
};
// A timed launch's thread 0 keeps its clocks in shared memory (registers are at ptxas' limit):
// its ring waits by RingPhase, its grid waits by GridPhase from kWaitGrid0, and its clock at the
// calibration's end (kWaitStart).
constexpr int kWaitGrid0 = kRingPhases;
constexpr int kWaitStart = kWaitGrid0 + kGridPhases;

}  // namespace npr::onestep
