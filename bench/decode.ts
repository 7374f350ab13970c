/**
 * `npm run bench -- decode [--quick]`: the decode step over paged KV for 1, 2, 4 and 8 branches
 * sharing a 1k-token prefix (one fork), cascade on and off, on a tiny config and a
 * Qwen3-0.6B-shaped one (random weights, f32: hidden 1024, 28 layers, 16/8 heads, head dim
 * 128, ffn 3072, vocab 151,936); and batch-1 decode tokens/s of the 0.6B shape against the
 * memory-bandwidth bound: (weight bytes + KV bytes read per token) / the read bandwidth this
 * run measures with the same threads. Step times are medians over 20 rounds in which every
 * configuration steps once, in turn (see stepTimes); an 8-vs-1 ratio is the median of the
 * rounds' own ratios, each of two steps taken within a fraction of a second of each other, so
 * that a minute of contention on this shared VM lands on both sides of it. The bandwidth is
 * the best of probes taken before the models and between the 0.6B rounds: this VM's bandwidth
 * drifts (22-34 GB/s seen), and one probe at the start could land in a dip the steps then do
 * not share.
 */
import { native } from '../ts/bindings/loader.js';
import type { NativeQwen3, NativeQwen3Config } from '../ts/bindings/native.js';
import { timedDecodeStep } from './_decode-step.js';
import { argFlag, argValue, median, printJson, printTable, round } from './_report.js';
import { seedNativeModel } from './_weights.js';

// `--backend cuda`: the GPU benchmark lives in its own file (bench/decode-cuda.ts).
if (argValue('backend') === 'cuda') {
  await import('./decode-cuda.js');
  process.exit();
}

const addon = native();

interface Shape extends NativeQwen3Config {
  name: 'tiny' | '0p6b';
}
const SHAPES: Shape[] = [
  { name: 'tiny', vocab: 512, hidden: 256, intermediate: 768, layers: 4, heads: 4, kvHeads: 2, headDim: 64 },
  { name: '0p6b', vocab: 151936, hidden: 1024, intermediate: 3072, layers: 28, heads: 16, kvHeads: 8, headDim: 128 },
];
const PREFIX = 1024;
const ROUNDS = 21;
const BRANCHES = [1, 2, 4, 8];

function makeModel(s: Shape): NativeQwen3 {
  return seedNativeModel(new addon.NativeQwen3({ ...s, ropeTheta: 1e6, tied: true }), 99);
}

/** The median over rounds of a[r] / b[r]: each ratio from two steps of the same round. */
const pairedRatio = (a: number[], b: number[]) => median(a.map((x, r) => x / (b[r] as number)));

/**
 * Decode-step seconds of every timed round, keyed `${branches}_${cascade}`, for every branch
 * count sharing one PREFIX-token prefix: the prefix is prefilled once and forked into
 * 1 + 2 + 4 + 8 children, and each group of children is one configuration. Rounds run every
 * configuration once, in turn, so that this machine's drift and noise fall on all of them alike
 * (the ratios are what matter).
 */
async function stepTimes(model: NativeQwen3, s: Shape, betweenRounds?: () => void): Promise<Record<string, number[]>> {
  const kids = BRANCHES.reduce((a, b) => a + b, 0);
  const perKid = Math.ceil((2 * ROUNDS) / 16) + 1;
  const kv = new addon.NativeKv(model, { numBlocks: Math.ceil(PREFIX / 16) + kids * perKid + 8 });
  const req = kv.openRequest(1 << 20);
  const root = kv.createSequence(req);
  kv.append(root, PREFIX, false);
  const prefixIds = Int32Array.from({ length: PREFIX }, (_, i) => (i * 7919) % s.vocab);
  const positions = Int32Array.from({ length: PREFIX }, (_, i) => i);
  await kv.decode({ seqs: Int32Array.of(root), cuNew: Int32Array.of(0, PREFIX), ids: prefixIds, positions }, new Float32Array(s.vocab));
  const children = kv.fork(root, kids).children;
  const groups: Int32Array[] = [];
  for (let at = 0, i = 0; i < BRANCHES.length; at += BRANCHES[i] as number, i++)
    groups.push(children.slice(at, at + (BRANCHES[i] as number)));
  const times: Record<string, number[]> = {};
  let appended = 0; // tokens each child has added after the prefix (all children move together)
  for (let round = 0; round < ROUNDS; round++) {
    for (const cascade of [true, false]) {
      for (const [g, seqs] of groups.entries()) {
        const logits = new Float32Array(seqs.length * s.vocab);
        const t = await timedDecodeStep(kv, seqs, s.vocab, round, PREFIX + appended, cascade, logits);
        const key = `${BRANCHES[g]}_${cascade}`;
        times[key] ??= [];
        if (round > 0) times[key].push(t); // round 0 warms up
      }
      appended++;
    }
    betweenRounds?.();
  }
  return times;
}

const quick = argFlag('quick');
const threads = addon.backends().cpu.threads;
const probes = [addon.memBandwidth({ megabytes: 1024, passes: 3 }), addon.memBandwidth({ megabytes: 1024, passes: 3 })];
const rows: Array<Record<string, string | number | null>> = [];
const figures: Record<string, number | string | null> = { threads, read_gbps: null };
for (const s of quick ? SHAPES.slice(0, 1) : SHAPES) {
  const model = makeModel(s);
  const probe = () => probes.push(addon.memBandwidth({ megabytes: 512, passes: 1 }));
  const times = await stepTimes(model, s, s.name === '0p6b' ? probe : undefined);
  for (const branches of BRANCHES) {
    for (const cascade of [true, false]) {
      const t = median(times[`${branches}_${cascade}`] as number[]);
      rows.push({ model: s.name, branches, cascade: String(cascade), step_ms: round(t * 1000, 2), tok_per_s: round(branches / t, 1) });
    }
  }
  const one = median(times['1_true'] as number[]);
  figures[`ratio_8_vs_1_${s.name}`] = round(pairedRatio(times['8_true'] as number[], times['1_true'] as number[]));
  figures[`ratio_8_vs_1_nocascade_${s.name}`] = round(pairedRatio(times['8_false'] as number[], times['1_false'] as number[]));
  figures[`tok_per_s_b1_${s.name}`] = round(1 / one, 2);
  if (s.name === '0p6b') {
    const bandwidth = Math.max(...probes);
    const params = model.paramCount;
    const kvBytesPerToken = s.layers * 2 * s.kvHeads * s.headDim * 4;
    const bytes = params * 4 + kvBytesPerToken * (PREFIX + ROUNDS);
    const bound = bytes / (bandwidth * 1e9);
    figures.bandwidth_bound_ms_0p6b = round(bound * 1000, 2);
    figures.fraction_of_bandwidth_bound_0p6b = round(bound / one);
  }
}
const bandwidth = Math.max(...probes);
figures.read_gbps = round(bandwidth, 2);
printTable(rows);
console.log(
  `\nthreads ${threads}; read bandwidth ${bandwidth.toFixed(1)} GB/s (best of ${probes.length} probes in this run); prefix ${PREFIX} tokens; weights f32`,
);
printJson('decode', figures);
