/**
 * `npm run bench -- decode-timeline [--steps N] [--no-candidate] [--cuda-cores]`: where a CUDA
 * decode step's device time goes as the GPU runs it: the Qwen3-0.6B shape (bf16, random
 * weights, a 1k-token prefix), 1 and 8 branches, decode steps replayed as CUDA graphs and
 * sampled on the device as the engine runs them, each kernel, copy and memset stamped by CUPTI.
 *
 * Per step and op: the µs of the replay that were the op's own (an instant belongs to the
 * oldest kernel still running: a programmatic launch's early start counts for the kernel it
 * overlaps), the idle µs just before its launches (launch gaps: nothing ran), and how early its
 * launches started; then the replay's span, its idle time, what ran after it until the next step
 * (sampler, uploads) and the device's idle time over the whole period. decode-kernels (ncu)
 * gives each kernel's cost alone with caches flushed; this gives the kernels as they run
 * together, gaps and overlaps included: the figures a change to the step's structure moves.
 *
 * The parent builds tools/kernel-trace's injection library against this machine's CUPTI, runs
 * this script again per branch count with `--workload` (first plain, for the untraced device
 * time a step, then with CUDA_INJECTION64_PATH set: CUPTI's tracing costs a little a launch),
 * and reads the trace. Without a device, CUPTI or a C++ compiler: a note and a skip.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native } from '../ts/bindings/loader.js';
import { prefillAndFork, timedDecodeStep } from './_decode-step.js';
import { buildKernelTrace, findCupti, parseTrace, type StepTimeline, stepTimeline, stepWindows } from './_kernel-trace.js';
import { shortName } from './_ncu.js';
import { argFlag, argValue, type Figures, median, printJson, printTable, round } from './_report.js';
import { seedNativeModel } from './_weights.js';

const SHAPE = { vocab: 151936, hidden: 1024, intermediate: 3072, layers: 28, heads: 16, kvHeads: 8, headDim: 128 };
const PREFIX = 1024;
const WARMUP = 5; // steps before the measured ones (graph capture, first replays)

const steps = Number(argValue('steps') ?? 30);
if (!Number.isInteger(steps) || steps < 2) throw new RangeError(`--steps must be an integer >= 2 (got '${argValue('steps')}')`);
const candidate = !argFlag('no-candidate'); // NativeKvOptions.candidateKernels: the default 'one-row', or false
const tensorCores = !argFlag('cuda-cores');

/** The child: prefill, fork, warm up, then `steps` steps; prints the device ms a step as its last line. */
async function workload(branches: number): Promise<void> {
  const addon = native();
  const model = seedNativeModel(
    new addon.NativeQwen3({ ...SHAPE, ropeTheta: 1e6, tied: true }, { backend: 'cuda', precision: 'bf16' }),
    99,
  );
  const kv = new addon.NativeKv(model, {
    numBlocks: Math.ceil((PREFIX + branches * (WARMUP + steps + 8)) / 16) + branches + 8,
    candidateKernels: candidate ? 'one-row' : false,
    tensorCoreLinears: tensorCores,
  });
  const seqs = await prefillAndFork(kv, PREFIX, SHAPE.vocab, branches);
  for (let s = 0; s < WARMUP; s++) await timedDecodeStep(kv, seqs, SHAPE.vocab, s, PREFIX + s, true, null, 'launch');
  const before = kv.deviceStats();
  addon.cudaProfilerRange(true);
  for (let s = WARMUP; s < WARMUP + steps; s++) await timedDecodeStep(kv, seqs, SHAPE.vocab, s, PREFIX + s, true, null, 'launch');
  const after = kv.deviceStats();
  addon.cudaProfilerRange(false); // the trace library writes its file here
  const deviceMs = (after.deviceMs - before.deviceMs) / Math.max(1, after.deviceTimedSteps - before.deviceTimedSteps);
  console.log(JSON.stringify({ deviceMs }));
}

/** Runs the workload child; its device ms a step, or the reason it failed. */
function runChild(branches: number, env: NodeJS.ProcessEnv): { deviceMs: number } | { error: string } {
  const args = [process.argv[1] as string, '--workload', '--branches', String(branches), '--steps', String(steps)];
  if (!candidate) args.push('--no-candidate');
  if (!tensorCores) args.push('--cuda-cores');
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', env, maxBuffer: 64 << 20, timeout: 300_000 });
  const last = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !last.startsWith('{')) return { error: `exit ${r.status ?? r.signal}: ${(r.stderr ?? '').slice(-1500)}` };
  return JSON.parse(last) as { deviceMs: number };
}

/** Medians over the steps: the step figures, and per op its own, gap and early µs and launches. */
function summarize(tl: StepTimeline[]) {
  const names = [...new Set(tl.flatMap((t) => [...t.ops.keys()]))];
  const op = (name: string, f: 'ownUs' | 'gapUs' | 'earlyUs' | 'launches') => median(tl.map((t) => t.ops.get(name)?.[f] ?? 0));
  const ops = names.map((name) => ({
    name,
    after: tl.some((t) => t.ops.get(name)?.after === true),
    launches: op(name, 'launches'),
    ownUs: op(name, 'ownUs'),
    gapUs: op(name, 'gapUs'),
    earlyUs: op(name, 'earlyUs'),
  }));
  ops.sort((a, b) => Number(a.after) - Number(b.after) || b.ownUs - a.ownUs);
  const m = (f: keyof Omit<StepTimeline, 'ops'>) => median(tl.map((t) => t[f]));
  return {
    ops,
    periodUs: m('periodUs'),
    graphUs: m('graphUs'),
    graphIdleUs: m('graphIdleUs'),
    graphEarlyUs: m('graphEarlyUs'),
    afterUs: m('afterUs'),
    deviceIdleUs: m('deviceIdleUs'),
    launches: m('launches'),
  };
}

/** The op's label in a JSON key. */
const key = (name: string) => name.replace(/[^A-Za-z0-9_]+/g, '_').replace(/_+$/, '');

if (argFlag('workload')) {
  await workload(Number(argValue('branches') ?? 1));
} else {
  const addon = native();
  const cuda = addon.backends().cuda;
  const cupti = cuda.devices > 0 ? findCupti() : null;
  const root = join(import.meta.dirname, '..', '..'); // dist/bench -> the checkout
  const dir = mkdtempSync(join(tmpdir(), 'npr-timeline-'));
  const lib = join(dir, 'libnpr_kernel_trace.so');
  const built = cupti ? buildKernelTrace(root, cupti, 'inject', lib) : null;
  if (cuda.devices === 0 || !cupti || !built?.ok) {
    const why =
      cuda.devices === 0
        ? `no CUDA device: ${cuda.reason ?? 'unknown'}`
        : !cupti
          ? 'CUPTI not found (looked in the CUDA toolkit and in PyTorch wheels; NPR_CUPTI_ROOT names another)'
          : `the trace library did not build: ${built && !built.ok ? built.error : ''}`;
    console.log(`note: ${why}`);
    rmSync(dir, { recursive: true, force: true });
    printJson('decode-timeline', { skipped: true, reason: why.slice(0, 200) });
    process.exit(0);
  }
  const figures: Figures = { steps, candidate, tensor_cores: tensorCores };
  for (const branches of [1, 8]) {
    const tag = branches === 1 ? 'b1' : '8';
    const plain = runChild(branches, process.env);
    const tracePath = join(dir, `trace-${branches}.jsonl`);
    const libDir = cupti.lib.slice(0, cupti.lib.lastIndexOf('/'));
    const traced = runChild(branches, {
      ...process.env,
      CUDA_INJECTION64_PATH: lib,
      NPR_KERNEL_TRACE_OUT: tracePath,
      LD_LIBRARY_PATH: [libDir, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'),
    });
    // The library writes its file when the workload stops the profiler range, before the child
    // exits: a child that fails after that (CUPTI's flush at exit) still leaves its steps.
    if ('error' in traced) console.log(`note: the traced run of ${branches} branch(es) failed: ${traced.error}`);
    let text = '';
    try {
      text = readFileSync(tracePath, 'utf8');
    } catch {
      console.log(`note: ${branches} branch(es): the trace library wrote no file (did the driver load it?)`);
      continue;
    }
    const trace = parseTrace(text);
    if (trace.error) console.log(`note: CUPTI said: ${trace.error}`);
    if (trace.dropped > 0) console.log(`note: CUPTI dropped ${trace.dropped} records`);
    const windows = stepWindows(trace.records).slice(-steps);
    if (windows.length === 0) {
      console.log(`note: ${branches} branch(es): no graph replays in the trace (${trace.records.length} records)`);
      continue;
    }
    const s = summarize(windows.map((w) => stepTimeline(w, shortName)));
    console.log(`\n${branches} branch(es): ${windows.length} steps, medians a step (µs)`);
    printTable(
      s.ops.map((o) => ({
        op: o.name,
        launches: o.launches,
        own_us: round(o.ownUs, 1),
        us_per_launch: round(o.launches > 0 ? o.ownUs / o.launches : null, 2),
        gap_before_us: round(o.gapUs, 1),
        early_us: round(o.earlyUs, 1),
      })),
    );
    figures[`period_us_${tag}`] = round(s.periodUs, 1);
    figures[`graph_us_${tag}`] = round(s.graphUs, 1);
    figures[`graph_idle_us_${tag}`] = round(s.graphIdleUs, 1);
    figures[`graph_early_us_${tag}`] = round(s.graphEarlyUs, 1);
    figures[`after_graph_us_${tag}`] = round(s.afterUs, 1);
    figures[`device_idle_us_${tag}`] = round(s.deviceIdleUs, 1);
    figures[`launches_${tag}`] = s.launches;
    figures[`device_ms_${tag}_traced`] = 'error' in traced ? null : round(traced.deviceMs, 3);
    figures[`device_ms_${tag}_untraced`] = 'error' in plain ? null : round(plain.deviceMs, 3);
    for (const o of s.ops) {
      figures[`own_us_${tag}_${key(o.name)}`] = round(o.ownUs, 1);
      figures[`gap_us_${tag}_${key(o.name)}`] = round(o.gapUs, 1);
    }
  }
  rmSync(dir, { recursive: true, force: true });
  console.log(
    `\nQwen3-0.6B shape, bf16, prefix ${PREFIX}, decode-specialised kernels (candidateKernels ${candidate ? "'one-row'" : 'false'}, ` +
      `${tensorCores ? 'tensor-core' : 'CUDA-core'} skinny layers), graph replays sampled on the device; CUPTI ${cupti.lib}. ` +
      "own: the µs of the replay that were the op's (the oldest running record owns an instant); gap_before: idle µs just before its launches; " +
      'early: µs its launches ran beside the op before them; after: ops between a replay and the next (sampler, uploads). ' +
      'device_ms_*_traced vs _untraced: what the tracing itself cost.',
  );
  printJson('decode-timeline', figures);
}
