/**
 * Rollout recording: the request's tree of branches flattened into one sequence - the prompt,
 * then the trunk's tokens, every fork's steps in plan order where the fork happened, and the
 * trunk again after the join - with the positions decoding used, `prev` (a step's first token
 * is predicted from the anchor), the Structure (block and step per token and level), the
 * logprobs recorded while decoding, and the blocks as they ran or were refused.
 *
 * `rolloutBatch` turns a rollout into the PackedBatch `Model.forward` scores, so training sees
 * exactly what decoding saw. Not here: text rendering for people (cli), rewards.
 */
import type { PackedBatch } from '../model/batch.js';
import type { StructureFault } from '../parallel/errors.js';
import type { Branch } from './branch.js';
import type { BlockRecord, BranchStats, EngineFault, EngineMode, FinishReason, Rollout } from './types.js';

export interface RolloutSource {
  index: number;
  mode: EngineMode;
  prompt: readonly number[];
  trunk: Branch;
  branches: readonly Branch[];
  finishReason: FinishReason;
  structureFaults: StructureFault[];
  fault: EngineFault | undefined;
  wallMs: number;
  decode?: (ids: readonly number[]) => string;
}

interface Flat {
  token: number;
  position: number;
  prev: number;
  logprob: number;
  logprobSampling: number;
  forced: boolean;
  branch: number;
  path: readonly { block: number; step: number }[];
}

export function assembleRollout(src: RolloutSource): Rollout {
  const P = src.prompt.length;
  const flat: Flat[] = src.prompt.map((token, t) => ({
    token,
    position: t,
    prev: -1,
    logprob: 0,
    logprobSampling: 0,
    forced: false,
    branch: -1,
    path: [],
  }));
  const blocks: BlockRecord[] = [];
  let nextBlock = 0;
  let nextStep = 0;
  let depth = 1;
  let forks = 0;

  const walk = (branch: Branch, path: readonly { block: number; step: number }[], firstPrev: number | null): void => {
    let first = true;
    for (const item of branch.items) {
      if (item.kind === 'token') {
        const idx = flat.length;
        const r = item.record;
        flat.push({
          token: r.token,
          position: r.position,
          prev: first && firstPrev !== null ? firstPrev : idx - 1,
          logprob: r.logprob,
          logprobSampling: r.forced ? 0 : r.logprobSampling,
          forced: r.forced,
          branch: branch.id,
          path,
        });
        first = false;
      } else if (item.kind === 'refused') {
        blocks.push({ parallel: false, anchor: flat.length - 1, reason: item.reason, message: item.message });
      } else {
        forks++;
        const anchor = flat.length - 1;
        const id = nextBlock++;
        depth = Math.max(depth, path.length + 1);
        const rec: Extract<BlockRecord, { parallel: true }> = {
          parallel: true,
          id,
          depth: path.length + 1,
          anchor,
          anchorPosition: item.fork.anchorPosition,
          labels: item.fork.labels,
          steps: [],
          stepIds: [],
          branches: [],
          longestStep: 0,
        };
        blocks.push(rec);
        for (const child of item.fork.children) {
          const step = nextStep++;
          const start = flat.length;
          walk(child, [...path, { block: id, step }], anchor);
          rec.steps.push([start, flat.length]);
          rec.stepIds.push(step);
          rec.branches.push(child.id);
          rec.longestStep = Math.max(rec.longestStep, child.nextPosition - item.fork.anchorPosition - 1);
        }
      }
    }
  };
  walk(src.trunk, [], P > 0 ? P - 1 : null);
  if (P === 0 && flat[0]) flat[0].prev = -1;

  const T = flat.length;
  const tokens = new Int32Array(T);
  const positions = new Int32Array(T);
  const prev = new Int32Array(T);
  const logprobs = new Float32Array(T);
  const samplingLogprobs = new Float32Array(T);
  const forced = new Uint8Array(T);
  const branchOf = new Int32Array(T);
  const block = new Int32Array(T * depth).fill(-1); // (tokens, depth)
  const step = new Int32Array(T * depth).fill(-1); // (tokens, depth)
  flat.forEach((f, t) => {
    tokens[t] = f.token;
    positions[t] = f.position;
    prev[t] = f.prev;
    logprobs[t] = f.logprob;
    samplingLogprobs[t] = f.logprobSampling;
    forced[t] = f.forced ? 1 : 0;
    branchOf[t] = f.branch;
    f.path.forEach((p, l) => {
      block[t * depth + l] = p.block;
      step[t * depth + l] = p.step;
    });
  });
  const branches: BranchStats[] = src.branches.map((b) => ({
    id: b.id,
    parent: b.parent?.id ?? null,
    label: b.label,
    key: b.key,
    tokens: b.tokens,
    forced: b.forcedTokens,
    startPosition: b.startPosition,
    endPosition: b.nextPosition,
  }));
  const rollout: Rollout = {
    index: src.index,
    mode: src.mode,
    promptLength: P,
    tokens,
    positions,
    prev,
    structure: { depth, block, step },
    logprobs,
    samplingLogprobs,
    forced,
    branchOf,
    generatedTokens: T - P,
    finishReason: src.finishReason,
    parallel: forks > 0,
    blocks,
    branches,
    structureFaults: src.structureFaults,
    wallMs: src.wallMs,
  };
  if (src.fault) rollout.fault = src.fault;
  if (src.decode) rollout.text = src.decode(Array.from(tokens.subarray(P)));
  return rollout;
}

/** The rollout as one packed sequence for `Model.forward`: recorded positions, prev and Structure. */
export function rolloutBatch(rollout: Rollout): PackedBatch {
  return {
    ids: rollout.tokens,
    positions: rollout.positions,
    prev: rollout.prev,
    cuSeqlens: Int32Array.of(0, rollout.tokens.length),
    structure: rollout.structure,
  };
}

/** Plain JSON (typed arrays as arrays) for `--json` and logs. */
export function rolloutToJson(rollout: Rollout): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(rollout)) out[k] = ArrayBuffer.isView(v) ? Array.from(v as unknown as ArrayLike<number>) : v;
  const s = rollout.structure;
  out.structure = { depth: s.depth, block: Array.from(s.block), step: Array.from(s.step) };
  return out;
}
