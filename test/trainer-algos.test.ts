/**
 * The trainer's algorithm registries: every native policy loss agrees with its TS loop
 * reference on random batches (odd sizes, every aggregation, with and without the tag
 * exemption); the advantage estimators on hand-checked groups, including PAPO's batch std
 * computed once (NPR's release recomputes it mid-normalisation); and the property PAPO exists
 * for, at the package's API.
 */
import { describe, expect, it } from 'vitest';
import {
  ADVANTAGE_ESTIMATORS,
  advantageEstimator,
  LOSS_AGGREGATIONS,
  POLICY_LOSSES,
  type PolicyLossInput,
  papoAdvantages,
  unbiasedStd,
} from '../ts/trainer/algos/index.js';
import { rng } from './helpers.js';

function randomBatch(seed: number, sequences: number, maxLen: number): PolicyLossInput {
  const uniform = rng(seed);
  const next = () => 2 * uniform() - 1; // [-1, 1)
  const lens = Array.from({ length: sequences }, () => 1 + Math.floor(((next() + 1) / 2) * maxLen));
  const T = lens.reduce((a, b) => a + b, 0);
  const input: PolicyLossInput = {
    logprob: new Float32Array(T),
    oldLogprob: new Float32Array(T),
    advantages: new Float32Array(T),
    lossMask: new Float32Array(T),
    specialMask: new Uint8Array(T),
    cuSeqlens: new Int32Array(sequences + 1),
  };
  let t = 0;
  lens.forEach((n, s) => {
    const a = 2 * next();
    for (let i = 0; i < n; i++, t++) {
      input.logprob[t] = -3 + 1.5 * next();
      (input.oldLogprob as Float32Array)[t] = (input.logprob[t] as number) + 0.5 * next();
      input.advantages[t] = a;
      input.lossMask[t] = next() > -0.6 ? 1 : 0;
      (input.specialMask as Uint8Array)[t] = next() > 0.5 ? 1 : 0;
    }
    input.cuSeqlens[s + 1] = t;
  });
  return input;
}

describe('policy losses: native kernel vs TS reference', () => {
  for (const [name, impl] of Object.entries(POLICY_LOSSES))
    for (const aggregation of LOSS_AGGREGATIONS)
      for (const exemptSpecial of [false, true])
        it(`${name} / ${aggregation}${exemptSpecial ? ' / tags exempt' : ''} agree on random batches`, () => {
          for (const [seed, S, L] of [
            [1, 1, 1],
            [2, 3, 17],
            [3, 13, 97],
          ] as const) {
            const input = randomBatch(seed * 31 + aggregation.length, S, L);
            const T = input.logprob.length;
            const config = { aggregation, exemptSpecial, clipC: 1.7, denominator: seed === 3 ? 500 : 0 };
            const dn = new Float32Array(T).fill(Number.NaN);
            const dr = new Float32Array(T).fill(Number.NaN);
            const mn = impl.native(input, config, dn);
            const mr = impl.reference(input, config, dr);
            expect(mn.loss).toBeCloseTo(mr.loss, 6);
            for (let t = 0; t < T; t++) expect(Math.abs((dn[t] as number) - (dr[t] as number))).toBeLessThan(1e-6);
            for (const k of ['tokens', 'specialTokens', 'clipFrac', 'clipFracLower', 'specialClipFrac'] as const) expect(mn[k]).toBe(mr[k]);
            for (const k of ['ratioMean', 'ratioMin', 'ratioMax', 'approxKl'] as const) expect(mn[k]).toBeCloseTo(mr[k], 5);
          }
        });

  it('a tag token whose ratio left the clip range: no gradient under PPO-clip, the full one under PAPO and the exemption', () => {
    const input: PolicyLossInput = {
      logprob: Float32Array.of(Math.log(0.6), Math.log(0.3)),
      oldLogprob: Float32Array.of(Math.log(0.4), Math.log(0.3)),
      advantages: Float32Array.of(1, 1),
      lossMask: Float32Array.of(1, 1),
      specialMask: Uint8Array.of(1, 0),
      cuSeqlens: Int32Array.of(0, 2),
    };
    const d = new Float32Array(2);
    const ppo = POLICY_LOSSES['ppo-clip'].native(input, {}, d);
    expect(d[0]).toBe(0);
    expect(ppo.specialClipFrac).toBe(1);
    POLICY_LOSSES['ppo-clip'].native(input, { exemptSpecial: true }, d);
    expect(d[0]).toBeCloseTo(-0.75, 6); // -A r / T, r = 1.5
    const papo = POLICY_LOSSES.papo.native({ ...input, oldLogprob: undefined }, {}, d);
    expect(d[0]).toBeCloseTo(-0.5, 6); // -A / T: grad log pi
    expect(papo.clipFrac).toBe(0);
    expect(papo.ratioMean).toBe(1);
  });

  it('names what is wrong with a bad input', () => {
    const input = randomBatch(5, 2, 4);
    expect(() => POLICY_LOSSES['ppo-clip'].native(input, {}, new Float32Array(1))).toThrow(/logprob must have 1 elements/);
    expect(() => POLICY_LOSSES['ppo-clip'].native({ ...input, oldLogprob: undefined }, {}, new Float32Array(input.logprob.length))).toThrow(
      /oldLogprob must be a Float32Array/,
    );
    const nan = { ...input, logprob: input.logprob.map((x, i) => (i === 0 ? Number.NaN : x)), lossMask: input.lossMask.map(() => 1) };
    expect(() => POLICY_LOSSES.papo.native(nan, {}, new Float32Array(input.logprob.length))).toThrow(/non-finite .* token 0/);
  });
});

describe('advantage estimators', () => {
  it('grpo normalises within each group with the unbiased std; a singleton group gets mean 0, std 1', () => {
    const adv = ADVANTAGE_ESTIMATORS.grpo({ rewards: [1, -1, -1, 1, 1, 0.5], groups: [0, 0, 0, 0, 1, 2] }, { eps: 0 });
    const s = unbiasedStd([1, -1, -1, 1]);
    expect(Array.from(adv.slice(0, 4))).toEqual([1 / s, -1 / s, -1 / s, 1 / s]);
    expect(adv[4]).toBe(1);
    expect(adv[5]).toBe(0.5);
  });

  it('papo: group mean, batch std computed once over the raw rewards', () => {
    const rewards = [1, -1, 1, 1, -1, -1, -1, 1];
    const groups = [0, 0, 0, 0, 1, 1, 1, 1];
    const adv = papoAdvantages({ rewards, groups }, { eps: 0 });
    const std = unbiasedStd(rewards);
    expect(adv[0]).toBeCloseTo((1 - 0.5) / std, 12);
    expect(adv[4]).toBeCloseTo((-1 + 0.5) / std, 12);
    // Every sample is divided by the same std: equal rewards in a group get equal advantages.
    expect(adv[0]).toBe(adv[2]);
    expect(adv[4]).toBe(adv[6]);
    expect(advantageEstimator('dapo')).toBe(ADVANTAGE_ESTIMATORS.grpo);
    expect(() => advantageEstimator('ppo')).toThrow(/known: grpo, dapo, papo/);
    expect(() => papoAdvantages({ rewards: [1], groups: [] })).toThrow(/one group id per reward/);
  });
});
