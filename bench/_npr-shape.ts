/**
 * The NPR-shaped rollout of the GPU benchmarks (../shared/reference/perf-anchors.md, section 5,
 * H100): a prompt of 512 tokens, then two parallel blocks, each = a guideline of 128 shared
 * tokens, 4 sibling steps of S tokens, a takeaway of 128 shared tokens; S fills the rollout to T
 * tokens (T = 4096: S = 384; 8192: 896; 32768: 3968). Siblings never see each other; every other
 * (query, later-or-equal key) pair is visible, which is exactly the Structure rule.
 *
 * Positions and prev follow docs/structure.md (every step starts at anchor + 1, the takeaway at
 * anchor + 1 + S; a step's first token is predicted from the anchor). Block and step ids are
 * unique in a packed batch. Not here: token ids (random per bench), the attention itself.
 */

const PROMPT = 512;
const GUIDELINE = 128;
const TAKEAWAY = 128;
const BLOCKS = 2;
const STEPS = 4;

/** A run of tokens of one kind: shared (block = step = -1) or one step of one block. */
export interface Segment {
  len: number;
  block: number;
  step: number;
}

export interface NprRollouts {
  tokens: number;
  /** (sequences + 1) boundaries. */
  cuSeqlens: Int32Array;
  /** (tokens) depth-1 Structure. */
  block: Int32Array;
  step: Int32Array;
  /** (tokens) RoPE positions and predicting index (-1: not scored). */
  positions: Int32Array;
  prev: Int32Array;
  /** Per sequence, its runs in order. */
  segments: Segment[][];
  /** (q, k) pairs visible under the Structure, and under plain causal attention. */
  visiblePairs: number;
  causalPairs: number;
}

/** Step length S of a rollout of T tokens; throws when T does not split evenly. */
export function stepLength(T: number): number {
  const s = (T - PROMPT - BLOCKS * (GUIDELINE + TAKEAWAY)) / (BLOCKS * STEPS);
  if (!Number.isInteger(s) || s < 1) throw new RangeError(`no NPR rollout shape of ${T} tokens (step length ${s})`);
  return s;
}

/** `count` rollouts of T tokens each, packed back to back. */
export function nprRollouts(T: number, count = 1): NprRollouts {
  const S = stepLength(T);
  const n = T * count;
  const block = new Int32Array(n).fill(-1);
  const step = new Int32Array(n).fill(-1);
  const positions = new Int32Array(n);
  const prev = new Int32Array(n);
  const cuSeqlens = new Int32Array(count + 1);
  const segments: Segment[][] = [];
  let visiblePairs = 0;
  let blockId = 0;
  let stepId = 0;
  for (let r = 0; r < count; r++) {
    const t0 = r * T;
    const segs: Segment[] = [{ len: PROMPT, block: -1, step: -1 }];
    for (let b = 0; b < BLOCKS; b++) {
      segs.push({ len: GUIDELINE, block: -1, step: -1 });
      for (let s = 0; s < STEPS; s++) segs.push({ len: S, block: blockId, step: stepId++ });
      segs.push({ len: TAKEAWAY, block: -1, step: -1 });
      blockId++;
    }
    let t = t0;
    let pos = 0;
    let anchor = -1; // index of the last token before the current block's steps
    let anchorPos = -1;
    let siblingsBefore = 0; // tokens of earlier steps of the current block
    let inSteps = false;
    for (const seg of segs) {
      const isStep = seg.block >= 0;
      if (isStep && !inSteps) {
        anchor = t - 1;
        anchorPos = pos - 1;
        siblingsBefore = 0;
      }
      if (!isStep && inSteps) pos = anchorPos + 1 + S; // all steps have length S
      if (isStep) pos = anchorPos + 1;
      for (let i = 0; i < seg.len; i++, t++, pos++) {
        block[t] = seg.block;
        step[t] = seg.step;
        positions[t] = pos;
        prev[t] = t === t0 ? -1 : isStep && i === 0 ? anchor : t - 1;
        visiblePairs += t - t0 + 1 - (isStep ? siblingsBefore : 0);
      }
      if (isStep) siblingsBefore += seg.len;
      inSteps = isStep;
    }
    cuSeqlens[r + 1] = t;
    segments.push(segs);
  }
  return {
    tokens: n,
    cuSeqlens,
    block,
    step,
    positions,
    prev,
    segments,
    visiblePairs,
    causalPairs: (count * T * (T + 1)) / 2,
  };
}
