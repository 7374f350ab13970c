/**
 * Packs built sequences into one PackedBatch (the model's input) and states the visibility
 * rule as a plain reference: key k is visible to query q iff both are in the same sequence,
 * k <= q, and no level exists at which both are in the same block but different steps.
 *
 * Packing offsets `prev` and renumbers block and step ids so they are unique in the batch; a
 * batch's depth is the deepest of its sequences (shallower ones are padded with -1).
 *
 * Deliberately not here: building (builder.ts); the fast mask lives in the attention kernels,
 * this is the slow oracle that tests and `npr inspect` pictures use.
 */
import type { PackedBatch, Structure } from '../model/batch.js';
import type { BuildOk } from './builder.js';

/** One sequence for packStructured: its ids and the builder's result for them. */
export interface StructuredSequence {
  ids: ArrayLike<number>;
  built: BuildOk;
}

export function packStructured(sequences: readonly StructuredSequence[]): PackedBatch {
  const total = sequences.reduce((n, s) => n + s.ids.length, 0);
  const depth = Math.max(1, ...sequences.map((s) => s.built.structure.depth));
  const ids = new Int32Array(total);
  const positions = new Int32Array(total);
  const prev = new Int32Array(total);
  const cuSeqlens = new Int32Array(sequences.length + 1);
  const block = new Int32Array(total * depth).fill(-1); // (tokens, depth)
  const step = new Int32Array(total * depth).fill(-1); // (tokens, depth)
  let t0 = 0;
  let blockBase = 0;
  let stepBase = 0;
  sequences.forEach(({ ids: seqIds, built }, s) => {
    const n = seqIds.length;
    if (built.length !== n) throw new RangeError(`sequence ${s}: ${n} ids but the structure was built for ${built.length} tokens`);
    const d = built.structure.depth;
    let maxBlock = -1;
    let maxStep = -1;
    for (let t = 0; t < n; t++) {
      ids[t0 + t] = seqIds[t] as number;
      positions[t0 + t] = built.positions[t] as number;
      const p = built.prev[t] as number;
      prev[t0 + t] = p < 0 ? -1 : t0 + p;
      for (let l = 0; l < d; l++) {
        const b = built.structure.block[t * d + l] as number;
        if (b < 0) continue;
        const st = built.structure.step[t * d + l] as number;
        block[(t0 + t) * depth + l] = blockBase + b;
        step[(t0 + t) * depth + l] = stepBase + st;
        maxBlock = Math.max(maxBlock, b);
        maxStep = Math.max(maxStep, st);
      }
    }
    blockBase += maxBlock + 1;
    stepBase += maxStep + 1;
    t0 += n;
    cuSeqlens[s + 1] = t0;
  });
  return { ids, positions, prev, cuSeqlens, structure: { depth, block, step } };
}

/** Is key k visible to query q (same sequence assumed, both token indices into `structure`)? */
export function isVisible(structure: Structure, q: number, k: number): boolean {
  if (k > q) return false;
  const d = structure.depth;
  for (let l = 0; l < d; l++) {
    const bq = structure.block[q * d + l] as number;
    if (bq >= 0 && bq === structure.block[k * d + l] && structure.step[q * d + l] !== structure.step[k * d + l]) return false;
  }
  return true;
}

/** (T, T) row-major 0/1 mask of one sequence: row = query, column = key. */
export function visibilityMask(structure: Structure, tokens: number): Uint8Array {
  const mask = new Uint8Array(tokens * tokens);
  for (let q = 0; q < tokens; q++) for (let k = 0; k <= q; k++) mask[q * tokens + k] = isVisible(structure, q, k) ? 1 : 0;
  return mask;
}

/** The branch path of token t: `b0/s1 > b2/s4` (block/step per level), '' outside every step. */
export function branchPath(structure: Structure, t: number): string {
  const parts: string[] = [];
  for (let l = 0; l < structure.depth; l++) {
    const b = structure.block[t * structure.depth + l] as number;
    if (b < 0) break;
    parts.push(`b${b}/s${structure.step[t * structure.depth + l]}`);
  }
  return parts.join(' > ');
}
