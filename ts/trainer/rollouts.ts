/**
 * Rollouts go from the engine to the loss as recorded: token ids, positions, `prev`, Structure
 * and the logprob of every sampled token are taken from the `Rollout` unchanged - no text round
 * trip. The structure builder runs on the recorded TOKENS only as a check (parallel rollouts):
 * a disagreement with the recorded Structure is a RolloutStructureError naming the rollout, never
 * a silent re-labelling. `structuralFilter` is stage 3's validity test (NPR section 2.4): a
 * rollout the builder rejects, whose fork was refused, or that ended malformed is dropped.
 *
 * Loss tokens: response tokens the policy sampled (forced fork prefixes and joins excluded).
 * Special tokens: the 8 tags when the codec has them as single ids.
 */
import type { Rollout } from '../engine/types.js';
import type { Structure } from '../model/batch.js';
import { buildFromIds } from '../parallel/builder.js';
import type { TagIds } from '../parallel/tags.js';

export class RolloutStructureError extends Error {
  override name = 'RolloutStructureError';
}

/** One training sequence (prompt + response) with everything the loss needs. */
export interface TrainSequence {
  ids: Int32Array;
  positions: Int32Array;
  prev: Int32Array;
  structure?: Structure;
  /** (T) logprobs recorded while sampling (0 where not sampled). */
  oldLogprob: Float32Array;
  /** (T) 1 on tokens the loss counts. */
  lossMask: Float32Array;
  /** (T) 1 on tag tokens. */
  specialMask: Uint8Array;
  /** Scalar advantage of the whole response (set by the stage). */
  advantage: number;
}

export type FilterVerdict = { ok: true } | { ok: false; reason: string };

/** Stage 3's structural filter (and the engine-side faults that make a rollout unusable). */
export function structuralFilter(r: Rollout, tagIds: TagIds | undefined): FilterVerdict {
  if (r.finishReason === 'malformed' || r.finishReason === 'kv-exhausted' || r.finishReason === 'abort')
    return { ok: false, reason: `finish ${r.finishReason}` };
  if (r.fault) return { ok: false, reason: `fault ${r.fault.reason}` };
  if (r.structureFaults.length > 0) return { ok: false, reason: `structure ${r.structureFaults[0]?.reason}` };
  // AR mode records every block as refused ('mode-ar'): that is the mode, not a fault.
  if (r.blocks.some((b) => !b.parallel && b.reason !== 'mode-ar')) return { ok: false, reason: 'fork refused' };
  if (tagIds) {
    const built = buildFromIds(r.tokens, tagIds, { promptLength: r.promptLength, scoreResponseOnly: true });
    if (!built.ok) return { ok: false, reason: `builder ${built.reason}` };
  }
  return { ok: true };
}

/** Throws when the builder, run on the recorded tokens, disagrees with the recorded Structure. */
export function checkRecordedStructure(r: Rollout, tagIds: TagIds, label: string): void {
  const built = buildFromIds(r.tokens, tagIds, { promptLength: r.promptLength, scoreResponseOnly: true });
  if (!built.ok) throw new RolloutStructureError(`${label}: the builder rejects the recorded tokens (${built.reason}: ${built.message})`);
  const same = (a: ArrayLike<number>, b: ArrayLike<number>) => a.length === b.length && Array.prototype.every.call(a, (x, i) => x === b[i]);
  const s = r.structure;
  const bs = built.structure;
  const what = !same(built.positions, r.positions)
    ? 'positions'
    : !same(built.prev, r.prev)
      ? 'prev'
      : bs.depth !== s.depth || !same(bs.block, s.block) || !same(bs.step, s.step)
        ? 'Structure'
        : undefined;
  if (what) throw new RolloutStructureError(`${label}: the builder's ${what} differ from the engine's record; refusing to re-label`);
}

/** A rollout as a training sequence (advantage 0 until the stage sets it). */
export function rolloutSequence(r: Rollout, tagIds: TagIds | undefined, options: { check?: boolean; label?: string } = {}): TrainSequence {
  if (options.check !== false && tagIds && r.parallel) checkRecordedStructure(r, tagIds, options.label ?? `rollout ${r.index}`);
  const T = r.tokens.length;
  const lossMask = new Float32Array(T);
  const specialMask = new Uint8Array(T);
  const tags = new Set(tagIds ? Object.values(tagIds) : []);
  for (let t = 0; t < T; t++) {
    if (t >= r.promptLength && r.prev[t] !== -1 && r.forced[t] === 0) lossMask[t] = 1;
    if (tags.has(r.tokens[t] as number)) specialMask[t] = 1;
  }
  const seq: TrainSequence = {
    ids: r.tokens,
    positions: r.positions,
    prev: r.prev,
    oldLogprob: r.logprobs,
    lossMask,
    specialMask,
    advantage: 0,
  };
  if (r.parallel) seq.structure = r.structure;
  return seq;
}
