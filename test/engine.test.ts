/**
 * The engine end to end on a scripted tiny model: forks at </guideline>, joins before
 * <takeaway>, and the consistency that NPR's release lacks - logprobs recorded while decoding
 * equal Model.forward over the flattened rollout with its recorded positions and Structure, and
 * the structure builder on the rollout's tokens reproduces the recorded Structure. Also AR mode,
 * refused forks, malformed output, the native sampler's determinism, streaming and abort.
 */
import { describe, expect, it } from 'vitest';
import { native } from '../ts/bindings/loader.js';
import { CharCodec, Engine, type Rollout, rolloutBatch } from '../ts/engine/index.js';
import { buildFromIds } from '../ts/parallel/index.js';
import { codec, oneSequenceCache, type Script, scriptedEngine, scriptedModel, VOCAB } from './fixtures/engine/scripted.js';

const TWO_BLOCKS: Script = {
  '': '<guideline><plan>1: add</plan><plan>2: check</plan><plan>3: guess</plan></guideline> so 3</takeaway>\n<guideline><plan>1: again</plan><plan>2.1: twice</plan></guideline> yes</takeaway>\n\\boxed{3}',
  '0:1': ' 1+2=3 done</step>',
  '0:2': ' 3-2=1</step>',
  '0:3': ' maybe three or four</step>',
  '1:1': ' 3</step>',
  '1:2.1': ' three and again three</step>',
};
const ONE_BLOCK: Script = {
  '': 'hmm <guideline><plan>1: a</plan><plan>2: b</plan></guideline> ok</takeaway> \\boxed{7}',
  '0:1': ' aaaa aaaa aaaa</step>',
  '0:2': ' b</step>',
};

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

async function expectConsistent(model: ReturnType<typeof scriptedModel>, r: Rollout): Promise<void> {
  const { logprob } = await model.forward(rolloutBatch(r));
  let maxDiff = 0;
  for (let t = r.promptLength; t < r.tokens.length; t++)
    maxDiff = Math.max(maxDiff, Math.abs((logprob[t] as number) - (r.logprobs[t] as number)));
  expect(maxDiff).toBeLessThan(1e-4);
}

function expectBuilderAgrees(r: Rollout): void {
  const built = buildFromIds(r.tokens, codec.tagIds, { promptLength: r.promptLength, scoreResponseOnly: true });
  expect(built.ok, built.ok ? '' : built.message).toBe(true);
  if (!built.ok) return;
  expect(Array.from(built.positions)).toEqual(Array.from(r.positions));
  expect(Array.from(built.prev)).toEqual(Array.from(r.prev));
  expect(built.structure.depth).toBe(r.structure.depth);
  expect(Array.from(built.structure.block)).toEqual(Array.from(r.structure.block));
  expect(Array.from(built.structure.step)).toEqual(Array.from(r.structure.step));
}

describe('engine: parallel rollouts', () => {
  it('decode-time logprobs equal Model.forward on rollouts with several forks, and the builder reproduces the Structure', async () => {
    const model = scriptedModel();
    const engine = scriptedEngine(model, [TWO_BLOCKS, ONE_BLOCK, TWO_BLOCKS]);
    const rollouts = await engine.generate(['q: 1+2=?', 'q: 7?', 'q: 1+2=?'], { maxNewTokens: 400 });
    for (const r of rollouts) {
      expect(r.finishReason).toBe('stop');
      expect(r.parallel).toBe(true);
      expect(r.structureFaults).toEqual([]);
      await expectConsistent(model, r);
      expectBuilderAgrees(r);
    }
    const [a] = rollouts as [Rollout];
    expect(a.blocks.map((b) => (b.parallel ? b.labels : b.reason))).toEqual([
      ['1', '2', '3'],
      ['1', '2.1'],
    ]);
    expect(a.text).toContain('\n<step>\n2.1: three and again three</step>\n<takeaway> yes</takeaway>');
    // Branch stats add up to the generated tokens; forced tokens are the fork prefixes and joins.
    expect(a.branches.reduce((n, b) => n + b.tokens, 0)).toBe(a.generatedTokens);
    expect(a.branches.map((b) => b.key)).toEqual(['', '0:1', '0:2', '0:3', '1:1', '1:2.1']);
    // The same prompt and script in another slot of the batch gives the same rollout.
    const c = rollouts[2] as Rollout;
    expect(Array.from(c.tokens)).toEqual(Array.from(a.tokens));
    expect(maxAbsDiff(c.logprobs, a.logprobs)).toBeLessThan(1e-5);
    expect(engine.kv.freeBlocks).toBe(engine.kv.numBlocks);
    engine.kv.checkInvariants();
  });

  it('emits fork and join events and continues at anchor + 1 + Lmax after the join', async () => {
    const model = scriptedModel();
    const engine = scriptedEngine(model, [ONE_BLOCK]);
    const events: string[] = [];
    engine.on('fork', (e) => events.push(`fork ${e.labels.join(',')} @${e.anchorPosition}`));
    engine.on('join', (e) => events.push(`join @${e.position}`));
    const [r] = (await engine.generate(['q'], {})) as [Rollout];
    const block = r.blocks[0];
    if (!block?.parallel) throw new Error('expected a parallel block');
    expect(events).toEqual([`fork 1,2 @${block.anchorPosition}`, `join @${block.anchorPosition + 1 + block.longestStep}`]);
    const afterSteps = (block.steps.at(-1) as [number, number])[1];
    expect(r.positions[afterSteps]).toBe(block.anchorPosition + 1 + block.longestStep);
    expect(r.prev[(block.steps[1] as [number, number])[0]]).toBe(block.anchor);
  });
});

describe('engine: sequential cases', () => {
  it('AR mode never forks and its rollout is plain causal, consistent with forward', async () => {
    const model = scriptedModel();
    const sequential =
      '<guideline><plan>1: a</plan><plan>2: b</plan></guideline>\n<step>\n1: x</step>\n<step>\n2: y</step>\n<takeaway> t</takeaway>';
    const engine = scriptedEngine(model, [{ '': `${sequential}\n${sequential} \\boxed{2}` }]);
    const [r] = (await engine.generate(['q'], { mode: 'ar' })) as [Rollout];
    expect(r.parallel).toBe(false);
    expect(r.blocks.map((b) => (b.parallel ? 'fork' : b.reason))).toEqual(['mode-ar', 'mode-ar']);
    expect(Array.from(r.positions)).toEqual(Array.from(r.positions, (_, i) => i));
    expect(r.structure.block.every((x) => x === -1)).toBe(true);
    await expectConsistent(model, r);
  });

  it('a refused fork (too many plans) goes on sequentially and says why', async () => {
    const model = scriptedModel();
    const engine = scriptedEngine(
      model,
      [
        {
          '': '<guideline><plan>1: a</plan><plan>2: b</plan><plan>3: c</plan></guideline>\n<step>\n1: x</step>\n<step>\n2: y</step>\n<step>\n3: z</step>\n<takeaway> t</takeaway>',
        },
      ],
      {
        maxBranches: 2,
      },
    );
    const [r] = (await engine.generate(['q'], {})) as [Rollout];
    expect(r.finishReason).toBe('stop');
    expect(r.parallel).toBe(false);
    expect(r.blocks).toEqual([expect.objectContaining({ parallel: false, reason: 'too-many-plans' })]);
    expect(r.structure.step.every((x) => x === -1)).toBe(true);
    await expectConsistent(model, r);
  });

  it('a fork the budget cannot pay is refused with reason budget', async () => {
    const engine = scriptedEngine(scriptedModel(), [ONE_BLOCK]);
    const [r] = (await engine.generate(['q'], { maxNewTokens: 40 })) as [Rollout];
    expect(r.blocks[0]).toEqual(expect.objectContaining({ parallel: false, reason: 'budget' }));
    expect(r.generatedTokens).toBeLessThanOrEqual(40);
  });

  it('malformed output never reaches an undefined state: faults are recorded, EOS in a step finishes the request', async () => {
    const model = scriptedModel();
    const engine = scriptedEngine(model, [
      { '': 'x</step> <takeaway>\\boxed{1}' },
      { '': '<guideline><plan>1: a</plan><plan>2: b</plan></guideline> t</takeaway>', '0:1': ' aa</step>', '0:2': [9, 10, CharCodec.EOS] },
    ]);
    const [a, b] = (await engine.generate(['q', 'q'], {})) as [Rollout, Rollout];
    expect(a.finishReason).toBe('stop');
    expect(a.structureFaults.map((f) => f.reason)).toEqual(['close-step-without-open', 'takeaway-before-step']);
    expect(b.finishReason).toBe('malformed');
    expect(b.fault?.reason).toBe('stop-in-step');
    expect(engine.kv.freeBlocks).toBe(engine.kv.numBlocks);
    engine.kv.checkInvariants();
  });
});

describe('engine: sampler, streaming, abort', () => {
  it('the native sampler gives the same rollout whatever else is in the batch', async () => {
    const model = scriptedModel({ scale: 3 });
    const engine = new Engine({ model: model.nativeHandle, vocab: VOCAB, codec, kvBlocks: 256, blockTokens: 4 });
    const opts = { maxNewTokens: 24, seed: 5, temperature: 1, topP: 0.95 };
    const [alone] = (await engine.generate(['q: 1+2'], opts)) as [Rollout];
    const crowd = await engine.generate(['q: 1+2', 'other', 'q: 1+2 and more'], opts);
    expect(Array.from((crowd[0] as Rollout).tokens)).toEqual(Array.from(alone.tokens));
    // Logprobs agree to rounding (the GEMM tiles differ with the batch height).
    expect(maxAbsDiff((crowd[0] as Rollout).logprobs, alone.logprobs)).toBeLessThan(1e-5);
    await expectConsistent(model, alone);
  });

  it("decodeSync gives decode's logits on the JS thread, and the engine's syncDecode the same rollouts", async () => {
    const model = scriptedModel({ scale: 3 });
    const addon = native();
    const logitsOf = async (sync: boolean): Promise<Float32Array> => {
      const kv = new addon.NativeKv(model.nativeHandle, { numBlocks: 16, blockTokens: 4 });
      const s = kv.createSequence(kv.openRequest(50));
      expect(kv.append(s, 5, false)).toBe('ok');
      const batch = {
        seqs: Int32Array.of(s),
        cuNew: Int32Array.of(0, 5),
        ids: Int32Array.of(3, 1, 4, 1, 5),
        positions: Int32Array.of(0, 1, 2, 3, 4),
      };
      const out = new Float32Array(VOCAB);
      if (sync) kv.decodeSync(batch, out);
      else await kv.decode(batch, out);
      const host = kv.deviceStats().hostMs;
      expect(host.calls).toBe(1);
      expect(host.queueMs > 0).toBe(!sync); // no hand-off to a worker thread
      if (!sync) {
        // A decodeSync while a decode runs is refused, as any other call on a busy cache.
        const again = { ...batch, seqs: Int32Array.of(s) };
        const pending = kv.decode(again);
        expect(() => kv.decodeSync(again)).toThrow(/decodeSync: the model or this cache is busy/);
        // So is a new cache of the model: on CUDA its pages are cleared on the stream the decode
        // may be capturing into a graph.
        expect(() => new addon.NativeKv(model.nativeHandle, { numBlocks: 4, blockTokens: 4 })).toThrow(/NativeKv: the model is busy/);
        await pending;
        expect(new addon.NativeKv(model.nativeHandle, { numBlocks: 4, blockTokens: 4 }).numBlocks).toBe(4);
      }
      return out;
    };
    const [viaWorker, onThread] = [await logitsOf(false), await logitsOf(true)];
    expect(maxAbsDiff(viaWorker, onThread)).toBe(0);
    expect(viaWorker.some((x) => x !== 0)).toBe(true);
    const rollouts = async (syncDecode: boolean): Promise<Rollout[]> => {
      const engine = new Engine({ model: model.nativeHandle, vocab: VOCAB, codec, kvBlocks: 256, blockTokens: 4, syncDecode });
      const out = (await engine.generate(['q: 1+2', 'q: 7*6'], { maxNewTokens: 40, seed: 3, temperature: 1 })) as Rollout[];
      expect(engine.kv.deviceStats().hostMs.queueMs > 0).toBe(!syncDecode);
      return out;
    };
    const [a, b] = [await rollouts(false), await rollouts(true)];
    a.forEach((r, i) => {
      expect(Array.from((b[i] as Rollout).tokens)).toEqual(Array.from(r.tokens));
      expect(maxAbsDiff((b[i] as Rollout).logprobs, r.logprobs)).toBe(0);
    });
  });

  it("decodeLaunch is decodeSync on a CPU model, and the engine's overlapDecode changes no rollout", async () => {
    const model = scriptedModel({ scale: 3 });
    const cache = () => oneSequenceCache(model);
    const a = cache();
    a.kv.decodeSync(a.step([3, 1, 4]));
    const first = a.draw();
    // A launch with nothing read after it, then another: the second waits for the first.
    a.kv.decodeLaunch(a.step([1]));
    a.kv.decodeLaunch(a.step([5]));
    const third = a.draw();
    expect(() => a.kv.decodeLaunch(a.step([9]), new Float32Array(VOCAB) as never)).toThrow(/decodeLaunch: takes the batch alone/);
    const b = cache();
    b.kv.decodeLaunch(b.step([3, 1, 4]));
    expect(b.draw()).toEqual(first);
    b.kv.decodeSync(b.step([1]));
    b.kv.decodeSync(b.step([5]));
    expect(b.draw()).toEqual(third);
    expect(b.kv.deviceStats().hostMs.calls).toBe(3);

    const rollouts = async (overlapDecode: boolean): Promise<Rollout[]> => {
      const engine = new Engine({
        model: model.nativeHandle,
        vocab: VOCAB,
        codec,
        kvBlocks: 256,
        blockTokens: 4,
        syncDecode: true,
        overlapDecode,
      });
      const steps: { ms: number; decodeMs: number }[] = [];
      engine.on('step', (e) => steps.push(e));
      // Which decode call each step made.
      const calls = { decodeLaunch: 0, decodeSync: 0 };
      for (const name of ['decodeLaunch', 'decodeSync'] as const) {
        const call = engine.kv[name].bind(engine.kv);
        Object.defineProperty(engine.kv, name, {
          value: (batch: Parameters<typeof call>[0]) => {
            calls[name]++;
            return call(batch);
          },
        });
      }
      const out = (await engine.generate(['q: 1+2', 'q: 7*6'], { maxNewTokens: 40, seed: 3, temperature: 1 })) as Rollout[];
      expect(steps.length).toBeGreaterThan(10);
      expect(calls).toEqual(overlapDecode ? { decodeLaunch: steps.length, decodeSync: 0 } : { decodeLaunch: 0, decodeSync: steps.length });
      for (const e of steps) expect(e.ms).toBeGreaterThanOrEqual(e.decodeMs);
      return out;
    };
    const [off, on] = [await rollouts(false), await rollouts(true)];
    off.forEach((r, i) => {
      expect(Array.from((on[i] as Rollout).tokens)).toEqual(Array.from(r.tokens));
      expect(maxAbsDiff((on[i] as Rollout).logprobs, r.logprobs)).toBe(0);
    });
    const base = { model: model.nativeHandle, vocab: VOCAB, codec, kvBlocks: 16, blockTokens: 4 };
    expect(() => new Engine({ ...base, syncDecode: false, overlapDecode: true })).toThrow(/overlapDecode needs syncDecode/);
    expect(() => new Engine({ ...base, overlapDecode: 'yes' as never })).toThrow(/overlapDecode must be a boolean/);
  });

  it('sample names bad arguments', () => {
    const addon = native();
    const out = { tokens: new Int32Array(1), logprob: new Float32Array(1), logprobSampling: new Float32Array(1) };
    const rows = { request: Int32Array.of(0), branch: Int32Array.of(0), index: Int32Array.of(0) };
    expect(() => addon.sample(new Float32Array(4), { ...rows, branch: new Int32Array(2) }, {}, out)).toThrow(/branch must have 1 elements/);
    expect(() => addon.sample(new Float32Array(4), rows, { topP: 0 }, out)).toThrow(/top_p/);
    expect(() => addon.sample(new Float32Array(4), rows, {}, { ...out, tokens: new Float32Array(1) as never })).toThrow(
      /tokens must be an Int32Array/,
    );
    addon.sample(Float32Array.of(0, 9, 0, 0), rows, { temperature: 0 }, out);
    expect(out.tokens[0]).toBe(1);
  });

  it('streams a request event by event and ends with finish', async () => {
    const engine = scriptedEngine(scriptedModel(), [ONE_BLOCK]);
    const kinds: string[] = [];
    for await (const e of engine.stream('q')) if (kinds.at(-1) !== e.type) kinds.push(e.type);
    expect(kinds).toEqual(['token', 'fork', 'token', 'join', 'token', 'finish']);
  });

  it('abort finishes the request with reason abort and returns every block', async () => {
    const engine = scriptedEngine(scriptedModel(), [TWO_BLOCKS, TWO_BLOCKS]);
    const ac = new AbortController();
    let forks = 0;
    engine.on('fork', () => {
      if (++forks === 1) ac.abort();
    });
    const rollouts = await engine.generate(['q', 'q'], { signal: ac.signal });
    expect(rollouts.map((r) => r.finishReason)).toEqual(['abort', 'abort']);
    expect(engine.kv.freeBlocks).toBe(engine.kv.numBlocks);
    engine.kv.checkInvariants();
  });

  it("a 'finish' listener that throws rejects the requests it ends, returns every block, and leaves the engine usable", async () => {
    const engine = scriptedEngine(scriptedModel(), [ONE_BLOCK, TWO_BLOCKS]);
    let finishes = 0;
    const boom = () => {
      if (++finishes === 1) throw new Error('listener boom');
    };
    engine.on('finish', boom);
    // The first request finishes first (its request was closed before the listener ran); the
    // second is still running and is ended by the same error.
    await expect(engine.generate(['q', 'q'], { maxNewTokens: 400 })).rejects.toThrow(/listener boom/);
    expect(engine.kv.freeBlocks).toBe(engine.kv.numBlocks);
    engine.kv.checkInvariants();
    engine.off('finish', boom);
    const [again] = (await engine.generate(['q'], { maxNewTokens: 400 })) as [Rollout];
    expect(again.finishReason).not.toBe('malformed');
  });
});
