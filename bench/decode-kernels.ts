/**
 * `npm run bench -- decode-kernels [--generic] [--candidate] [--cuda-cores] [--merge staged|serial] [--step-kernel] [--source REGEX]`: every kernel of a CUDA decode step with its own device time,
 * measured by Nsight Compute (ncu) on the Qwen3-0.6B shape (bf16, random weights, a 1k-token
 * prefix), for 1 and for 8 branches: launches, microseconds and DRAM read bandwidth a step per
 * kernel, and their sums.
 * The sum is the step's device time without launch gaps or host work; next to the decode
 * bench's step time it says how much of a step is kernels, gaps and host. ncu replays each
 * kernel alone (caches flushed, clocks left alone), so each figure is that kernel's own cost.
 *
 * The parent finds ncu and runs this same script under it with `--workload`, which prefills,
 * warms up, and decodes `--steps` eager steps (graphs off: ncu times kernels one by one either
 * way) inside a cudaProfilerStart/Stop range. Without ncu or a device: a note and a skip.
 * `--step-kernel`: steps as one persistent kernel (NativeKvOptions.stepKernel), so the table has
 * that kernel and the sampler's: its time and DRAM bandwidth are the step's own.
 * `--source REGEX`: one more run at batch 1 collects the source counters of the first launch of
 * the kernel whose name matches REGEX (`step_kernel`, `attend_new`, `tc_linear`, ...) and prints
 * its 24 SASS instructions with the most warp-stall samples: where, not only why, it waits.
 */
import { existsSync } from 'node:fs';
import { native } from '../ts/bindings/loader.js';
import { prefillAndFork, timedDecodeStep } from './_decode-step.js';
import { baseValue, findNcu, parseDetailsCsv, printHottest, runUnderNcu, shortName } from './_ncu.js';
import { argFlag, argValue, printJson, printTable, round } from './_report.js';
import { seedNativeModel } from './_weights.js';

const SHAPE = { vocab: 151936, hidden: 1024, intermediate: 3072, layers: 28, heads: 16, kvHeads: 8, headDim: 128 };
const PREFIX = 1024;

type Merge = 'staged' | 'serial';

interface Options {
  fast: boolean;
  candidate: boolean;
  tc: boolean;
  merge: Merge;
  stepKernel: boolean;
}

async function workload(branches: number, steps: number, o: Options): Promise<void> {
  const { fast, candidate, tc, merge, stepKernel } = o;
  const addon = native();
  const model = seedNativeModel(
    new addon.NativeQwen3({ ...SHAPE, ropeTheta: 1e6, tied: true }, { backend: 'cuda', precision: 'bf16' }),
    99,
  );
  const kv = new addon.NativeKv(model, {
    numBlocks: Math.ceil(PREFIX / 16) + 4 * branches + 16,
    graphs: false,
    fastKernels: fast,
    candidateKernels: candidate,
    tensorCoreLinears: tc,
    attentionMerge: merge,
    stepKernel,
  });
  const seqs = await prefillAndFork(kv, PREFIX, SHAPE.vocab, branches);
  for (let s = 0; s < 3; s++) await timedDecodeStep(kv, seqs, SHAPE.vocab, s, PREFIX + s, true, null);
  addon.cudaProfilerRange(true);
  for (let s = 3; s < 3 + steps; s++) await timedDecodeStep(kv, seqs, SHAPE.vocab, s, PREFIX + s, true, null);
  addon.cudaProfilerRange(false);
}

interface KernelCost {
  launches: number;
  us: number;
  /** DRAM bytes read (ncu dram__bytes_read.sum). */
  bytes: number;
}

/** Kernel name -> { launches, us, bytes } summed over the profiled range, from ncu's CSV. */
function parseCsv(text: string): Map<string, KernelCost> {
  const out = new Map<string, KernelCost>();
  for (const row of parseDetailsCsv(text)) {
    if (row.metric !== 'gpu__time_duration.sum' && row.metric !== 'dram__bytes_read.sum') continue;
    const v = baseValue(row.value, row.unit);
    const name = shortName(row.kernel);
    const e = out.get(name) ?? { launches: 0, us: 0, bytes: 0 };
    if (row.metric === 'gpu__time_duration.sum') {
      e.launches += 1; // one time row per launch
      e.us += v / 1000;
    } else e.bytes += v;
    out.set(name, e);
  }
  return out;
}

const steps = Number(argValue('steps') ?? 2);
const fast = !argFlag('generic');
const candidate = argFlag('candidate');
const tc = !argFlag('cuda-cores'); // the skinny linear layers on tensor cores (the default)
const merge = (argValue('merge') ?? 'staged') as Merge; // the attention merge (attentionMerge)
if (!['staged', 'serial'].includes(merge)) throw new RangeError(`--merge must be staged or serial (got '${merge}')`);
const stepKernel = argFlag('step-kernel');
const sourceRegex = argValue('source');
if (argFlag('workload')) {
  await workload(Number(argValue('branches') ?? 1), steps, { fast, candidate, tc, merge, stepKernel });
} else {
  const addon = native();
  const ncu = addon.backends().cuda.devices > 0 ? findNcu() : null;
  if (!ncu) {
    console.log(
      addon.backends().cuda.devices > 0
        ? 'note: ncu (Nsight Compute) not found'
        : `no CUDA device: ${addon.backends().cuda.reason ?? 'unknown'}`,
    );
    printJson('decode-kernels', { skipped: true });
    process.exit(0);
  }
  const figures: Record<string, number | null> = {};
  const per: Record<number, Map<string, KernelCost>> = {};
  // The workload's arguments for `branches` branches: the kernels this run picked.
  const workloadArgs = (branches: number) => [
    '--workload',
    '--branches',
    String(branches),
    '--steps',
    String(steps),
    ...(fast ? [] : ['--generic']),
    ...(candidate ? ['--candidate'] : []),
    ...(tc ? [] : ['--cuda-cores']),
    '--merge',
    merge,
    ...(stepKernel ? ['--step-kernel'] : []),
  ];
  for (const branches of [1, 8]) {
    const r = runUnderNcu(ncu, ['--metrics', 'gpu__time_duration.sum,dram__bytes_read.sum'], workloadArgs(branches));
    if (r.status !== 0) {
      console.log(`note: ncu failed for ${branches} branches (exit ${r.status ?? r.signal}): ${(r.stderr ?? '').slice(-1500)}`);
      continue;
    }
    per[branches] = parseCsv(r.stdout ?? '');
  }
  const names = [...new Set(Object.values(per).flatMap((m) => [...m.keys()]))];
  const rows = names.map((name) => {
    const row: Record<string, string | number | null> = { kernel: name };
    for (const b of [1, 8]) {
      const e = per[b]?.get(name);
      row[`launches_b${b}`] = e ? round(e.launches / steps, 1) : null;
      row[`us_b${b}`] = e ? round(e.us / steps, 1) : null;
      // DRAM read bandwidth while the kernel ran (bytes read / its time): how near the HBM
      // bound each kernel gets on its own (caches are flushed before each).
      row[`gbps_b${b}`] = e && e.us > 0 ? round(e.bytes / (e.us * 1e3), 0) : null;
    }
    return row;
  });
  rows.sort((a, b) => ((b.us_b1 as number) ?? 0) - ((a.us_b1 as number) ?? 0));
  printTable(rows);
  for (const b of [1, 8]) {
    const m = per[b];
    if (!m) continue;
    let us = 0;
    let launches = 0;
    let bytes = 0;
    for (const e of m.values()) {
      us += e.us;
      launches += e.launches;
      bytes += e.bytes;
    }
    figures[`kernel_us_per_step_b${b}`] = round(us / steps, 1);
    figures[`launches_per_step_b${b}`] = round(launches / steps, 1);
    // The step's DRAM bytes over its kernel time: the bandwidth the kernels reach together.
    figures[`dram_mb_per_step_b${b}`] = round(bytes / steps / 1e6, 1);
    figures[`dram_gbps_b${b}`] = us > 0 ? round(bytes / (us * 1e3), 0) : null;
    for (const [name, e] of m) figures[`us_b${b}_${name.replace(/[^A-Za-z0-9_]+/g, '_')}`] = round(e.us / steps, 1);
  }
  console.log(
    `\nQwen3-0.6B shape, bf16, prefix ${PREFIX}, ${fast ? 'decode-specialised' : 'generic'} kernels; ncu gpu__time_duration and dram__bytes_read a kernel, ` +
      `summed over ${steps} eager steps (decode + device sampling) and divided by ${steps}; ncu: ${existsSync(ncu) ? ncu : 'on PATH'}`,
  );
  if (sourceRegex) printHottest(ncu, sourceRegex, workloadArgs(1), `batch 1, the first kernel matching /${sourceRegex}/`, 24);
  printJson('decode-kernels', { fast, candidate, tc, merge, step_kernel: stepKernel, steps, ...figures });
}
