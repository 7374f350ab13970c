/**
 * `npm run bench -- rl-step [--quick]`: wall time of one stage-3 (PAPO) iteration on the tiny
 * config of the demo (Qwen3 hidden 128, 4 layers, 4/2 heads, vocab 64, CharCodec), split into
 * rollout (the engine generating G parallel rollouts per prompt through the real decode path;
 * token CHOICES are scripted so every rollout forks: 4 plans, steps of ~30 tokens), train
 * (packing, native forward, native PAPO loss, native backward) and optimizer (native AdamW), and
 * the share of the iteration spent inside native calls (decode calls, forward, loss, backward,
 * optimizer) - the rest is TypeScript: scheduling, rewards, advantages, packing.
 */
import { CharCodec, Engine, ScriptedChooser } from '../ts/engine/index.js';
import { Qwen3Config } from '../ts/model/config.js';
import { Model } from '../ts/model/model.js';
import { papoAdvantages } from '../ts/trainer/algos/advantages.js';
import { policyLoss } from '../ts/trainer/algos/policy_loss.js';
import { accuracyOnlyReward } from '../ts/trainer/rewards/reward.js';
import { rolloutSequence, structuralFilter } from '../ts/trainer/rollouts.js';
import { packSequences } from '../ts/trainer/update.js';
import { argFlag, printJson, printTable, round } from './_report.js';

const quick = argFlag('quick');
const PROMPTS = quick ? 2 : 4;
const G = quick ? 4 : 8;
const RUNS = quick ? 1 : 3;
const codec = new CharCodec();
const config = Qwen3Config.create({
  vocabSize: 64,
  hiddenSize: 128,
  intermediateSize: 384,
  numHiddenLayers: 4,
  numAttentionHeads: 4,
  numKeyValueHeads: 2,
  headDim: 32,
  rmsNormEps: 1e-6,
  ropeTheta: 10000,
  tieWordEmbeddings: true,
  maxPositionEmbeddings: 4096,
  torchDtype: 'float32',
  bosTokenId: undefined,
  eosTokenId: undefined,
});
const model = Model.create(config, { seed: 9 });

function words(seed: number, n: number): string {
  const vocab = ['x+1=2', 'so', 'y=3', '3*4=12', 'ok', 'sum', '9-2=7'];
  let s = '';
  let k = seed;
  while (s.length < n) {
    k = (k * 1103515245 + 12345) >>> 0;
    s += `${vocab[k % vocab.length]} `;
  }
  return s.slice(0, n);
}
function script(r: number): Record<string, number[]> {
  const plans = [1, 2, 3, 4];
  const out: Record<string, number[]> = {
    '': codec.encode(
      `<guideline>${plans.map((p) => `<plan>${p}: part ${p}</plan>`).join('')}</guideline> max is ${r % 10}</takeaway> \\boxed{${r % 10}}`,
    ),
  };
  for (const p of plans) out[`0:${p}`] = codec.encode(` ${words(r * 31 + p, 26 + ((r + p) % 9))}</step>`);
  return out;
}
const scripts = Array.from({ length: PROMPTS * G }, (_, i) => script(i));
const engine = new Engine({
  model: model.nativeHandle,
  vocab: config.vocabSize,
  codec,
  kvBlocks: 2048,
  blockTokens: 16,
  maxActiveRequests: PROMPTS * G,
  chooser: () => new ScriptedChooser((r) => scripts[r % scripts.length] ?? {}, CharCodec.EOS),
});
let decodeMs = 0;
engine.on('step', (e) => {
  decodeMs += e.decodeMs;
});

async function iteration() {
  decodeMs = 0;
  const t0 = performance.now();
  const prompts = Array.from({ length: PROMPTS * G }, (_, i) => codec.encode(`q: ${Math.floor(i / G)}+1=?`));
  const rollouts = await engine.generate(prompts, { mode: 'parallel', maxNewTokens: 400 });
  const rolloutMs = performance.now() - t0;
  const t1 = performance.now();
  const kept = rollouts.filter((r) => structuralFilter(r, codec.tagIds).ok);
  const rewards = kept.map(
    (r) => accuracyOnlyReward(codec.decode(Array.from(r.tokens.subarray(r.promptLength))), String(r.index % 3), r.generatedTokens).reward,
  );
  const adv = papoAdvantages({ rewards, groups: kept.map((r) => Math.floor(r.index / G)) });
  const seqs = kept.map((r, i) => Object.assign(rolloutSequence(r, codec.tagIds), { advantage: adv[i] as number }));
  let nativeTrain = 0;
  model.zeroGrad();
  const batch = packSequences(seqs);
  let t = performance.now();
  const { logprob } = await model.forward(batch);
  nativeTrain += performance.now() - t;
  const cat = (f: (s: (typeof seqs)[number]) => Float32Array) => {
    const out = new Float32Array(batch.ids.length);
    let o = 0;
    for (const s of seqs) {
      out.set(f(s), o);
      o += s.ids.length;
    }
    return out;
  };
  const advantages = new Float32Array(batch.ids.length);
  seqs.reduce((o, s) => {
    advantages.fill(s.advantage, o, o + s.ids.length);
    return o + s.ids.length;
  }, 0);
  const dlogprob = new Float32Array(batch.ids.length);
  t = performance.now();
  policyLoss('papo')({ logprob, advantages, lossMask: cat((s) => s.lossMask), cuSeqlens: batch.cuSeqlens }, {}, dlogprob);
  await model.backward(dlogprob);
  nativeTrain += performance.now() - t;
  const trainMs = performance.now() - t1;
  t = performance.now();
  model.step({ lr: 1e-7, weightDecay: 0.1, clipNorm: 1 });
  const optimizerMs = performance.now() - t;
  const total = performance.now() - t0;
  return {
    rolloutMs,
    trainMs,
    optimizerMs,
    total,
    native: decodeMs + nativeTrain + optimizerMs,
    tokens: batch.ids.length,
    parallel: kept.filter((r) => r.parallel).length / rollouts.length,
  };
}

await iteration(); // warm-up
const runs: Awaited<ReturnType<typeof iteration>>[] = [];
for (let i = 0; i < RUNS; i++) runs.push(await iteration());
const med = (f: (r: (typeof runs)[number]) => number) => runs.map(f).sort((a, b) => a - b)[Math.floor(runs.length / 2)] as number;
const figures = {
  prompts: PROMPTS,
  samples_per_prompt: G,
  train_tokens: med((r) => r.tokens),
  parallel_rate: med((r) => r.parallel),
  rollout_ms: round(
    med((r) => r.rolloutMs),
    1,
  ),
  train_ms: round(
    med((r) => r.trainMs),
    1,
  ),
  optimizer_ms: round(
    med((r) => r.optimizerMs),
    2,
  ),
  iteration_ms: round(
    med((r) => r.total),
    1,
  ),
  native_share: round(
    med((r) => r.native / r.total),
    3,
  ),
};
printTable([figures]);
printJson('rl-step', figures);
