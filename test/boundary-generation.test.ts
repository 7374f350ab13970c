/**
 * Garbage at the generation-side exports (NativeKv, memBandwidth) and the attention export:
 * every bad argument is a TypeError/RangeError naming it, refusals are answers, the process
 * survives. And one decode through NativeKv agrees with the training forward.
 */
import { describe, expect, it } from 'vitest';
import { native } from '../ts/bindings/loader.js';
import { logSoftmaxAt } from '../ts/engine/chooser.js';
import { causalBatch } from '../ts/model/batch.js';
import { Qwen3Config } from '../ts/model/config.js';
import { Model } from '../ts/model/model.js';

const addon = native();

function named(call: () => unknown, pattern: RegExp): void {
  let err: unknown;
  try {
    call();
  } catch (e) {
    err = e;
  }
  expect(err instanceof TypeError || err instanceof RangeError, String(err)).toBe(true);
  expect((err as Error).message).toMatch(pattern);
}

function tinyNative() {
  return new addon.NativeQwen3({ vocab: 11, hidden: 8, intermediate: 12, layers: 1, heads: 2, kvHeads: 1, headDim: 4 });
}

describe('NativeKv boundary', () => {
  it('rejects a model that is not a NativeQwen3 and bad options', () => {
    for (const bad of [undefined, null, 3, {}, new Float32Array(4)]) {
      named(() => new addon.NativeKv(bad as never, { numBlocks: 4 }), /NativeKv: argument 'model' must be a NativeQwen3/);
    }
    named(() => new addon.NativeKv(tinyNative(), { numBlocks: 0 }), /options\.numBlocks must be in/);
    named(() => new addon.NativeKv(tinyNative(), { numBlocks: Number.NaN }), /options\.numBlocks must be an integer/);
    named(() => new addon.NativeKv(tinyNative(), { numBlocks: 4, blockTokens: -1 }), /options\.blockTokens/);
    for (const key of [
      'graphs',
      'fastKernels',
      'profile',
      'candidateKernels',
      'prefetchNextWeights',
      'tensorCoreLinears',
      'fusedQkWrite',
      'attentionPrefetch',
      'fusedChunkAttention',
      'stepKernel',
      'stepKernelPrefetch',
      'stepKernelStream',
      'stepKernelFoldMerge',
      'stepKernelHeadFlags',
      'stepKernelTiming',
    ])
      named(() => new addon.NativeKv(tinyNative(), { numBlocks: 4, [key]: 'yes' }), new RegExp(`options\\.${key}`));
    named(
      () => new addon.NativeKv(tinyNative(), { numBlocks: 4, attentionMerge: 'merged' as never }),
      /options\.attentionMerge must be 'serial' \| 'staged' \(got 'merged'\)/,
    );
    named(() => new addon.NativeKv(tinyNative(), { numBlocks: 4, attentionMerge: 2 as never }), /options\.attentionMerge must be/);
    for (const slots of [1, 13, 2.5])
      named(() => new addon.NativeKv(tinyNative(), { numBlocks: 4, stepKernelRingSlots: slots }), /options\.stepKernelRingSlots must be/);
    named(() => new addon.NativeKv(tinyNative(), { numBlocks: 4, stepKernelRingSlots: '4' as never }), /options\.stepKernelRingSlots/);
    for (const [key, bad] of [
      ['attentionPagesPerItem', 0],
      ['attentionPagesPerItem', 4097],
      ['attentionPagesPerItem', 1.5],
      ['attentionItemsPerRun', 0],
      ['attentionItemsPerRun', 257],
    ] as const)
      named(() => new addon.NativeKv(tinyNative(), { numBlocks: 4, [key]: bad }), new RegExp(`options\\.${key} must be`));
    named(() => new addon.NativeKv(tinyNative(), { numBlocks: 4, attentionItemsPerRun: '8' as never }), /options\.attentionItemsPerRun/);
    expect(() => new addon.NativeKv(tinyNative(), { numBlocks: 4, attentionPagesPerItem: 1, attentionItemsPerRun: 256 })).not.toThrow();
    for (const bad of ['two-row', 1])
      named(
        () => new addon.NativeKv(tinyNative(), { numBlocks: 4, candidateKernels: bad as never }),
        /options\.candidateKernels must be true, false or 'one-row'/,
      );
    for (const ok of ['one-row', true, false] as const)
      expect(() => new addon.NativeKv(tinyNative(), { numBlocks: 4, candidateKernels: ok })).not.toThrow();
  });

  it('times the decode calls on the host, on every backend', async () => {
    const kv = new addon.NativeKv(tinyNative(), { numBlocks: 4 });
    const seq = kv.createSequence(kv.openRequest(8));
    kv.append(seq, 2, false);
    await kv.decode({ seqs: Int32Array.of(seq), cuNew: Int32Array.of(0, 2), ids: Int32Array.of(1, 2), positions: Int32Array.of(0, 1) });
    kv.append(seq, 1, true);
    await kv.decode({ seqs: Int32Array.of(seq), cuNew: Int32Array.of(0, 1), ids: Int32Array.of(3), positions: Int32Array.of(2) });
    const h = kv.deviceStats().hostMs;
    expect(h.calls).toBe(2);
    expect(h.queueMs).toBeGreaterThan(0);
    expect(h.resolveMs).toBeGreaterThan(0);
    expect([h.prepMs, h.launchMs, h.waitMs]).toEqual([0, 0, 0]); // the CUDA decoder's parts
  });

  it('reports empty device stats on the CPU', () => {
    const kv = new addon.NativeKv(tinyNative(), { numBlocks: 4, fastKernels: true, profile: true });
    expect(kv.deviceStats()).toEqual({
      eagerSteps: 0,
      graphCaptures: 0,
      graphReplays: 0,
      graphError: '',
      candidateSteps: 0,
      kernelSteps: 0,
      kernelGrid: 0,
      kernelStreamed: false,
      kernelRingSlots: 0,
      kernelError: '',
      kernelPhaseMs: {},
      kernelTimedSteps: 0,
      profiledSteps: 0,
      opMs: {},
      deviceMs: 0,
      deviceTimedSteps: 0,
      hostMs: { calls: 0, queueMs: 0, prepMs: 0, launchMs: 0, waitMs: 0, resolveMs: 0 },
    });
  });

  it('answers refusals and names bad sequences', () => {
    const kv = new addon.NativeKv(tinyNative(), { numBlocks: 2, blockTokens: 4 });
    const r = kv.openRequest(3);
    const s = kv.createSequence(r);
    expect(kv.append(s, 4, true)).toBe('no-budget');
    expect(kv.append(s, 9, false)).toBe('no-blocks');
    expect(kv.append(s, 5, false)).toBe('ok');
    expect(kv.fork(s, 2).answer).toBe('no-blocks'); // two tail copies, no free block
    expect(() => kv.append(999, 1, true)).toThrow(/sequence 999 is not live/);
    named(() => kv.append(s, -1, true), /tokens must be in/);
    named(
      () =>
        kv.decode(
          { seqs: new Int32Array(1), cuNew: new Int32Array(3), ids: new Int32Array(0), positions: new Int32Array(0) },
          new Float32Array(11),
        ),
      /cuNew/,
    );
    named(
      () =>
        kv.decode(
          { seqs: Int32Array.of(s), cuNew: Int32Array.of(0, 1), ids: Int32Array.of(1), positions: Int32Array.of(0) },
          new Float32Array(3),
        ),
      /'logits' must be a Float32Array of/,
    );
    named(
      () =>
        kv.decode(
          { seqs: 'x' as never, cuNew: Int32Array.of(0, 1), ids: Int32Array.of(1), positions: Int32Array.of(0) },
          new Float32Array(11),
        ),
      /batch\.seqs must be an Int32Array/,
    );
    kv.checkInvariants();
    kv.closeRequest(r);
    expect(kv.freeBlocks).toBe(2);
  });

  it("reads a step's logits in place: logprobs, sample and logitsRows agree with the copied rows", async () => {
    const model = tinyNative();
    const kv = new addon.NativeKv(model, { numBlocks: 8, blockTokens: 4 });
    const V = 11;
    named(() => kv.logprobs(Int32Array.of(0), Int32Array.of(1), new Float32Array(1)), /no decode step has left logits/);
    const seqs = [0, 1, 2].map(() => kv.createSequence(kv.openRequest(50)));
    for (const s of seqs) expect(kv.append(s, 3, false)).toBe('ok');
    const batch = {
      seqs: Int32Array.from(seqs),
      cuNew: Int32Array.of(0, 3, 6, 9),
      ids: Int32Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9),
      positions: Int32Array.of(0, 1, 2, 0, 1, 2, 0, 1, 2),
    };
    const copied = new Float32Array(3 * V);
    await kv.decode(batch, copied);
    const rows = [2, 0, 2, 1];
    const tokens = [10, 0, 3, 7];
    const lp = new Float32Array(4);
    kv.logprobs(Int32Array.from(rows), Int32Array.from(tokens), lp);
    rows.forEach((r, i) => {
      expect(lp[i]).toBe(logSoftmaxAt(copied, r * V, V, tokens[i] as number));
    });
    const whole = new Float32Array(2 * V);
    kv.logitsRows(Int32Array.of(1, 2), whole);
    expect(Array.from(whole)).toEqual(Array.from(copied.subarray(V)));
    const sampleRows = { request: Int32Array.of(4, 4), branch: Int32Array.of(1, 2), index: Int32Array.of(9, 9) };
    const params = { temperature: 0.9, topK: 5, seed: 3 };
    const got = { tokens: new Int32Array(2), logprob: new Float32Array(2), logprobSampling: new Float32Array(2) };
    const want = { tokens: new Int32Array(2), logprob: new Float32Array(2), logprobSampling: new Float32Array(2) };
    kv.sample(Int32Array.of(2, 0), sampleRows, params, got);
    const picked = new Float32Array(2 * V);
    picked.set(copied.subarray(2 * V, 3 * V), 0);
    picked.set(copied.subarray(0, V), V);
    addon.sample(picked, sampleRows, params, want);
    expect(got).toEqual(want);
    // A decode without a logits argument keeps them for the same calls.
    for (const s of seqs) expect(kv.append(s, 1, true)).toBe('ok');
    await kv.decode({
      seqs: Int32Array.from(seqs),
      cuNew: Int32Array.of(0, 1, 2, 3),
      ids: Int32Array.of(1, 2, 3),
      positions: Int32Array.of(3, 3, 3),
    });
    const again = new Float32Array(1);
    kv.logprobs(Int32Array.of(2), Int32Array.of(5), again);
    expect(Number.isFinite(again[0])).toBe(true);
    // Bad arguments are named; nothing is lost.
    named(() => kv.logprobs(Int32Array.of(3), Int32Array.of(0), new Float32Array(1)), /logits row 3|the step has 3 logits rows/);
    named(() => kv.logprobs(Int32Array.of(0), Int32Array.of(V), new Float32Array(1)), /outside the vocabulary/);
    named(() => kv.logprobs(Int32Array.of(0, 1), Int32Array.of(0), new Float32Array(2)), /same length/);
    named(() => kv.logprobs([0] as never, Int32Array.of(0), new Float32Array(1)), /logitRows must be an Int32Array/);
    named(() => kv.sample(Int32Array.of(0), sampleRows, params, got), /logitRows has 1 entries but rows\.request has 2/);
    named(() => kv.sample(Int32Array.of(0, 5), sampleRows, params, got), /logits row 5 but the step has 3/);
    named(() => kv.logitsRows(Int32Array.of(0), new Float32Array(3)), /'out' must be a Float32Array of/);
    named(() => kv.decode(batch, 'x' as never), /'logits' must be a Float32Array of .* or left out/);
    kv.checkInvariants();
  });

  it('memBandwidth checks its options', () => {
    named(() => addon.memBandwidth({ megabytes: 0 }), /options\.megabytes/);
    named(() => addon.memBandwidth({ passes: 1000 }), /options\.passes/);
  });

  it('parallelAttention names bad arguments', () => {
    const f = (n: number) => new Float32Array(n);
    named(() => addon.parallelAttention(f(8) as never, f(8) as never, f(8) as never, f(8) as never, f(2) as never, 7 as never), /options/);
    named(
      () => addon.parallelAttention('q' as never, f(8) as never, f(8) as never, f(8) as never, f(2) as never, {} as never),
      /'q'|q must/,
    );
  });
});

describe('decode through NativeKv', () => {
  it('gives the same next-token logprobs as the training forward', async () => {
    const config = Qwen3Config.create({
      vocabSize: 23,
      hiddenSize: 16,
      intermediateSize: 24,
      numHiddenLayers: 2,
      numAttentionHeads: 2,
      numKeyValueHeads: 1,
      headDim: 8,
      rmsNormEps: 1e-6,
      ropeTheta: 10000,
      tieWordEmbeddings: false,
      maxPositionEmbeddings: 512,
      torchDtype: 'float32',
      bosTokenId: undefined,
      eosTokenId: undefined,
    });
    const model = Model.create(config, { seed: 3 });
    for (const name of model.paramNames())
      model.setParam(
        name,
        model.getParam(name).map((x, i) => (model.getParam(name).length > 24 ? x * 20 : x + 0.01 * (i % 3))),
      );
    const ids = [3, 7, 1, 9, 4, 4, 2, 8, 15, 6];
    const { logprob } = await model.forward(causalBatch([ids]));
    // The same model through the native handle the engine will drive.
    const kv = new addon.NativeKv(model.nativeHandle, { numBlocks: 8, blockTokens: 4 });
    const seq = kv.createSequence(kv.openRequest(100));
    const logits = new Float32Array(23);
    for (let t = 0; t < ids.length - 1; t++) {
      expect(kv.append(seq, 1, t > 0)).toBe('ok');
      await kv.decode(
        { seqs: Int32Array.of(seq), cuNew: Int32Array.of(0, 1), ids: Int32Array.of(ids[t] as number), positions: Int32Array.of(t) },
        logits,
      );
      const m = Math.max(...logits);
      const lse = m + Math.log(logits.reduce((a, x) => a + Math.exp(x - m), 0));
      expect((logits[ids[t + 1] as number] as number) - lse).toBeCloseTo(logprob[t + 1] as number, 4);
    }
  });
});
