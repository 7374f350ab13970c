/**
 * `npm run bench -- decode --backend cuda [--quick] [--python PATH] [--no-peer] [--trials a,b|none]`: the decode step on the
 * device, Qwen3-0.6B shape (hidden 1024, 28 layers, 16/8 heads, head dim 128, ffn 3072, vocab
 * 151,936; random weights, bf16), KV pages on the device:
 *   - batch-1 decode tokens/s after a 1k-token prefill, CUDA graphs on and off, against the
 *     bandwidth bound: (weight bytes + KV bytes read per token) / the device-to-device copy
 *     bandwidth this run measures (bytes read + written per second);
 *   - step time for 1, 2, 4, 8 branches forked off the same 1k prefix, cascade on and off;
 *   - the 1k-token prompt's prefill, in one call and in chunks of 256 (`prefill_ms_1k*`): each
 *     chunk's causal part by the training forward's fused attention and the pages before it
 *     through the cascade (the default), or every row through the pages (`_paged`: the pages
 *     before the chunk shared by groups of rows; `_paged_flat`: every row reading its whole
 *     prefix, as before either);
 *   - all of that with the decoder's default decode-specialised kernels (`fastKernels`: stacked
 *     projections, skinny linear layers on tensor cores, tensor-core attention with the q/k
 *     norm + RoPE + KV write inside it, staged merge), and 1 and 8 branches with the generic ops (`fastKernels: false`), keys
 *     suffixed `_generic`;
 *   - the other decode options, each at batch 1 and 8 branches: the layer's kernels as
 *     programmatic dependent launches in every step (`candidateKernels: true`, keys suffixed
 *     `_candidate`; in eager steps, `_candidate_eager`) and in none (`false`, `_no_candidate`;
 *     the default takes them in graph steps of one sequence; these two also at 2 and 4 branches,
 *     `device_ms_2_*`, `device_ms_4_*`, beside the default's `device_ms_2`, `device_ms_4`), each
 *     skinny linear layer prefetching the next one's
 *     weights into L2 (`prefetchNextWeights`, `_prefetch_next`; with the programmatic launches
 *     `_prefetch_next_candidate`, on CUDA cores `_prefetch_next_cuda_cores`), the
 *     serial attention merge (`attentionMerge: 'serial'`, `_serial`), the q/k norm + RoPE + KV
 *     write as a kernel of its own instead of inside the attend kernel (`fusedQkWrite: false`,
 *     `_separate_qk_write`), the attend kernel's programmatic launches prefetching their keys and
 *     values into L2 before waiting (`attentionPrefetch`, `_attn_prefetch`; in every step,
 *     `_attn_prefetch_candidate`), the skinny linear layers
 *     on CUDA cores (`tensorCoreLinears: false`, `_cuda_cores`), the attention's split-KV
 *     (`attentionPagesPerItem` / `attentionItemsPerRun`: `_attn_items_<n>`, n work items a kv
 *     head over the 1k prefix, against the default's 13), each decode call waiting for its
 *     step (`_no_overlap`), the decode steps awaited
 *     on a worker thread (`_worker_decode`), and the whole step as one persistent kernel
 *     (`stepKernel`, `_step_kernel`: on sm_90 its weights streamed through shared memory; without
 *     the stream, `_step_kernel_no_stream`, loading them itself with an L2 prefetch; without either,
 *     `_step_kernel_no_prefetch`; with a merge phase of its own after the attention in place of
 *     the merges folded into it, `_step_kernel_unfolded`; with a grid barrier after q|k|v in place
 *     of each attention unit waiting for its own head's tiles, `_step_kernel_no_head_flags`;
 *     its phases timed barrier to barrier, `kernel_phase_ms_b1_<phase>`, `kernel_phase_ms_8_<phase>`,
 *     and where its CTAs' time went, per CTA: waiting for streamed weights to land
 *     (`kernel_phase_ms_b1_cta_wait_ring`, the most one CTA waited, `_max`, and by the phase it
 *     held up, `_cta_wait_ring_<phase>`), at grid barriers and for q|k|v heads (`_cta_wait_grid`,
 *     `_max`, and by the phase the barrier ended, `_cta_wait_grid_<phase>`), and the rest
 *     (`_cta_work`));
 *   - each step's device time (its launches, start to end on the stream: `device_ms_*`) next
 *     to its wall time, which adds the host's work and the sampling; the wall time of the
 *     decode call alone (`decode_call_ms_*`: by default the launch, the device's time then
 *     showing in the sampling call) and its host parts (`host_ms_b1_*`, `host_ms_8_*`:
 *     queued, prep, launch, wait for the device, resolve);
 *   - where each step's device time goes: every op timed by CUDA events over eager steps
 *     (`profile`), batch 1 on both paths and 8 branches on the default one (`op_ms_b1_<op>`,
 *     `op_ms_b1_generic_<op>`, `op_ms_8_<op>`: ms a step, and their `_total`).
 * Each figure is the median of the timed steps; a step is `kv.decodeLaunch(...)` from JS (the
 * engine's way on CUDA: the step enqueued, the sampling call waiting for it; `_no_overlap` keys:
 * `kv.decodeSync(...)`, the decode call waiting; `_worker_decode` keys: `await kv.decode(...)`,
 * on a worker thread) and
 * then every row sampled on the device (`kv.sample`, temperature 1), as the engine runs it: the
 * logits stay on the device and only tokens and logprobs come back. Peer in the same run: Hugging Face
 * transformers' generate on the same shape (bench/peers/decode_cuda.py, eager and with the
 * static cache), when a python3 with torch + CUDA + transformers is found; otherwise a note.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { native } from '../ts/bindings/loader.js';
import type { NativeKv, NativeKvOptions, NativeQwen3 } from '../ts/bindings/native.js';
import { type DecodeMode, lastSplit, prefillAndFork, type StepRead, timedDecodeStep } from './_decode-step.js';
import { argFlag, argValue, median, printJson, printTable, round } from './_report.js';
import { seedNativeModel } from './_weights.js';

const addon = native();
const SHAPE = { vocab: 151936, hidden: 1024, intermediate: 3072, layers: 28, heads: 16, kvHeads: 8, headDim: 128 };
const PREFIX = 1024;
const quick = argFlag('quick');
const STEPS = quick ? 10 : 40;

if (addon.backends().cuda.devices === 0) {
  console.log(`no CUDA device: ${addon.backends().cuda.reason ?? 'unknown'}`);
  printJson('decode-cuda', { skipped: true });
  process.exit(argFlag('require-cuda') ? 1 : 0);
}

function makeModel(): NativeQwen3 {
  const m = new addon.NativeQwen3({ ...SHAPE, ropeTheta: 1e6, tied: true }, { backend: 'cuda', precision: 'bf16' });
  return seedNativeModel(m, 99);
}

/** A run's decode options: those named as in NativeKvOptions (the kernels' defaults where left out), and the rest below. */
interface Run
  extends Pick<
    NativeKvOptions,
    | 'attentionPrefetch'
    | 'fusedQkWrite'
    | 'stepKernel'
    | 'stepKernelPrefetch'
    | 'stepKernelStream'
    | 'stepKernelFoldMerge'
    | 'stepKernelHeadFlags'
    | 'stepKernelRingSlots'
    | 'stepKernelTiming'
  > {
  graphs: boolean;
  fast: boolean;
  profile?: boolean;
  /** NativeKvOptions.candidateKernels (default 'one-row'). */
  candidate?: boolean | 'one-row';
  /** NativeKvOptions.prefetchNextWeights (default false). */
  prefetchNext?: boolean;
  tensorCores?: boolean;
  merge?: 'staged' | 'serial';
  /** NativeKvOptions.attentionPagesPerItem / attentionItemsPerRun (defaults 4 / 16). */
  pagesPerItem?: number;
  itemsPerRun?: number;
  /** kv.decodeLaunch, as the engine decodes on CUDA (default); 'sync': kv.decodeSync; 'worker': await kv.decode. */
  decode?: DecodeMode;
  /** What each step reads: its rows sampled (default), or a token's log-probability a row. */
  read?: StepRead;
}

/** Median step seconds of `branches` branches off a PREFIX-token prefix (1: no fork). */
async function stepTime(
  model: NativeQwen3,
  branches: number,
  cascade: boolean,
  run: Run,
): Promise<{ t: number; kv: NativeKv; deviceMs: number; decodeT: number; host: Record<string, number> }> {
  const { graphs, fast, profile, candidate, tensorCores, merge } = run;
  const mode = run.decode ?? 'launch';
  const numBlocks = Math.ceil((PREFIX + branches * (STEPS + 8)) / 16) + branches + 8;
  const kv = new addon.NativeKv(model, {
    numBlocks,
    graphs,
    fastKernels: fast,
    profile: profile ?? false,
    candidateKernels: candidate ?? 'one-row',
    prefetchNextWeights: run.prefetchNext ?? false,
    tensorCoreLinears: tensorCores ?? true,
    attentionMerge: merge ?? 'staged',
    fusedQkWrite: run.fusedQkWrite ?? true,
    attentionPrefetch: run.attentionPrefetch ?? false,
    attentionPagesPerItem: run.pagesPerItem ?? 4,
    attentionItemsPerRun: run.itemsPerRun ?? 16,
    stepKernel: run.stepKernel ?? false,
    stepKernelPrefetch: run.stepKernelPrefetch ?? true,
    stepKernelStream: run.stepKernelStream ?? true,
    stepKernelFoldMerge: run.stepKernelFoldMerge ?? true,
    stepKernelHeadFlags: run.stepKernelHeadFlags ?? true,
    stepKernelRingSlots: run.stepKernelRingSlots ?? 12,
    stepKernelTiming: run.stepKernelTiming ?? false,
  });
  const seqs = await prefillAndFork(kv, PREFIX, SHAPE.vocab, branches, new Float32Array(SHAPE.vocab));
  const times: number[] = [];
  const decodeTimes: number[] = []; // the `await kv.decode` part of each step
  const before = kv.deviceStats(); // the prefill's profile is not the steps'
  for (const [op, ms] of Object.entries(before.opMs)) opBase.set(op, ms);
  opBaseSteps = before.profiledSteps;
  let device = { ms: 0, steps: 0 };
  let host0 = kv.deviceStats().hostMs;
  for (let step = 0; step < STEPS + 3; step++) {
    if (step === 3) {
      const st = kv.deviceStats();
      device = { ms: st.deviceMs, steps: st.deviceTimedSteps };
      host0 = st.hostMs;
    }
    const t = await timedDecodeStep(kv, seqs, SHAPE.vocab, step, PREFIX + step, cascade, null, mode, run.read);
    if (step >= 3) {
      times.push(t); // 3 warm-up steps (graph capture)
      decodeTimes.push(lastSplit.decodeS);
    }
  }
  const after = kv.deviceStats();
  // Mean device time of the timed steps' launches (graph replay or eager), without the host.
  const deviceMs = (after.deviceMs - device.ms) / Math.max(1, after.deviceTimedSteps - device.steps);
  // Mean host ms of a timed decode call, by part (NativeKvDeviceStats.hostMs).
  const calls = Math.max(1, after.hostMs.calls - host0.calls);
  const host: Record<string, number> = {};
  for (const part of ['queueMs', 'prepMs', 'launchMs', 'waitMs', 'resolveMs'] as const)
    host[part.replace('Ms', '')] = round((after.hostMs[part] - host0[part]) / calls, 4) as number;
  return { t: median(times), kv, deviceMs, decodeT: median(decodeTimes), host };
}
const opBase = new Map<string, number>();
let opBaseSteps = 0;

/** Device ms a step per op kind over the timed steps of a profiled run (rounded). */
async function opProfile(model: NativeQwen3, branches: number, fast: boolean): Promise<Record<string, number>> {
  opBase.clear();
  const { kv } = await stepTime(model, branches, true, { graphs: false, fast, profile: true });
  const st = kv.deviceStats();
  const steps = st.profiledSteps - opBaseSteps;
  const out: Record<string, number> = {};
  let total = 0;
  for (const [op, ms] of Object.entries(st.opMs)) {
    const perStep = (ms - (opBase.get(op) ?? 0)) / Math.max(1, steps);
    out[op] = round(perStep, 4) as number;
    total += perStep;
  }
  out.total = round(total, 4) as number;
  return out;
}

/** The first python3 whose torch sees a CUDA device and has transformers, or the reason. */
function peerPython(): { py: string | null; note: string } {
  const given = argValue('python');
  let note = 'no python3 found';
  for (const py of given ? [given] : ['python3', '/usr/bin/python3']) {
    const r = spawnSync(py, ['-c', 'import torch, transformers; print(torch.cuda.is_available())'], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim() === 'True') return { py, note: '' };
    note = r.status === 0 ? `${py}: torch sees no CUDA device` : `${py}: ${(r.stderr ?? '').trim().split('\n').at(-1)}`;
  }
  return { py: null, note };
}

// The options off by default, each at batch 1 and 8 branches.
const allTrials: Record<string, Partial<Run>> = {
  candidate: { candidate: true },
  // No programmatic launches at all (the default takes them in one-sequence graph steps).
  no_candidate: { candidate: false },
  // Each skinny linear layer prefetching the next one's weights into L2 as it starts, alone, with
  // the programmatic dependent launches, and on CUDA cores.
  prefetch_next: { prefetchNext: true },
  prefetch_next_candidate: { prefetchNext: true, candidate: true },
  prefetch_next_cuda_cores: { prefetchNext: true, tensorCores: false },
  // PDL without graphs: whether a captured graph keeps the programmatic launches' overlap
  // (compare with device_ms_b1_no_graphs, the default kernels' eager steps).
  candidate_eager: { candidate: true, graphs: false },
  serial: { merge: 'serial' },
  // The q/k norm + RoPE + KV write as a kernel of its own before the attention (the default
  // runs it inside the tensor-core attend kernel in one-token steps).
  separate_qk_write: { fusedQkWrite: false },
  // The attend kernel's programmatic launches prefetching each item's keys and values into L2
  // before they wait for q|k|v: in the default's one-sequence steps (at 8 branches the default
  // has no programmatic launches, so those figures are the default's), and in every step.
  attn_prefetch: { attentionPrefetch: true },
  attn_prefetch_candidate: { attentionPrefetch: true, candidate: true },
  cuda_cores: { tensorCores: false },
  // The attention's split-KV (its defaults: items of at least 4 pages, at most 16 a run; the 1k
  // prefix's 65 pages make 13 items of 5 pages a kv head, 80 keys: a full tile of the attend
  // kernel's 64 keys and a tile of 16, loaded one after the other): never tuned on a GPU. 33
  // items of 2 pages, 22 of 3, 17 of 4 (one whole tile each), 8 of 9, 4 of 17.
  attn_items_33: { pagesPerItem: 1, itemsPerRun: 64 },
  attn_items_22: { pagesPerItem: 2, itemsPerRun: 32 },
  attn_items_17: { pagesPerItem: 4, itemsPerRun: 17 },
  attn_items_8: { pagesPerItem: 8, itemsPerRun: 8 },
  attn_items_4: { pagesPerItem: 16, itemsPerRun: 4 },
  // Each step waited for by its decode call (kv.decodeSync) instead of by its sampling call.
  no_overlap: { decode: 'sync' },
  // Each step awaited on a worker thread (kv.decode) instead of run on the JS thread.
  worker_decode: { decode: 'worker' },
  // Each step read as the engine's scripted chooser reads it (a token's log-probability a row,
  // token_logprobs_cuda) instead of sampled: the engine bench's reads.
  read_logprobs: { read: 'logprobs' },
  // The whole step as one persistent kernel (grid barriers between phases): its weights
  // streamed through shared memory (sm_90), or loaded by the kernel itself with and without its
  // L2 prefetch of the next phase's weights.
  step_kernel: { stepKernel: true },
  step_kernel_no_stream: { stepKernel: true, stepKernelStream: false },
  step_kernel_no_prefetch: { stepKernel: true, stepKernelStream: false, stepKernelPrefetch: false },
  // The attention's split-KV merges as a phase of their own (a grid barrier more a layer)
  // instead of done by the CTA that finishes each query's last share.
  step_kernel_unfolded: { stepKernel: true, stepKernelFoldMerge: false },
  // A grid barrier after q|k|v instead of each attention unit waiting for its own head's tiles.
  step_kernel_no_head_flags: { stepKernel: true, stepKernelHeadFlags: false },
  // A ring of 4 slots, not as many as fit (9 at the 0.6B shape): how much the step's time
  // depends on how far ahead the weight stream runs (a deeper ring takes shared memory from the
  // attention).
  step_kernel_ring4: { stepKernel: true, stepKernelRingSlots: 4 },
  // Its phases timed barrier to barrier (every step then waits for the device: its step times
  // are not the headline): where the one kernel's time goes.
  step_kernel_timed: { stepKernel: true, stepKernelTiming: true },
};
// --trials a,b,...: only these (a tight GPU run); `none`: no trials.
const trialList = argValue('trials');
if (trialList !== undefined)
  for (const name of trialList.split(','))
    if (name !== 'none' && !(name in allTrials))
      throw new Error(`--trials: unknown trial '${name}' (${Object.keys(allTrials).join(', ')})`);
const trials = Object.fromEntries(
  Object.entries(allTrials).filter(([name]) => trialList === undefined || trialList.split(',').includes(name)),
);
const model = makeModel();
const rows: Array<Record<string, string | number | null>> = [];
const times: Record<string, number> = {};
const deviceTimes: Record<string, number> = {};
const decodeCallTimes: Record<string, number> = {};
const hostParts: Record<string, Record<string, number>> = {}; // default kernels, cascade: b1, 8
let stats = { eagerSteps: 0, graphCaptures: 0, graphReplays: 0, graphError: '', candidateSteps: 0 };
let copyGbps = 0;
for (const fast of [true, false]) {
  for (const branches of fast ? [1, 2, 4, 8] : [1, 8]) {
    for (const cascade of [true, false]) {
      const { t, kv, deviceMs, decodeT, host } = await stepTime(model, branches, cascade, { graphs: true, fast });
      if (cascade && fast && (branches === 1 || branches === 8)) hostParts[branches === 1 ? 'b1' : '8'] = host;
      if (branches === 1 && cascade && fast) {
        stats = kv.deviceStats();
        copyGbps = Math.max(kv.deviceCopyBandwidth(1024), kv.deviceCopyBandwidth(1024));
      }
      times[`${branches}_${cascade}${fast ? '' : '_generic'}`] = t;
      deviceTimes[`${branches}_${cascade}${fast ? '' : '_generic'}`] = deviceMs;
      decodeCallTimes[`${branches}_${cascade}${fast ? '' : '_generic'}`] = decodeT;
      const kernels = fast ? 'fast' : 'generic';
      rows.push({
        kernels,
        branches,
        cascade: String(cascade),
        graphs: 'true',
        step_ms: round(t * 1000, 3),
        decode_ms: round(decodeT * 1000, 3),
        device_ms: round(deviceMs, 3),
        tok_per_s: round(branches / t, 1),
      });
    }
  }
}
type Timed = {
  t: number;
  deviceMs: number;
  decodeT: number;
  kernelSteps: number;
  kernelStreamed: boolean;
  kernelRingSlots: number;
  phaseMs: Record<string, number>;
};
const trial: Record<string, { one: Timed; eight: Timed; two?: Timed; four?: Timed }> = {};
// Trials also timed at 2 and 4 branches: where the programmatic launches stop paying (the
// default takes them at one sequence; measured ahead at 1 and behind at 8).
const MIDDLE_BRANCHES = new Set(['candidate', 'no_candidate']);
async function runTrial(name: string, extra: Partial<Run>): Promise<void> {
  const timed = async (branches: number): Promise<Timed> => {
    const x = await stepTime(model, branches, true, { graphs: true, fast: true, ...extra });
    const st = x.kv.deviceStats();
    // Device ms a step per phase of the one kernel (stepKernelTiming), over its timed steps.
    const phaseMs = Object.fromEntries(
      Object.entries(st.kernelPhaseMs).map(([k, ms]) => [k, round(ms / Math.max(1, st.kernelTimedSteps), 4) as number]),
    );
    return { ...x, kernelSteps: st.kernelSteps, kernelStreamed: st.kernelStreamed, kernelRingSlots: st.kernelRingSlots, phaseMs };
  };
  const r: (typeof trial)[string] = { one: await timed(1), eight: await timed(8) };
  if (MIDDLE_BRANCHES.has(name)) {
    r.two = await timed(2);
    r.four = await timed(4);
  }
  trial[name] = r;
  const timedAt: [number, Timed | undefined][] = [
    [1, r.one],
    [2, r.two],
    [4, r.four],
    [8, r.eight],
  ];
  for (const [branches, x] of timedAt)
    if (x)
      rows.push({
        kernels: name,
        branches,
        cascade: 'true',
        graphs: String(extra.graphs ?? true),
        step_ms: round(x.t * 1000, 3),
        decode_ms: round(x.decodeT * 1000, 3),
        device_ms: round(x.deviceMs, 3),
        tok_per_s: round(branches / x.t, 1),
      });
}
// The one-kernel step is the least-run code here (its cooperative launch, grid barriers and
// flags): its trials come after everything else, so a device fault there (sticky for the
// process) cannot take the other figures with it.
const isStepKernel = (name: string) => name.startsWith('step_kernel');
for (const [name, extra] of Object.entries(trials)) if (!isStepKernel(name)) await runTrial(name, extra);
const eagerRun = await stepTime(model, 1, true, { graphs: false, fast: true });
const eager = eagerRun.t;
rows.push({
  kernels: 'fast',
  branches: 1,
  cascade: 'true',
  graphs: 'false',
  step_ms: round(eager * 1000, 3),
  decode_ms: round(eagerRun.decodeT * 1000, 3),
  device_ms: round(eagerRun.deviceMs, 3),
  tok_per_s: round(1 / eager, 1),
});
/**
 * Median wall ms of a PREFIX-token prompt prefilled in `chunk`-token decode calls (each waited
 * for, logits left on the device), after one warm-up prompt: each chunk's causal part by the
 * fused attention (`fused`) or through the pages, and the pages before a chunk read once for
 * groups of its rows (`cascade`) or by every row.
 */
async function prefillMs(chunk: number, fused: boolean, cascade: boolean): Promise<number> {
  const numBlocks = 4 * (Math.ceil(PREFIX / 16) + 1);
  const kv = new addon.NativeKv(model, { numBlocks, fusedChunkAttention: fused });
  const ms: number[] = [];
  for (let run = 0; run < 3; run++) {
    const seq = kv.createSequence(kv.openRequest(1 << 20));
    const t0 = performance.now();
    for (let at = 0; at < PREFIX; at += chunk) {
      const n = Math.min(chunk, PREFIX - at);
      kv.append(seq, n, false);
      const ids = Int32Array.from({ length: n }, (_, i) => ((at + i) * 7919) % SHAPE.vocab);
      kv.decodeSync({
        seqs: Int32Array.of(seq),
        cuNew: Int32Array.of(0, n),
        ids,
        positions: Int32Array.from(ids, (_, i) => at + i),
        cascade,
      });
    }
    if (run > 0) ms.push(performance.now() - t0); // run 0 warms up
    kv.free(seq);
  }
  return median(ms);
}
const prefill = {
  prefill_ms_1k: await prefillMs(PREFIX, true, true),
  prefill_ms_1k_paged: await prefillMs(PREFIX, false, true),
  prefill_ms_1k_paged_flat: await prefillMs(PREFIX, false, false),
  prefill_ms_1k_chunks_256: await prefillMs(256, true, true),
  prefill_ms_1k_chunks_256_paged: await prefillMs(256, false, true),
  prefill_ms_1k_chunks_256_paged_flat: await prefillMs(256, false, false),
};
const profiles = {
  op_ms_b1: await opProfile(model, 1, true),
  op_ms_b1_generic: await opProfile(model, 1, false),
  op_ms_8: await opProfile(model, 8, true),
};
let stepKernelError: string | null = null;
for (const [name, extra] of Object.entries(trials)) {
  if (!isStepKernel(name) || stepKernelError) continue;
  try {
    await runTrial(name, extra);
  } catch (e) {
    stepKernelError = `${name}: ${(e as Error).message}`;
    console.log(`error: the one-kernel step trial ${stepKernelError}`);
  }
}
const one = times['1_true'] as number;
const oneGeneric = times['1_true_generic'] as number;
const params = model.paramCount;
const kvBytesPerToken = SHAPE.layers * 2 * SHAPE.kvHeads * SHAPE.headDim * 2;
const bytes = params * 2 + kvBytesPerToken * (PREFIX + STEPS / 2);
const bound = copyGbps > 0 ? bytes / (copyGbps * 1e9) : null;

const peerScript = join(import.meta.dirname, '..', '..', 'bench', 'peers', 'decode_cuda.py');
const { py, note } = argFlag('no-peer')
  ? { py: null, note: '--no-peer' }
  : existsSync(peerScript)
    ? peerPython()
    : { py: null, note: `${peerScript} missing` };
let hf: { eager_tok_s: number | null; static_tok_s: number | null; errors: Record<string, string>; versions: string } | null = null;
if (py) {
  const r = spawnSync(py, [peerScript, JSON.stringify({ ...SHAPE, prefix: PREFIX, steps: quick ? 16 : 48 })], {
    encoding: 'utf8',
    timeout: 900_000,
  });
  if (r.status === 0) hf = JSON.parse(r.stdout.trim().split('\n').at(-1) as string);
  else console.log(`note: transformers peer failed (exit ${r.status ?? r.signal}): ${(r.stderr ?? '').slice(-1500)}`);
} else console.log(`note: transformers peer not run: ${note}`);
printTable(rows);
console.log('\ndevice ms a step per op (eager steps, CUDA events between ops):');
const opNames = [...new Set(Object.values(profiles).flatMap((p) => Object.keys(p)))];
printTable(opNames.map((op) => ({ op, ...Object.fromEntries(Object.entries(profiles).map(([k, p]) => [k, p[op] ?? null])) })));
const timedKernel = trial.step_kernel_timed;
if (timedKernel && Object.keys(timedKernel.one.phaseMs).length > 0) {
  console.log('\none-kernel step: device ms a step per phase (CTA 0 leaving each grid barrier):');
  printTable(
    Object.keys(timedKernel.one.phaseMs).map((phase) => ({
      phase,
      ms_b1: timedKernel.one.phaseMs[phase] ?? null,
      ms_8: timedKernel.eight.phaseMs[phase] ?? null,
    })),
  );
}
console.log(
  `\nQwen3-0.6B shape, bf16, prefix ${PREFIX}; copy bandwidth ${copyGbps.toFixed(0)} GB/s measured in this run; ` +
    `graphs: ${stats.graphCaptures} captures, ${stats.graphReplays} replays${stats.graphError ? `, error: ${stats.graphError}` : ''}`,
);
if (hf)
  console.log(
    `transformers ${hf.versions}: eager ${hf.eager_tok_s?.toFixed(1)} tok/s, static cache ${hf.static_tok_s?.toFixed(1) ?? '-'} tok/s ${JSON.stringify(hf.errors)}`,
  );
const best = (a: number | null | undefined, b: number | null | undefined) => Math.max(a ?? 0, b ?? 0) || null;
printJson('decode-cuda', {
  tok_s_b1: round(1 / one, 1),
  tok_s_b1_no_graphs: round(1 / eager, 1),
  // Device time of a step's launches alone (no host work, no sampling): graph replay, eager.
  device_ms_b1: round(deviceTimes['1_true'] ?? null, 3),
  device_ms_b1_no_graphs: round(eagerRun.deviceMs, 3),
  device_ms_8: round(deviceTimes['8_true'] ?? null, 3),
  device_ms_2: round(deviceTimes['2_true'] ?? null, 3),
  device_ms_4: round(deviceTimes['4_true'] ?? null, 3),
  // Wall ms of a step's `await kv.decode` alone (step_ms less the sampling call).
  decode_call_ms_b1: round((decodeCallTimes['1_true'] ?? Number.NaN) * 1000, 3),
  decode_call_ms_8: round((decodeCallTimes['8_true'] ?? Number.NaN) * 1000, 3),
  // Where a decode call's host time goes (NativeKvDeviceStats.hostMs, ms a call): queue, prep,
  // launch, wait (for the device), resolve.
  ...Object.fromEntries(
    Object.entries(hostParts).flatMap(([k, parts]) => Object.entries(parts).map(([part, ms]) => [`host_ms_${k}_${part}`, ms])),
  ),
  copy_gbps: round(copyGbps, 0),
  ...Object.fromEntries(Object.entries(prefill).map(([k, v]) => [k, round(v, 2)])),
  bandwidth_bound_ms_b1: bound === null ? null : round(bound * 1000, 3),
  fraction_of_hbm_bound_b1: bound === null ? null : round(bound / one),
  ratio_8_vs_1: round((times['8_true'] as number) / one),
  ratio_8_vs_1_nocascade: round((times['8_false'] as number) / (times['1_false'] as number)),
  step_ms_8_cascade: round((times['8_true'] as number) * 1000, 3),
  tok_s_b1_generic: round(1 / oneGeneric, 1),
  fraction_of_hbm_bound_b1_generic: bound === null ? null : round(bound / oneGeneric),
  ratio_8_vs_1_generic: round((times['8_true_generic'] as number) / oneGeneric),
  ratio_8_vs_1_nocascade_generic: round((times['8_false_generic'] as number) / (times['1_false_generic'] as number)),
  speedup_fast_vs_generic_b1: round(oneGeneric / one),
  ...Object.fromEntries(
    Object.entries(trial).flatMap(([name, r]) => [
      [`tok_s_b1_${name}`, round(1 / r.one.t, 1)],
      [`ratio_8_vs_1_${name}`, round(r.eight.t / r.one.t)],
      [`device_ms_b1_${name}`, round(r.one.deviceMs, 3)],
      [`device_ms_8_${name}`, round(r.eight.deviceMs, 3)],
      ...(r.two && r.four
        ? [
            [`device_ms_2_${name}`, round(r.two.deviceMs, 3)],
            [`device_ms_4_${name}`, round(r.four.deviceMs, 3)],
          ]
        : []),
      [`decode_call_ms_b1_${name}`, round(r.one.decodeT * 1000, 3)],
      [`fraction_of_hbm_bound_b1_${name}`, bound === null ? null : round(bound / r.one.t)],
      ...(name.startsWith('step_kernel')
        ? [
            // Steps that ran as the one kernel (0: the shape did not fit, the layer path ran).
            [`kernel_steps_b1_${name}`, r.one.kernelSteps],
            [`kernel_steps_8_${name}`, r.eight.kernelSteps],
            // Whether its steps streamed the weights (stepKernelStream on an sm_90 device).
            [`kernel_streamed_${name}`, r.one.kernelStreamed],
            // ... through a ring of this many slots.
            [`kernel_ring_slots_${name}`, r.one.kernelRingSlots],
            ...Object.entries(r.one.phaseMs).map(([phase, ms]) => [`kernel_phase_ms_b1_${phase}`, ms]),
            ...Object.entries(r.eight.phaseMs).map(([phase, ms]) => [`kernel_phase_ms_8_${phase}`, ms]),
          ]
        : []),
    ]),
  ),
  hf_tok_s_b1_eager: hf?.eager_tok_s ?? null,
  hf_tok_s_b1_static: hf?.static_tok_s ?? null,
  ratio_vs_hf_b1: round(hf ? 1 / one / (best(hf.eager_tok_s, hf.static_tok_s) ?? Number.NaN) : null),
  step_kernel_error: stepKernelError,
  graph_replays: stats.graphReplays,
  // Batch-1 steps (default options) launched as programmatic dependent launches ('one-row').
  candidate_steps_b1: stats.candidateSteps,
  graph_error: stats.graphError || null,
  ...Object.fromEntries(Object.entries(profiles).flatMap(([k, p]) => Object.entries(p).map(([op, ms]) => [`${k}_${op}`, ms]))),
});
