/**
 * The engine on a CUDA model (needs a device; skipped with the reason elsewhere): the same
 * scripted rollouts as engine.test.ts through NativeKv with its pages on the device. fp32: the
 * logprobs recorded while decoding equal Model.forward over the flattened rollout (< 1e-4) and
 * the CPU engine's; bf16: max and mean |decode - forward| are printed and bounded loosely (the
 * training/inference mismatch of RL papers). Every KV block returns after the rollouts.
 */
import { describe, expect, it } from 'vitest';
import { native } from '../ts/bindings/loader.js';
import type { NativeKvDeviceStats } from '../ts/bindings/native.js';
import { Engine, type EngineOptions, type Rollout, rolloutBatch } from '../ts/engine/index.js';
import { Model } from '../ts/model/model.js';
import { codec, oneSequenceCache, type Script, scriptedEngine, scriptedModel, VOCAB } from './fixtures/engine/scripted.js';

const cuda = native().backends().cuda;

const TWO_BLOCKS: Script = {
  '': '<guideline><plan>1: add</plan><plan>2: check</plan><plan>3: guess</plan></guideline> so 3</takeaway>\n<guideline><plan>1: again</plan><plan>2.1: twice</plan></guideline> yes</takeaway>\n\\boxed{3}',
  '0:1': ' 1+2=3 done</step>',
  '0:2': ' 3-2=1</step>',
  '0:3': ' maybe three or four</step>',
  '1:1': ' 3</step>',
  '1:2.1': ' three and again three</step>',
};

/** The scripted CPU model's weights in a CUDA model of the given precision. */
function onCuda(cpu: Model, precision: 'fp32' | 'bf16'): Model {
  const m = Model.create(cpu.config, { backend: 'cuda', precision });
  for (const name of cpu.paramNames()) m.setParam(name, cpu.getParam(name));
  return m;
}

async function decodeVsForward(model: Model, r: Rollout): Promise<{ max: number; mean: number }> {
  const { logprob } = await model.forward(rolloutBatch(r));
  let max = 0;
  let sum = 0;
  let n = 0;
  for (let t = r.promptLength; t < r.tokens.length; t++) {
    const d = Math.abs((logprob[t] as number) - (r.logprobs[t] as number));
    max = Math.max(max, d);
    sum += d;
    n++;
  }
  return { max, mean: sum / Math.max(n, 1) };
}

/** Two prompts sampled by the native device sampler (seed 5) with these decode options; every KV block returns. */
async function sampledRollouts(
  model: Model,
  kvOptions: EngineOptions['kvOptions'],
  engineOptions: Pick<EngineOptions, 'syncDecode' | 'overlapDecode'> = {},
): Promise<{ rollouts: Rollout[]; stats: NativeKvDeviceStats }> {
  const engine = new Engine({ model: model.nativeHandle, vocab: VOCAB, codec, kvBlocks: 256, blockTokens: 4, kvOptions, ...engineOptions });
  const rollouts = (await engine.generate(['q: 1+2=?', 'q: 7*6=?'], { maxNewTokens: 120, seed: 5 })) as Rollout[];
  expect(engine.kv.freeBlocks).toBe(engine.kv.numBlocks);
  return { rollouts, stats: engine.kv.deviceStats() };
}

describe.skipIf(cuda.devices === 0)(`engine on a CUDA model (${cuda.reason ?? 'a device answers'})`, () => {
  it('fp32: rollouts with forks decode on the device consistently with forward and with the CPU engine', async () => {
    const cpuModel = scriptedModel();
    const model = onCuda(cpuModel, 'fp32');
    const engine = scriptedEngine(model, [TWO_BLOCKS, TWO_BLOCKS]);
    expect(engine.kv.backend).toBe('cuda');
    const rollouts = await engine.generate(['q: 1+2=?', 'q: 1+2=?'], { maxNewTokens: 400 });
    const [cpuRollout] = (await scriptedEngine(cpuModel, [TWO_BLOCKS]).generate(['q: 1+2=?'], { maxNewTokens: 400 })) as [Rollout];
    for (const r of rollouts) {
      expect(r.finishReason).toBe('stop');
      expect(r.parallel).toBe(true);
      expect(r.structureFaults).toEqual([]);
      expect((await decodeVsForward(model, r)).max).toBeLessThan(1e-4);
      expect(Array.from(r.tokens)).toEqual(Array.from(cpuRollout.tokens));
      let d = 0;
      for (let t = r.promptLength; t < r.tokens.length; t++)
        d = Math.max(d, Math.abs((r.logprobs[t] as number) - (cpuRollout.logprobs[t] as number)));
      expect(d).toBeLessThan(1e-4);
    }
    expect(engine.kv.freeBlocks).toBe(engine.kv.numBlocks);
    engine.kv.checkInvariants();
    const stats = engine.kv.deviceStats();
    expect(stats.graphError).toBe('');
    expect(stats.graphReplays).toBeGreaterThan(0);
    expect(codec.decode(Array.from((rollouts[0] as Rollout).tokens)).length).toBeGreaterThan(0);
  });

  it('fp32: the steps of chunks (prompt, forced tokens) read through the pages alone (fusedChunkAttention: false) stay consistent with forward', async () => {
    const model = onCuda(scriptedModel(), 'fp32');
    const paged = scriptedEngine(model, [TWO_BLOCKS], { kvOptions: { fusedChunkAttention: false } });
    const fused = scriptedEngine(model, [TWO_BLOCKS]);
    const [p] = (await paged.generate(['q: 1+2=?'], { maxNewTokens: 400 })) as [Rollout];
    const [f] = (await fused.generate(['q: 1+2=?'], { maxNewTokens: 400 })) as [Rollout];
    expect(p.finishReason).toBe('stop');
    expect(Array.from(p.tokens)).toEqual(Array.from(f.tokens));
    expect((await decodeVsForward(model, p)).max).toBeLessThan(1e-4);
    expect((await decodeVsForward(model, f)).max).toBeLessThan(1e-4);
    expect(paged.kv.freeBlocks).toBe(paged.kv.numBlocks);
  });

  it('bf16: reports the decode/forward logprob mismatch and stays within bf16 rounding', async () => {
    const model = onCuda(scriptedModel(), 'bf16');
    const engine = scriptedEngine(model, [TWO_BLOCKS]);
    const [r] = (await engine.generate(['q: 1+2=?'], { maxNewTokens: 400 })) as [Rollout];
    expect(r.finishReason).toBe('stop');
    const { max, mean } = await decodeVsForward(model, r);
    console.log(`bf16 engine rollout: max |decode - forward| ${max.toExponential(3)}, mean ${mean.toExponential(3)}`);
    expect(max).toBeLessThan(0.25);
    expect(engine.kv.freeBlocks).toBe(engine.kv.numBlocks);
  });

  it('the generic decode kernels (fastKernels: false) give the same rollouts, consistent with forward', async () => {
    for (const precision of ['fp32', 'bf16'] as const) {
      const model = onCuda(scriptedModel(), precision);
      const engine = scriptedEngine(model, [TWO_BLOCKS], { kvOptions: { fastKernels: false } });
      const [r] = (await engine.generate(['q: 1+2=?'], { maxNewTokens: 400 })) as [Rollout];
      expect(r.finishReason).toBe('stop');
      expect(r.parallel).toBe(true);
      const { max, mean } = await decodeVsForward(model, r);
      console.log(`${precision} generic kernels: max |decode - forward| ${max.toExponential(3)}, mean ${mean.toExponential(3)}`);
      expect(max).toBeLessThan(precision === 'fp32' ? 1e-4 : 0.25);
      expect(engine.kv.freeBlocks).toBe(engine.kv.numBlocks);
    }
  });

  it('the skinny linear layers on CUDA cores (tensorCoreLinears: false) decode the rollouts consistently with forward', async () => {
    const model = onCuda(scriptedModel(), 'bf16');
    const engine = scriptedEngine(model, [TWO_BLOCKS], { kvOptions: { tensorCoreLinears: false } });
    const [r] = (await engine.generate(['q: 1+2=?'], { maxNewTokens: 400 })) as [Rollout];
    expect(r.finishReason).toBe('stop');
    expect(r.parallel).toBe(true);
    expect(r.structureFaults).toEqual([]);
    const { max, mean } = await decodeVsForward(model, r);
    console.log(`bf16 CUDA-core linears: max |decode - forward| ${max.toExponential(3)}, mean ${mean.toExponential(3)}`);
    expect(max).toBeLessThan(0.25);
    expect(engine.kv.freeBlocks).toBe(engine.kv.numBlocks);
    expect(engine.kv.deviceStats().graphError).toBe('');
  });

  it('the PDL launches and the serial attention merge sample the rollouts the default kernels sample (the native sampler on the device)', async () => {
    const model = onCuda(scriptedModel(), 'bf16');
    const plain = await sampledRollouts(model, {});
    const candidate = await sampledRollouts(model, { candidateKernels: true, attentionMerge: 'serial' });
    plain.rollouts.forEach((r, i) => {
      const c = candidate.rollouts[i] as Rollout;
      expect(Array.from(c.tokens)).toEqual(Array.from(r.tokens));
      for (let t = r.promptLength; t < r.tokens.length; t++)
        expect(Math.abs((c.logprobs[t] as number) - (r.logprobs[t] as number))).toBeLessThan(1e-5);
    });
  });

  it('the L2 prefetches (prefetchNextWeights, attentionPrefetch) sample the rollouts the default kernels sample, logprobs bit for bit', async () => {
    const model = onCuda(scriptedModel(), 'bf16');
    const plain = await sampledRollouts(model, {});
    const ahead = await sampledRollouts(model, { prefetchNextWeights: true, candidateKernels: true });
    // And the attend kernel prefetching its keys and values (programmatic launches in every step).
    const kvAhead = await sampledRollouts(model, { attentionPrefetch: true, candidateKernels: true });
    expect(kvAhead.stats.candidateSteps).toBeGreaterThan(0);
    plain.rollouts.forEach((r, i) => {
      for (const other of [ahead, kvAhead]) {
        const a = other.rollouts[i] as Rollout;
        expect(Array.from(a.tokens)).toEqual(Array.from(r.tokens));
        expect(Array.from(a.logprobs)).toEqual(Array.from(r.logprobs));
      }
    });
  });

  it('launched steps (overlapDecode, decodeLaunch) sample what waited-for steps sample, and their first read waits for them', async () => {
    const model = onCuda(scriptedModel(), 'bf16');
    const waited = await sampledRollouts(model, {}, { overlapDecode: false });
    const launched = await sampledRollouts(model, {}, { overlapDecode: true });
    expect(launched.stats.hostMs.waitMs).toBe(0); // every step's wait was in its read
    expect(waited.stats.hostMs.waitMs).toBeGreaterThan(0);
    waited.rollouts.forEach((r, i) => {
      const l = launched.rollouts[i] as Rollout;
      expect(Array.from(l.tokens)).toEqual(Array.from(r.tokens));
      expect(Array.from(l.logprobs)).toEqual(Array.from(r.logprobs));
    });
    // On the cache directly: two launches with no read between (the second waits for the first),
    // then a read, against the same steps each waited for.
    const draws = (launch: boolean) => {
      const c = oneSequenceCache(model);
      const got: unknown[] = [];
      for (const ids of [[3, 1, 4, 1, 5], [9], [2]]) {
        if (launch) c.kv.decodeLaunch(c.step(ids));
        else c.kv.decodeSync(c.step(ids));
        if (ids[0] !== 9) got.push(...c.draw()); // no read after the second step
      }
      return got;
    };
    expect(draws(true)).toEqual(draws(false));
  });

  it('the one-kernel step (stepKernel) samples the rollouts the default kernels sample, logprobs bit for bit', async () => {
    // Head dim 128 (hidden 512 over 4 heads): the shape the one-kernel step is compiled for.
    const model = onCuda(scriptedModel({ hidden: 512 }), 'bf16');
    const plain = await sampledRollouts(model, {});
    const one = await sampledRollouts(model, { stepKernel: true });
    expect(plain.stats.kernelSteps).toBe(0);
    expect(one.stats.kernelSteps).toBeGreaterThan(0);
    expect(one.stats.kernelError).toBe('');
    plain.rollouts.forEach((r, i) => {
      const o = one.rollouts[i] as Rollout;
      expect(Array.from(o.tokens)).toEqual(Array.from(r.tokens));
      expect(Array.from(o.logprobs)).toEqual(Array.from(r.logprobs));
    });
  });
});
