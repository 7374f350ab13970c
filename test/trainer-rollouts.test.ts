/**
 * Rollouts go from engine to loss as recorded: on scripted parallel rollouts of a real tiny
 * Qwen3, the trainer's packed forward over the recorded tokens/positions/Structure gives the
 * engine's recorded logprobs (< 1e-4, fp32) - so stage 3's old logprobs may be the recorded
 * ones - the loss mask skips prompt and forced tokens, the tags are marked special, a tampered
 * record is refused naming the rollout, and one PAPO step on them runs and moves the weights.
 */
import { describe, expect, it } from 'vitest';
import type { Rollout } from '../ts/engine/types.js';
import { POLICY_LOSSES } from '../ts/trainer/algos/policy_loss.js';
import { checkRecordedStructure, RolloutStructureError, rolloutSequence, structuralFilter } from '../ts/trainer/rollouts.js';
import { packSequences, policyStep } from '../ts/trainer/update.js';
import { codec, type Script, scriptedEngine, scriptedModel } from './fixtures/engine/scripted.js';

const PARALLEL: Script = {
  '': 'hmm <guideline><plan>1: a</plan><plan>2: b</plan></guideline> ok</takeaway> \\boxed{7}',
  '0:1': ' aaaa aaaa aaaa</step>',
  '0:2': ' b</step>',
};

async function rollouts(): Promise<{ model: ReturnType<typeof scriptedModel>; rs: Rollout[] }> {
  const model = scriptedModel();
  const engine = scriptedEngine(model, [PARALLEL, PARALLEL]);
  const rs = await engine.generate(['q: 7?', 'q: 3+4=?'], { maxNewTokens: 200 });
  return { model, rs };
}

describe('rollouts to the trainer', () => {
  it('the packed forward over recorded rollouts equals the recorded logprobs; masks are right', async () => {
    const { model, rs } = await rollouts();
    const seqs = rs.map((r) => rolloutSequence(r, codec.tagIds));
    for (const r of rs) expect(structuralFilter(r, codec.tagIds)).toEqual({ ok: true });
    const batch = packSequences(seqs);
    const { logprob } = await model.forward(batch);
    let off = 0;
    let maxDiff = 0;
    for (const [i, r] of rs.entries()) {
      for (let t = r.promptLength; t < r.tokens.length; t++)
        maxDiff = Math.max(maxDiff, Math.abs((logprob[off + t] as number) - (r.logprobs[t] as number)));
      const s = seqs[i];
      for (let t = 0; t < r.tokens.length; t++) {
        expect(s?.lossMask[t]).toBe(t >= r.promptLength && r.forced[t] === 0 ? 1 : 0);
        expect(s?.specialMask[t]).toBe((r.tokens[t] as number) < 8 ? 1 : 0);
      }
      off += r.tokens.length;
    }
    expect(maxDiff).toBeLessThan(1e-4);
    // PAPO on these: strictly on-policy, the recorded logprobs serve as the old ones.
    seqs.forEach((s, i) => {
      s.advantage = i === 0 ? 1 : -1;
    });
    const before = model.getParam('model.embed_tokens.weight');
    const r = await policyStep(
      model,
      seqs,
      { kind: 'papo', aggregation: 'token-mean', epsLow: 0.2, epsHigh: 0.2, clipC: 10, exemptSpecial: false },
      { lr: 1e-3 },
      64,
    );
    expect(Number.isFinite(r.gradNorm) && r.gradNorm > 0).toBe(true);
    expect(r.metrics.ratioMean).toBe(1);
    expect(model.getParam('model.embed_tokens.weight')).not.toEqual(before);
    expect(POLICY_LOSSES.papo).toBeDefined();
  });

  it('a record the builder disagrees with is an error naming the rollout, not a re-labelling', async () => {
    const { rs } = await rollouts();
    const r = rs[0] as Rollout;
    const tampered = { ...r, positions: r.positions.map((p, t) => (t === r.tokens.length - 1 ? p + 1 : p)) };
    expect(() => checkRecordedStructure(tampered, codec.tagIds, 'stage papo rollout 0')).toThrow(RolloutStructureError);
    expect(() => rolloutSequence(tampered, codec.tagIds, { label: 'stage papo rollout 0' })).toThrow(
      /stage papo rollout 0: the builder's positions differ/,
    );
  });
});
