/**
 * Garbage at the generation-side exports (NativeKv, memBandwidth) and the attention export:
 * every bad argument is a TypeError/RangeError naming it, refusals are answers, the process
 * survives. And one decode through NativeKv agrees with the training forward.
 */
import { describe, expect, it } from 'vitest';
import { native } from '../ts/bindings/loader.js';
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
    for (const key of ['graphs', 'fastKernels', 'profile'])
      named(() => new addon.NativeKv(tinyNative(), { numBlocks: 4, [key]: 'yes' }), new RegExp(`options\\.${key}`));
  });

  it('reports empty device stats on the CPU', () => {
    const kv = new addon.NativeKv(tinyNative(), { numBlocks: 4, fastKernels: true, profile: true });
    expect(kv.deviceStats()).toEqual({ eagerSteps: 0, graphCaptures: 0, graphReplays: 0, graphError: '', profiledSteps: 0, opMs: {} });
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
