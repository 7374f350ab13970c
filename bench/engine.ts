/**
 * `npm run bench -- engine [--quick]`: the NPR engine in AR mode and in parallel mode on the
 * same responses, reporting generated tokens/s, wall time and their ratio.
 *
 * The model forks because its token CHOICES are scripted (ScriptedChooser): a real Qwen3 with
 * random f32 weights (hidden 384, 6 layers, 6/2 heads, head dim 64, ffn 1024, vocab 512) runs
 * the real decode path over the paged KV cache for every token, and the script says which token
 * each branch takes. Parallel mode: blocks of 4 and 3 plans, steps of 30-40 tokens. AR mode: the
 * trunk is scripted to write the parallel rollout's response token for token, so both modes
 * generate exactly the same tokens and the speedup is a ratio of wall times. One request at a
 * time (batch 1, the latency view); each figure is the median of several runs. The `_long` keys
 * repeat it with NPR-length steps of 250-350 tokens (default options only).
 *
 * `--backend cuda`: the same scripts on the Qwen3-0.6B shape (hidden 1024, 28 layers, 16/8
 * heads, head dim 128, ffn 3072, vocab 151,936; random weights, bf16) on the device, once with
 * the default decode-specialised kernels, once with the generic ones (`_generic` keys), and once
 * with each decode option off by default: programmatic dependent launches in every step
 * (`candidateKernels: true`, `_candidate`; the default takes them in one-sequence graph steps,
 * `_no_candidate` in none), the skinny linear layers on CUDA cores (`_cuda_cores`) and each step of at most
 * 8 sequences as one persistent kernel (`stepKernel`, `_step_kernel`), with each decode call
 * waiting for its step instead of returning at its launch (`overlapDecode: false`, `_no_overlap`),
 * and with the decode steps awaited on a worker thread instead of run on the JS thread
 * (`_worker_decode`). `decode_ms_per_call_*` is the decode call alone (by default on CUDA its
 * launch), `step_ms_per_call_*` the whole step: the decode call, then reading its results.
 */

import { native } from '../ts/bindings/loader.js';
import type { NativeKvOptions, NativeQwen3 } from '../ts/bindings/native.js';
import { CharCodec, Engine, type EngineOptions, type Rollout, ScriptedChooser } from '../ts/engine/index.js';
import { Qwen3Config } from '../ts/model/config.js';
import { Model } from '../ts/model/model.js';
import { argFlag, argValue, median, printJson, printTable, round } from './_report.js';
import { seedNativeModel } from './_weights.js';

const quick = argFlag('quick');
const cuda = argValue('backend') === 'cuda';
const BLOCKS = [4, 3];
const RUNS = quick ? 1 : 3;
const PROMPTS = ['q: 12+30=?', 'q: is 91 prime?'];

const codec = new CharCodec();
const config = Qwen3Config.create({
  vocabSize: 512,
  hiddenSize: 384,
  intermediateSize: 1024,
  numHiddenLayers: 6,
  numAttentionHeads: 6,
  numKeyValueHeads: 2,
  headDim: 64,
  rmsNormEps: 1e-6,
  ropeTheta: 1e6,
  tieWordEmbeddings: true,
  maxPositionEmbeddings: 4096,
  torchDtype: 'float32',
  bosTokenId: undefined,
  eosTokenId: undefined,
});

/** The model's native handle and vocabulary: the small f32 model on the CPU, 0.6B bf16 on CUDA. */
function makeModel(): { handle: NativeQwen3; vocab: number; name: string } {
  if (!cuda)
    return { handle: Model.create(config, { seed: 7 }).nativeHandle, vocab: config.vocabSize, name: 'scripted-random-qwen3-h384-l6' };
  const addon = native();
  if (addon.backends().cuda.devices === 0) {
    console.log(`no CUDA device: ${addon.backends().cuda.reason ?? 'unknown'}`);
    printJson('engine', { skipped: true });
    process.exit(argFlag('require-cuda') ? 1 : 0);
  }
  const shape = { vocab: 151936, hidden: 1024, intermediate: 3072, layers: 28, heads: 16, kvHeads: 8, headDim: 128 };
  const m = new addon.NativeQwen3({ ...shape, ropeTheta: 1e6, tied: true }, { backend: 'cuda', precision: 'bf16' });
  return { handle: seedNativeModel(m, 7), vocab: shape.vocab, name: 'scripted-random-qwen3-0p6b-bf16-cuda' };
}
const model = makeModel();
const VOCAB = model.vocab;

/** Deterministic step text of `n` characters (one token each). */
function words(seed: number, n: number): string {
  const vocab = ['x+1=2', 'so', 'then y', '3*4=12', 'check', 'ok', 'sum', '9-2=7'];
  let s = '';
  let k = seed;
  while (s.length < n) {
    k = (k * 1103515245 + 12345) >>> 0;
    s += `${vocab[k % vocab.length]} `;
  }
  return s.slice(0, n);
}

/**
 * The parallel script of prompt p: each block's plans, steps of 30-40 tokens (or, `long`, of
 * 250-350: NPR's steps run to hundreds of tokens, so the sequential plans and takeaways weigh
 * less), a short takeaway.
 */
function parallelScript(p: number, long = false): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  let trunk = '';
  BLOCKS.forEach((plans, b) => {
    trunk += '<guideline>';
    for (let i = 1; i <= plans; i++) {
      trunk += `<plan>${i}: ${words(p * 97 + b * 13 + i, 6)}</plan>`;
      // The forced prefix '\n<step>\n{i}:' is 5 tokens; the step then writes 25-35 more.
      const len = long ? 244 + ((p * 37 + b * 53 + i * 29) % 101) : 24 + ((p + b * 3 + i * 5) % 11);
      out[`${b}:${i}`] = codec.encode(`${words(p * 31 + b * 7 + i, len)}</step>`);
    }
    trunk += `</guideline> ${words(p + b, 8)}</takeaway>\n`;
  });
  out[''] = codec.encode(`${trunk}\\boxed{42}`);
  return out;
}

// The KV cache's decode options, and the engine's syncDecode and overlapDecode (default: on for CUDA).
type KvOptions = Pick<
  NativeKvOptions,
  'graphs' | 'fastKernels' | 'candidateKernels' | 'tensorCoreLinears' | 'attentionMerge' | 'stepKernel'
> & {
  syncDecode?: boolean;
  overlapDecode?: boolean;
};

function kvOnly({ syncDecode: _, overlapDecode: __, ...kv }: KvOptions): EngineOptions['kvOptions'] {
  return kv;
}

async function timeMode(
  mode: 'ar' | 'parallel',
  scripts: Record<string, number[]>[],
  kvOptions: KvOptions,
): Promise<{ ms: number; tokens: number; rollouts: Rollout[]; steps: number[]; decodeMs: number; stepMs: number; forkPhaseMs: number }> {
  const engine = new Engine({
    model: model.handle,
    vocab: VOCAB,
    codec,
    kvBlocks: cuda ? 256 : 1024, // 0.6B bf16 blocks are 1.8 MB each; each run makes a new engine
    kvOptions: kvOnly(kvOptions),
    ...(kvOptions.syncDecode === undefined ? {} : { syncDecode: kvOptions.syncDecode }),
    ...(kvOptions.overlapDecode === undefined ? {} : { overlapDecode: kvOptions.overlapDecode }),
    chooser: () => new ScriptedChooser((r) => scripts[r] ?? {}, CharCodec.EOS),
  });
  const steps: number[] = [];
  let decodeMs = 0; // the decode calls (with overlapDecode, their launches)
  let stepMs = 0; // the whole steps: decode call, then the reads of its results
  let forkPhaseMs = 0;
  let open = false;
  engine.on('fork', () => {
    open = true;
  });
  engine.on('join', () => {
    open = false;
  });
  engine.on('step', (e) => {
    steps.push(e.sequences);
    decodeMs += e.decodeMs;
    stepMs += e.ms;
    if (open) forkPhaseMs += e.ms;
  });
  const t0 = performance.now();
  const rollouts: Rollout[] = [];
  for (let p = 0; p < PROMPTS.length; p++) {
    const [r] = (await engine.generate([PROMPTS[p] as string], { mode, maxNewTokens: 4096, requestKey: p })) as [Rollout];
    rollouts.push(r);
  }
  return {
    ms: performance.now() - t0,
    tokens: rollouts.reduce((a, r) => a + r.generatedTokens, 0),
    rollouts,
    steps,
    decodeMs,
    stepMs,
    forkPhaseMs,
  };
}

const shortScripts = PROMPTS.map((_, p) => parallelScript(p));
const longScripts = PROMPTS.map((_, p) => parallelScript(p, true));

/** Parallel and AR runs with these KV options: the figures, and a table printed. */
async function measure(kvOptions: KvOptions, label: string, parScripts = shortScripts) {
  await timeMode('parallel', parScripts, kvOptions); // warm-up
  const par = await timeMode('parallel', parScripts, kvOptions);
  for (const r of par.rollouts)
    if (r.finishReason !== 'stop' || !r.parallel)
      throw new Error(`parallel rollout ${r.index} finished '${r.finishReason}' without the expected forks`);
  // AR: the trunk writes the parallel response itself, token for token.
  const arScripts = par.rollouts.map((r) => ({ '': Array.from(r.tokens.subarray(r.promptLength)) }));
  const parMs: number[] = [par.ms];
  const arMs: number[] = [];
  let ar = await timeMode('ar', arScripts, kvOptions);
  arMs.push(ar.ms);
  for (let i = 1; i < RUNS; i++) {
    parMs.push((await timeMode('parallel', parScripts, kvOptions)).ms);
    ar = await timeMode('ar', arScripts, kvOptions);
    arMs.push(ar.ms);
  }
  ar.rollouts.forEach((r, i) => {
    const same = r.tokens.length === par.rollouts[i]?.tokens.length && r.tokens.every((t, j) => t === par.rollouts[i]?.tokens[j]);
    if (!same) throw new Error(`AR rollout ${i} does not reproduce the parallel response`);
  });

  const forks = par.rollouts.flatMap((r) => r.blocks.filter((b) => b.parallel));
  const branchesPerFork = forks.reduce((a, b) => a + (b.parallel ? b.labels.length : 0), 0) / forks.length;
  const stepLens = forks.flatMap((b) => (b.parallel ? b.steps.map(([s, e]) => e - s) : []));
  const tokens = par.tokens;
  const tpsAr = tokens / (median(arMs) / 1000);
  const tpsPar = tokens / (median(parMs) / 1000);
  const speedup = tpsPar / tpsAr;
  // Inside the blocks only (step time while a fork is open vs the same step tokens decoded one
  // at a time in AR): how well the engine turns branches into speed, apart from the schema's
  // sequential share (plans, takeaways).
  const stepTokens = stepLens.reduce((a, b) => a + b, 0);
  const forkPhaseSpeedup = ((ar.stepMs / tokens) * stepTokens) / par.forkPhaseMs;
  const meanBatch = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const row = (mode: string, steps: number[], ms: number[], tps: number) => ({
    kernels: label,
    mode,
    tokens,
    decode_calls: steps.length,
    mean_seqs_per_call: round(meanBatch(steps), 2),
    wall_ms: round(median(ms), 1),
    tok_per_s: round(tps, 1),
  });
  printTable([row('ar', ar.steps, arMs, tpsAr), row('parallel', par.steps, parMs, tpsPar)]);
  return { tokens, arMs, parMs, tpsAr, tpsPar, speedup, branchesPerFork, forks, stepLens, ar, par, forkPhaseSpeedup };
}

const main = await measure({}, cuda ? 'fast (default)' : 'cpu');
// The same with NPR-length steps (250-350 tokens), default options only.
const long = await measure({}, cuda ? 'fast (default), long steps' : 'cpu, long steps', longScripts);
// CUDA: the generic ops, and the decode options off by default (bench/decode-cuda.ts's trials).
const variants: Record<string, KvOptions> = cuda
  ? {
      generic: { fastKernels: false },
      candidate: { candidateKernels: true },
      no_candidate: { candidateKernels: false },
      cuda_cores: { tensorCoreLinears: false },
      no_overlap: { overlapDecode: false }, // each decode call waits for its step
      worker_decode: { syncDecode: false }, // each step awaited on a worker thread
      step_kernel: { stepKernel: true }, // one persistent kernel a step (at most 8 sequences)
    }
  : {};
// The variants last, each caught: the one-kernel step is the least-run code here, and a device
// fault there (sticky for the process) must not take the default figures with it.
const others: Record<string, Awaited<ReturnType<typeof measure>>> = {};
const variantErrors: Record<string, string> = {};
for (const [name, options] of Object.entries(variants)) {
  try {
    others[name] = await measure(options, name);
  } catch (e) {
    variantErrors[name] = (e as Error).message;
    console.log(`error: variant ${name}: ${variantErrors[name]}`);
  }
}
const { tokens, arMs, parMs, tpsAr, tpsPar, speedup, branchesPerFork, forks, stepLens, ar, par, forkPhaseSpeedup } = main;
console.log(
  `\nscripted choices on a random-weight Qwen3 (${cuda ? 'Qwen3-0.6B shape, bf16, CUDA' : 'hidden 384, 6 layers, f32'}, vocab ${VOCAB}) through the real decode path; ` +
    `${PROMPTS.length} prompts one at a time, ${forks.length} forks, ${branchesPerFork.toFixed(2)} branches per fork, ` +
    `steps ${Math.min(...stepLens)}-${Math.max(...stepLens)} tokens; median of ${RUNS}. ` +
    `Target: speedup >= 0.8 x branches per fork = ${(0.8 * branchesPerFork).toFixed(2)}; ` +
    `the ideal with this schema (AR decode calls / parallel decode calls, flat step cost) is ${(ar.steps.length / par.steps.length).toFixed(2)}; ` +
    `inside the forks alone the speedup is ${forkPhaseSpeedup.toFixed(2)} (step time of the step tokens, AR vs parallel).`,
);
printJson('engine', {
  model: model.name,
  tokens,
  wall_ms_ar: round(median(arMs), 1),
  wall_ms_parallel: round(median(parMs), 1),
  tps_ar: round(tpsAr, 1),
  tps_parallel: round(tpsPar, 1),
  speedup_parallel_vs_ar: round(speedup),
  mean_branches_per_fork: round(branchesPerFork, 2),
  target_speedup: round(0.8 * branchesPerFork, 2),
  decode_calls_ar: ar.steps.length,
  decode_calls_parallel: par.steps.length,
  ideal_speedup_flat_step_cost: round(ar.steps.length / par.steps.length),
  speedup_inside_forks: round(forkPhaseSpeedup),
  // Steps of 250-350 tokens instead of 30-40 (default options): the target's premise, that the
  // steps carry most of a response's tokens, holds there.
  tokens_long: long.tokens,
  speedup_parallel_vs_ar_long: round(long.speedup),
  mean_branches_per_fork_long: round(long.branchesPerFork, 2),
  target_speedup_long: round(0.8 * long.branchesPerFork, 2),
  ideal_speedup_flat_step_cost_long: round(long.ar.steps.length / long.par.steps.length),
  speedup_inside_forks_long: round(long.forkPhaseSpeedup),
  // Per decode call: the whole loop's wall time, and the part inside kv.decode (the rest is the
  // engine's own work: chooser, state machines, appends).
  ms_per_call_ar: round(median(arMs) / ar.steps.length, 3),
  decode_ms_per_call_ar: round(ar.decodeMs / ar.steps.length, 3),
  step_ms_per_call_ar: round(ar.stepMs / ar.steps.length, 3),
  ms_per_call_parallel: round(median(parMs) / par.steps.length, 3),
  decode_ms_per_call_parallel: round(par.decodeMs / par.steps.length, 3),
  step_ms_per_call_parallel: round(par.stepMs / par.steps.length, 3),
  variant_errors:
    Object.keys(variantErrors).length > 0
      ? Object.entries(variantErrors)
          .map(([name, message]) => `${name}: ${message}`)
          .join('; ')
      : null,
  ...Object.fromEntries(
    Object.entries(others).flatMap(([name, r]) => [
      [`tps_ar_${name}`, round(r.tpsAr, 1)],
      [`tps_parallel_${name}`, round(r.tpsPar, 1)],
      [`speedup_parallel_vs_ar_${name}`, round(r.speedup)],
      [`speedup_inside_forks_${name}`, round(r.forkPhaseSpeedup)],
    ]),
  ),
});
