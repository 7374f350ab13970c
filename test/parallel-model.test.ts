/**
 * The built structure on the real model (tiny random Qwen3 on the CPU): a step's logprobs do
 * not move when a sibling step's tokens change (not even its length), while the takeaway's
 * do; and each step scores exactly as the engine would decode it alone - the prefix up to the
 * anchor followed by that step, plain causal, with the builder's positions.
 */
import { describe, expect, it } from 'vitest';
import type { PackedBatch } from '../ts/model/batch.js';
import { Model } from '../ts/model/model.js';
import { type BuildOk, buildFromIds } from '../ts/parallel/builder.js';
import { packStructured } from '../ts/parallel/pack.js';
import { NPR_TAGS, type NprTag, type TagIds } from '../ts/parallel/tags.js';
import { tinyQwen3Config } from './fixtures/model/tiny-qwen3.js';

const TAG_IDS = Object.fromEntries(NPR_TAGS.map((t, i) => [t, 100 + i])) as TagIds;
const T = (tag: NprTag) => TAG_IDS[tag];

/** Prompt 5 6 7; a block of two plans; step 1 = `step1`; step 2 of 6 tokens; a takeaway; an answer. */
function response(step1: number[]): number[] {
  // biome-ignore format: one row per part
  return [
    5, 6, 7,
    T('<guideline>'), T('<plan>'), 11, 12, T('</plan>'), T('<plan>'), 13, 14, T('</plan>'), T('</guideline>'),
    20, T('<step>'), ...step1, T('</step>'),
    20, T('<step>'), 31, 32, 33, 34, T('</step>'),
    20, T('<takeaway>'), 40, 41, T('</takeaway>'), 50, 51,
  ];
}

function built(ids: number[]): BuildOk {
  const r = buildFromIds(ids, TAG_IDS, { promptLength: 3 });
  if (!r.ok) throw new Error(r.message);
  return r;
}

describe('the structure on the model', () => {
  const config = tinyQwen3Config({ vocabSize: 128, bosTokenId: 1, eosTokenId: 2 });
  const model = Model.create(config, { seed: 11 });

  it('siblings are isolated; the takeaway sees both', async () => {
    const variants = [response([21, 22, 23]), response([24, 25, 26]), response([24, 25, 26, 27, 28, 29])];
    const builds = variants.map(built);
    const batch = packStructured(variants.map((ids, i) => ({ ids, built: builds[i] as BuildOk })));
    const { logprob } = await model.forward(batch);
    const offsets = [0, variants[0]?.length as number, (variants[0]?.length as number) + (variants[1]?.length as number)];
    /** logprobs of step 2 and of the 4 tokens after the steps, of variant v. */
    const read = (v: number) => {
      const blk = builds[v]?.blocks[0] as BuildOk['blocks'][0];
      const [s, e] = blk.steps[1] as [number, number];
      const o = offsets[v] as number;
      return { step2: Array.from(logprob.subarray(o + s, o + e)), after: Array.from(logprob.subarray(o + e + 1, o + e + 5)) };
    };
    const [a, same, longer] = [read(0), read(1), read(2)];
    // same length, other tokens: bit for bit
    expect(same.step2).toEqual(a.step2);
    // another length: the packed offsets change the kernels' rounding only
    const worst = Math.max(...a.step2.map((x, i) => Math.abs(x - (longer.step2[i] as number))));
    console.log(`step 2 under a longer sibling: max |d logprob| = ${worst}`);
    expect(worst).toBeLessThan(1e-5);
    // the text after the steps sees the changed step: its logprobs move
    const moved = Math.max(...a.after.map((x, i) => Math.abs(x - (same.after[i] as number))));
    expect(moved).toBeGreaterThan(1e-4);
  });

  it('each step scores as the engine decodes it alone (prefix to the anchor, then the step)', async () => {
    const ids = response([21, 22, 23]);
    const r = built(ids);
    const full = await model.forward(packStructured([{ ids, built: r }]));
    const blk = r.blocks[0] as BuildOk['blocks'][0];
    for (const [s, e] of blk.steps) {
      const branch = [...ids.slice(0, blk.anchor + 1), ...ids.slice(s, e)];
      const positions = [...Array.from(r.positions.slice(0, blk.anchor + 1)), ...Array.from(r.positions.slice(s, e))];
      const alone: PackedBatch = {
        ids: Int32Array.from(branch),
        positions: Int32Array.from(positions),
        prev: Int32Array.from(branch, (_, t) => t - 1),
        cuSeqlens: Int32Array.from([0, branch.length]),
      };
      const { logprob } = await model.forward(alone);
      for (let i = 0; i < e - s; i++) {
        expect(Math.abs((logprob[blk.anchor + 1 + i] as number) - (full.logprob[s + i] as number))).toBeLessThan(1e-5);
      }
    }
  });
});
