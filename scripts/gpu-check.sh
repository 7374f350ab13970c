#!/usr/bin/env bash
# Every GPU check of the project in one run, for a CUDA host (H100/H200 class): builds the addon
# with CUDA (NPR_CUDA=on), runs the C++ tests (plain, then the CUDA cases under
# compute-sanitizer memcheck), the vitest cases that use the device, and the GPU benchmarks;
# writes each log and the benchmarks' JSON lines under OUT_DIR (default: $OUT, else gpu-check/).
#
#   scripts/gpu-check.sh [OUT_DIR]
#
# Phases, in this order (most needed first: the tests, then the benchmarks of what changed last
# without a GPU, the attention kernels and the decode, then the sanitizer and the profiles):
# cpp-tests, vitest-cuda, generate, bench:attention, bench:train-step, bench:decode,
# bench:decode-timeline, memcheck, bench:attention-kernels, bench:engine, bench:decode-kernels,
# bench:decode-kernels-step-kernel, bench:decode-kernels-candidate, bench:decode-kernels-cuda-cores.
# Knobs:
#   NPR_GPU_PHASES="cpp-tests bench:decode"   run these phases, in this order
#   NPR_GPU_CHECK=tests|bench                  only the test phases, or only the benchmarks
#   NPR_GPU_BENCHES="decode engine"            which benchmarks (default: all ten)
#   NPR_GPU_DEADLINE_S=540   stop starting phases when fewer than 30 s are left of this many
#                            seconds (counted from the start, build included), and cut a phase's
#                            time limit to what is left: one device call (<= 600 s) then runs as
#                            much as fits, most needed first, and says what it skipped
#   NPR_GPU_BENCH_ITERS=N, NPR_GPU_BENCH_QUICK=1, NPR_GPU_NO_PEER=1 (the decode bench without
#   its transformers peer), NPR_GPU_DECODE_TRIALS=a,b (only these decode trials; none: no
#   trials) and NPR_GPU_MEMCHECK_S=S shorten a tight run
#   (the build runs either way; it is incremental on a warm machine)
#
# Needs: node (20+) with this checkout's node_modules installed, cmake, nvcc, a CUDA device;
# python3 with torch for the benchmark peers (skipped with a note without it). Compiled
# TypeScript (dist/) is built with `npx tsc` when npm is present, else must be there already.
# Exit status: non-zero when the build or any test failed (benchmarks never fail the run).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-gpu-check}}"
mkdir -p "$out"
export PATH="/usr/local/cuda/bin:$PATH"
status=0
summary="$out/summary.txt"
: >"$summary"
note() { echo "$*" | tee -a "$summary"; }
deadline="${NPR_GPU_DEADLINE_S:-0}"
run_logged() {  # name, time limit in seconds, command...
  local name="$1" limit="$2"
  shift 2
  if [ "$deadline" -gt 0 ]; then
    local left=$((deadline - SECONDS - 10))
    if [ "$left" -lt 30 ]; then
      note "$name: skipped ($((deadline - SECONDS)) s left of NPR_GPU_DEADLINE_S=$deadline)"
      [ "$name" = build ] && return 1  # nothing after it could run on a stale build
      return 0
    fi
    [ "$left" -lt "$limit" ] && limit=$left
  fi
  local t0=$SECONDS
  timeout -k 10 "$limit" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  note "$name: exit $rc in $((SECONDS - t0)) s  ($*)"
  tail -n 3 "$out/$name.log" | sed 's/^/    /' | tee -a "$summary"
  return $rc
}

note "gpu-check $(date -u +%FT%TZ) on $(hostname)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee -a "$summary"

# The C++ tests without the kernel emulator (NPR_EMU=off): its cases are CI's, and its build
# would cost this host's minutes.
run_logged build 420 env NPR_CUDA=on NPR_EMU=off CUDAARCHS="${CUDAARCHS:-90}" node scripts/build-addon.mjs || {
  note "build failed: see $out/build.log"
  exit 1
}
run_logged build-tests 300 env NPR_EMU=off node scripts/cpp-test.mjs --build-only || {
  note "the C++ test executable did not build: see $out/build-tests.log"
  status=1
}
if command -v npm >/dev/null 2>&1; then npx tsc -p . >>"$out/build.log" 2>&1 || status=1; fi

benches="${NPR_GPU_BENCHES:-decode decode-timeline decode-kernels decode-kernels-step-kernel decode-kernels-candidate decode-kernels-cuda-cores engine attention attention-kernels train-step}"
bench_phase() { case " $benches " in *" $1 "*) echo "bench:$1" ;; esac; }
default_phases="cpp-tests vitest-cuda generate $(bench_phase attention) $(bench_phase train-step) \
  $(bench_phase decode) $(bench_phase decode-timeline) memcheck $(bench_phase attention-kernels) $(bench_phase engine) \
  $(bench_phase decode-kernels) $(bench_phase decode-kernels-step-kernel) \
  $(bench_phase decode-kernels-candidate) $(bench_phase decode-kernels-cuda-cores)"
case "${NPR_GPU_CHECK:-all}" in
  tests) default_phases="cpp-tests vitest-cuda generate memcheck" ;;
  bench) default_phases="$(for b in $benches; do echo "bench:$b"; done)" ;;
esac
quick="${NPR_GPU_BENCH_QUICK:+--quick}"
for p in ${NPR_GPU_PHASES:-$default_phases}; do
  case "$p" in
    cpp-tests)
      # The kernels no GPU has run yet (the Hopper ones, the one-kernel decode step) in processes
      # of their own: a device fault there (sticky for the process) cannot take the other CUDA
      # cases with it. The emulated kernels (emu_*: CPU only, run by CI) are left out here.
      run_logged cpp-tests 240 build/tests/npr_tests -wgmma -step_kernel -emu_ || status=1
      run_logged cpp-tests-wgmma 120 build/tests/npr_tests wgmma -emu_ || status=1
      run_logged cpp-tests-step-kernel 120 build/tests/npr_tests step_kernel -emu_ || status=1
      ;;
    vitest-cuda)
      run_logged vitest-cuda 180 node node_modules/vitest/vitest.mjs run test/model-golden.test.ts \
        test/model.cuda.test.ts test/gemm.gpu.test.ts test/engine.cuda.test.ts \
        test/engine-cli.test.ts || status=1
      ;;
    generate)
      # The embedded model through `npr generate --backend cuda`, parallel mode, as a user runs
      # it, on the README's prompt (the CPU run of it forks once into 5 branches).
      run_logged generate 120 node dist/ts/cli/main.js generate --model models/npr-tiny \
        --backend cuda --prompt "$(printf 'fib largest 1:37 2:52 3:18 4:90 5:44\n\nparallel')" \
        --max-new-tokens 256 --seed 1 || status=1
      ;;
    memcheck)
      # The CUDA cases (names containing "cuda") under memcheck; leak checking covers device
      # memory. API errors are not reported: the code turns them into Status values, and one test
      # provokes an out-of-memory on purpose.
      if command -v compute-sanitizer >/dev/null 2>&1; then
        run_logged cpp-tests-memcheck "${NPR_GPU_MEMCHECK_S:-240}" compute-sanitizer --tool memcheck \
          --leak-check full --report-api-errors no --error-exitcode 9 build/tests/npr_tests cuda ||
          status=1
      else
        note "compute-sanitizer not found: memcheck run skipped"
      fi
      ;;
    # Benchmarks: each prints a table and, last, one JSON line (collected into the summary).
    bench:attention) run_logged bench-attention 330 node dist/bench/attention-cuda.js --iters "${NPR_GPU_BENCH_ITERS:-10}" ;;
    # What bounds each attention kernel (ncu --set full at 8k tokens): tensor pipe, shared memory,
    # L2, registers, stall reasons.
    bench:attention-kernels) run_logged bench-attention-kernels 300 node dist/bench/attention-kernels.js ;;
    bench:decode)
      run_logged bench-decode 240 node dist/bench/decode.js --backend cuda $quick \
        ${NPR_GPU_NO_PEER:+--no-peer} ${NPR_GPU_DECODE_TRIALS:+--trials "$NPR_GPU_DECODE_TRIALS"}
      ;;
    # The decode step as the GPU runs it (CUPTI stamps on every kernel of the graph replays):
    # each op's own time, the launch gaps and the programmatic overlaps, 1 and 8 branches.
    bench:decode-timeline) run_logged bench-decode-timeline 240 node dist/bench/decode-timeline.js ;;
    bench:decode-kernels) run_logged bench-decode-kernels 180 node dist/bench/decode-kernels.js ;;
    bench:decode-kernels-step-kernel)
      # With the step kernel's hottest SASS instructions: on an H100 its weight phases took
      # 1.5-2x the layer kernels' time, its head phase streaming ~1.4 TB/s (the layer path's head
      # kernel: 3.97 TB/s on an H200).
      run_logged bench-decode-kernels-step-kernel 240 node dist/bench/decode-kernels.js --step-kernel \
        --source step_kernel
      ;;
    bench:decode-kernels-candidate)
      run_logged bench-decode-kernels-candidate 180 node dist/bench/decode-kernels.js --candidate
      ;;
    bench:decode-kernels-cuda-cores)
      run_logged bench-decode-kernels-cuda-cores 180 node dist/bench/decode-kernels.js --cuda-cores
      ;;
    bench:engine) run_logged bench-engine 240 node dist/bench/engine.js --backend cuda $quick ;;
    bench:train-step) run_logged bench-train-step 330 node dist/bench/train-step.js --backend cuda ;;
    *) note "unknown phase '$p' (cpp-tests, vitest-cuda, generate, memcheck, bench:attention, bench:attention-kernels, bench:decode, bench:decode-timeline, bench:decode-kernels, bench:decode-kernels-step-kernel, bench:decode-kernels-candidate, bench:decode-kernels-cuda-cores, bench:engine, bench:train-step)" ;;
  esac
done
note "benchmark JSON:"
for f in "$out"/bench-*.log; do
  [ -f "$f" ] && { tail -n 1 "$f" | grep '^{' | tee -a "$summary"; }
done
note "verdict (scripts/gpu-verdict.mjs: failed tests; candidate and tensor-core kernels beside the default):"
node scripts/gpu-verdict.mjs "$out" 2>&1 | tee -a "$summary"
note "gpu-check finished with status $status"
exit $status
