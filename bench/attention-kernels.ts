/**
 * `npm run bench -- attention-kernels [--T 8192] [--configs wgmma,wgmma-64,wgmma-cp,wgmma-atomic]
 * [--source-configs wgmma,wgmma-64]`:
 * what bounds each kernel of the CUDA fused block-sparse attention, measured by Nsight Compute
 * (ncu, `--set full`) on one NPR-shaped rollout (the attention bench's shape: 32 / 8 heads, head
 * dim 128, bf16, prompt 512, two blocks of guideline 128 + 4 steps + takeaway 128).
 *
 * For each kernel of a forward and a backward, per configuration (`wgmma`: the model's default
 * on sm_90, the warp-specialised forward over 128 keys a step (variant 10: tensor-map copies from
 * a producer warpgroup) and the wgmma backward with its warp-specialised dQ, deterministic;
 * `wgmma-64`: the model's 'wgmma-64', that forward over 64 keys a step (variant 7, tensor-map
 * copies from a producer warp); `wgmma-atomic`: `wgmma` with
 * the dK/dV kernel also summing dQ (bulk reductions; `deterministic: false`); `wgmma-cp`: the
 * model's 'wgmma-cp', the pipelined one-CTA forward with its warpgroups ping-ponging (variant 5,
 * cp.async loads); `wgmma1`: that without the ping-pong; `wgmma3`: that loading K/V two tiles
 * ahead; `wgmma4`: that with Q held in registers; `wgmma6`: `wgmma4` ping-ponging; `wgmma7`:
 * `wgmma-64` itself; `wgmma8`: that ping-ponging; `wgmma9`: `wgmma-cp` with its K/V by tensor-map
 * copies from thread 0; `wgmma10`: `wgmma`'s forward; `wgmma11`: that ping-ponging; `wgmma-k128`,
 * `wgmma-k128-atomic`: the two-warpgroup backward kernels, 128 keys or queries a CTA; `mma`,
 * `mma-atomic`: the mma.sync kernels): its time, the SM's and the
 * tensor pipe's busy share, shared memory, L1, L2 and DRAM throughput against their peaks,
 * registers, achieved occupancy, local-memory (spill) traffic,
 * and the warp stall reasons that cost most. These say whether a kernel waits on the tensor
 * cores, on shared memory, on L2 or on its own latency, which timings alone do not.
 *
 * The parent finds ncu and runs this script under it once per configuration with `--workload`,
 * which calls the attention entry point once (a forward, then a forward and a backward) inside
 * a cudaProfilerStart/Stop range. ncu replays each kernel alone, caches flushed. Every metric
 * whose name speaks of the tensor pipes, shared memory, local memory or stalls is printed as ncu
 * named it, so a metric this script does not pick by name can still be read from the log. Then,
 * for the configurations of `--source-configs` (default `wgmma,wgmma-64`; `none`), one more run
 * collects the forward kernel's source counters and prints its 16 SASS instructions with the
 * most warp-stall samples: where, not only why, a kernel waits.
 * Without ncu or a device: a note and a skip.
 */
import { native } from '../ts/bindings/loader.js';
import type { AttentionCudaTimeOptions } from '../ts/bindings/native.js';
import { findNcu, type NcuRawLaunch, parseRawCsv, printHottest, runUnderNcu, shortName } from './_ncu.js';
import { kernelFigures, RAW_OF_NOTE } from './_ncu-figures.js';
import { nprRollouts } from './_npr-shape.js';
import { argValue, type Figures, printJson, printTable, round } from './_report.js';

const CONFIGS: Record<string, { wgmma: 0 | 1 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 | 11; wgmmaKeys?: 64 | 128; deterministic: boolean }> = {
  wgmma: { wgmma: 10, deterministic: true },
  'wgmma-64': { wgmma: 7, deterministic: true },
  'wgmma-cp': { wgmma: 5, deterministic: true },
  wgmma1: { wgmma: 1, deterministic: true },
  wgmma3: { wgmma: 3, deterministic: true },
  wgmma4: { wgmma: 4, deterministic: true },
  wgmma6: { wgmma: 6, deterministic: true },
  wgmma7: { wgmma: 7, deterministic: true },
  wgmma8: { wgmma: 8, deterministic: true },
  wgmma9: { wgmma: 9, deterministic: true },
  wgmma10: { wgmma: 10, deterministic: true },
  wgmma11: { wgmma: 11, deterministic: true },
  'wgmma-atomic': { wgmma: 10, deterministic: false },
  'wgmma-k128': { wgmma: 10, wgmmaKeys: 128, deterministic: true },
  'wgmma-k128-atomic': { wgmma: 10, wgmmaKeys: 128, deterministic: false },
  mma: { wgmma: 0, deterministic: true },
  'mma-atomic': { wgmma: 0, deterministic: false },
};

const T = Number(argValue('T') ?? 8192);
if (!Number.isInteger(T) || T < 1024) throw new RangeError(`--T must be an integer >= 1024 (got '${argValue('T')}')`);
// Four by default, to stay inside gpu-check's time for the phase; the others on --configs.
const DEFAULT_CONFIGS = 'wgmma,wgmma-64,wgmma-cp,wgmma-atomic';
const configs = (argValue('configs') ?? DEFAULT_CONFIGS).split(',');
// Whose forward kernel also gets its hottest instructions (ncu's source page, SASS): two by
// default, each one more short ncu run; `--source-configs none` skips them.
const sourceArg = argValue('source-configs') ?? 'wgmma,wgmma-64';
const sourceConfigs = sourceArg === 'none' ? [] : sourceArg.split(',');
for (const [flag, list] of [
  ['--configs', configs],
  ['--source-configs', sourceConfigs],
] as const)
  for (const c of list)
    if (!(c in CONFIGS)) throw new RangeError(`${flag}: unknown configuration '${c}' (${Object.keys(CONFIGS).join(', ')})`);

/** One forward and one forward + backward of the attention entry point, inside a profiler range. */
function workload(config: string): void {
  const addon = native();
  const rollout = nprRollouts(T, 1);
  const options: AttentionCudaTimeOptions = {
    heads: 32,
    kvHeads: 8,
    headDim: 128,
    cuSeqlens: rollout.cuSeqlens,
    depth: 1,
    block: rollout.block,
    step: rollout.step,
    dtype: 'bf16',
    iters: 1,
    warmup: 0,
    backward: true,
    ...CONFIGS[config],
  };
  addon.cudaProfilerRange(true);
  const r = addon.attentionCudaTime(options);
  addon.cudaProfilerRange(false);
  console.log(`workload ${config}: forward kernel ${r.forwardKernel}, forward ${r.fwdMs} ms, forward + backward ${r.fwdBwdMs} ms`);
}

function profile(ncu: string, config: string, figures: Figures, rows: Array<Record<string, string | number | null>>): void {
  const r = runUnderNcu(ncu, ['--set', 'full', '--page', 'raw'], ['--workload', config, '--T', String(T)]);
  if (r.status !== 0) {
    console.log(`note: ncu failed for ${config} (exit ${r.status ?? r.signal}): ${(r.stderr ?? '').slice(-1500)}`);
    figures[`error_${config.replace(/-/g, '_')}`] = `ncu exit ${r.status ?? r.signal}`;
    return;
  }
  const byKernel = new Map<string, NcuRawLaunch[]>();
  for (const launch of parseRawCsv(r.stdout ?? '')) {
    const name = shortName(launch.kernel);
    const same = byKernel.get(name);
    if (same) same.push(launch);
    else byKernel.set(name, [launch]);
  }
  if (byKernel.size === 0) console.log(`note: no kernel rows in ncu's output for ${config}:\n${(r.stdout ?? '').slice(0, 1500)}`);
  for (const [name, launches] of byKernel) {
    const k = kernelFigures(name, launches);
    const top = k.stalls.slice(0, 3);
    rows.push({
      config,
      kernel: name,
      launches: k.launches,
      us: round(k.values.us, 1),
      sm_pct: round(k.values.sm_pct, 1),
      tensor_pct: round(k.tensorPct, 1),
      issue_pct: round(k.values.issue_pct, 1),
      smem_pct: round(k.values.smem_pct, 1),
      l2_pct: round(k.values.l2_pct, 1),
      dram_pct: round(k.values.dram_pct, 1),
      regs: k.values.regs,
      occ_pct: round(k.values.occupancy_pct, 1),
      local_kb: k.localBytes === null ? null : round(k.localBytes / 1024, 1),
      stalls: top.map(([s, v]) => `${s} ${v.toFixed(2)}`).join(', '),
    });
    const key = `${config}_${name}`.replace(/[^A-Za-z0-9_]+/g, '_').replace(/_+$/, '');
    figures[`us_${key}`] = round(k.values.us, 1);
    figures[`tensor_pct_${key}`] = round(k.tensorPct, 1);
    figures[`smem_pct_${key}`] = round(k.values.smem_pct, 1);
    figures[`l2_pct_${key}`] = round(k.values.l2_pct, 1);
    figures[`regs_${key}`] = k.values.regs;
    figures[`top_stall_${key}`] = top[0]?.[0] ?? null;
    // The raw metrics of note, as ncu named them, for whoever reads the log.
    const first = launches[0] as NcuRawLaunch;
    const raw = [...first.metrics].filter(([n, c]) => RAW_OF_NOTE.test(n) && c.value.trim() !== '');
    console.log(`\n${config} ${name} (${launches.length} launch${launches.length > 1 ? 'es' : ''}; first launch):`);
    for (const [n, c] of raw) console.log(`  ${n} = ${c.value}${c.unit ? ` ${c.unit}` : ''}`);
  }
}

function main(): void {
  const addon = native();
  const cuda = addon.backends().cuda;
  const ncu = cuda.devices > 0 ? findNcu() : null;
  if (!ncu) {
    console.log(cuda.devices > 0 ? 'note: ncu (Nsight Compute) not found' : `no CUDA device: ${cuda.reason ?? 'unknown'}`);
    printJson('attention-kernels', { skipped: true });
    return;
  }
  const figures: Figures = { device: cuda.deviceName, T };
  const rows: Array<Record<string, string | number | null>> = [];
  for (const config of configs) profile(ncu, config, figures, rows);
  for (const config of sourceConfigs)
    printHottest(ncu, 'attn_fwd', ['--workload', config, '--T', String(T)], `${config}: the forward kernel`, 16);
  console.log('');
  printTable(rows);
  console.log(
    `\n${cuda.deviceName}; NPR rollout of ${T} tokens, 32 / 8 heads, head dim 128, bf16; ncu --set full, one launch of each pass ` +
      '(the forward twice), kernels replayed alone; stalls: warps stalled per issued instruction, by reason',
  );
  printJson('attention-kernels', figures);
}

const at = process.argv.indexOf('--workload');
if (at >= 0) {
  const config = process.argv[at + 1] ?? '';
  if (!(config in CONFIGS)) throw new RangeError(`--workload: unknown configuration '${config}'`);
  workload(config);
} else main();
