/**
 * The structure builder (Algorithms 1 and 2, our convention; docs/structure.md): from the
 * tokens of one sequence (prompt + response) to position ids, `prev` (which index predicts
 * each token) and the Structure (block and step of every token at every nesting level).
 *
 * Convention, in short: a step is its separator (the text after `</guideline>` or the previous
 * `</step>`), `<step>`, its content and `</step>`. The anchor is the last token before a
 * block's first step; every step starts at position p_anchor + 1 and its first token is
 * predicted from the anchor; the first token after the block gets p_anchor + 1 + Lmax.
 * Siblings never see each other; everything after the block sees every step.
 *
 * Returns `{ ok: false, reason, at, message }` for any malformed response and for unusable
 * arguments (reason 'bad-input': a prompt length outside the sequence, pieces that do not
 * match the ids, two tags with one id); it never throws on bad input.
 *
 * Deliberately not here: packing several sequences into a batch (pack.ts), style grading
 * (format_score.ts), branch limits (validator.ts).
 */
import type { Structure } from '../model/batch.js';
import type { HfTokenizer } from '../model/tokenizer.js';
import type { RejectionKind } from './errors.js';
import { type GrammarOptions, TagGrammar } from './grammar.js';
import { firstTokenFrom, type ScannedTokens, scanIds, scanText, tokenAt, tokenPieces } from './scan.js';
import { planLabel, type TagIds, tagIdsFromTokenizer } from './tags.js';

export interface BuildOptions extends GrammarOptions {
  /** Tokens of the prompt at the front: kept sequential, never parsed. Default 0. */
  promptLength?: number;
  /** prev = -1 for every prompt token (score only the response). Default false: t - 1 everywhere but token 0. */
  scoreResponseOnly?: boolean;
}

/** One parallel block, in token indices of the sequence (ranges are half-open). */
export interface BlockInfo {
  /** Block id, in order of `<guideline>` (unique in the sequence). */
  id: number;
  /** 1 for a top-level block, 2 for a block inside a step of a depth-1 block, ... */
  depth: number;
  /** The step that contains this block (nesting only). */
  parent?: { block: number; step: number };
  /** First token of the block (the one holding the first character of `<guideline>`). */
  start: number;
  /** Last token before the first step (usually `</guideline>`): every step is predicted from it. */
  anchor: number;
  /** Plan labels in order ('' when a plan has no `N:` label or its text is unknown). */
  plans: string[];
  /** [start, end) token range of each step, separator included. */
  steps: [number, number][];
  /** Step id of each step (unique in the sequence). */
  stepIds: number[];
  /** One past the last token of the block (its `</takeaway>`). */
  end: number;
  /** Position of the anchor: every step starts at anchorPosition + 1. */
  anchorPosition: number;
  /** Lmax: positions taken by the longest step; the text after the steps starts at anchorPosition + 1 + longestStep. */
  longestStep: number;
}

export interface BuildOk {
  ok: true;
  mode: 'ids' | 'text';
  /** Tokens in the sequence. */
  length: number;
  promptLength: number;
  /** (length) position ids. */
  positions: Int32Array;
  /** (length) predicting index per token, -1 = not scored. */
  prev: Int32Array;
  /** depth = deepest nesting found (1 when flat or without blocks). */
  structure: Structure;
  blocks: BlockInfo[];
}

export interface BuildRejected {
  ok: false;
  mode: 'ids' | 'text';
  reason: RejectionKind;
  /** Token index where the fault was found. */
  at: number;
  message: string;
}

export type BuildResult = BuildOk | BuildRejected;

interface RawStep {
  id: number;
  start: number;
  end: number;
  children: RawBlock[];
}
interface RawBlock {
  id: number;
  depth: number;
  parent?: { block: number; step: number };
  open: number;
  planTextStart: number;
  plans: string[];
  nextStepStart: number;
  steps: RawStep[];
  close: number;
}

/** ids mode: each tag is the single token `tagIds[tag]`. `pieces` (per token) are only used to read plan labels. */
export function buildFromIds(
  ids: ArrayLike<number>,
  tagIds: TagIds,
  options: BuildOptions & { pieces?: readonly string[] } = {},
): BuildResult {
  return guarded('ids', () => buildFromScan(scanIds(ids, tagIds, options.promptLength ?? 0, options.pieces), options));
}

/** text mode: one decoded text piece per token; tags are found in the joined text. */
export function buildFromText(pieces: readonly string[], options: BuildOptions = {}): BuildResult {
  return guarded('text', () => buildFromScan(scanText(pieces, options.promptLength ?? 0), options));
}

/** Unusable arguments (scan.ts throws RangeError for them) become a 'bad-input' rejection. */
function guarded(mode: 'ids' | 'text', build: () => BuildResult): BuildResult {
  try {
    return build();
  } catch (e) {
    if (e instanceof RangeError) return { ok: false, mode, reason: 'bad-input', at: 0, message: e.message };
    throw e;
  }
}

/** Picks the mode for `tokenizer`: ids mode when all eight tags are single tokens in it, text mode otherwise. */
export function buildStructure(tokenizer: HfTokenizer, ids: ArrayLike<number>, options: BuildOptions = {}): BuildResult {
  const pieces = tokenPieces(tokenizer, ids);
  const tagIds = tagIdsFromTokenizer(tokenizer);
  return tagIds ? buildFromIds(ids, tagIds, { ...options, pieces }) : buildFromText(pieces, options);
}

export function buildFromScan(scan: ScannedTokens, options: BuildOptions = {}): BuildResult {
  const reject = (reason: RejectionKind, at: number, message: string): BuildRejected => ({
    ok: false,
    mode: scan.mode,
    reason,
    at,
    message,
  });
  const grammar = new TagGrammar(options);
  const top: RawBlock[] = [];
  const open: RawBlock[] = [];
  let blockCount = 0;
  let stepCount = 0;
  let maxDepth = 1;
  for (const hit of scan.tags) {
    const tr = grammar.feed(hit.tag);
    if (!tr.ok) return reject(tr.reason, tokenAt(scan, hit.start), `${tr.message} (token ${tokenAt(scan, hit.start)})`);
    const b = open[open.length - 1] as RawBlock;
    switch (tr.action) {
      case 'open-block': {
        const nb: RawBlock = {
          id: blockCount++,
          depth: open.length + 1,
          open: hit.start,
          planTextStart: -1,
          plans: [],
          nextStepStart: -1,
          steps: [],
          close: -1,
        };
        maxDepth = Math.max(maxDepth, nb.depth);
        const parentStep = b?.steps[b.steps.length - 1];
        if (b && parentStep) {
          nb.parent = { block: b.id, step: parentStep.id };
          parentStep.children.push(nb);
        } else top.push(nb);
        open.push(nb);
        break;
      }
      case 'open-plan':
        b.planTextStart = hit.end;
        break;
      case 'close-plan':
        b.plans.push(planLabel(scan.text(b.planTextStart, hit.start) ?? '') ?? '');
        break;
      case 'close-guideline':
      case 'close-step':
        if (tr.action === 'close-step') (b.steps[b.steps.length - 1] as RawStep).end = hit.end;
        b.nextStepStart = hit.end;
        break;
      case 'open-step':
        b.steps.push({ id: stepCount++, start: b.nextStepStart, end: -1, children: [] });
        break;
      case 'open-takeaway':
        break;
      case 'close-block':
        b.close = hit.end;
        open.pop();
        break;
    }
  }
  if (!grammar.atRest) {
    const b = open[open.length - 1] as RawBlock;
    const at = tokenAt(scan, b.open);
    return reject(
      'unclosed-block',
      at,
      `the response ends while ${grammar.describeOpen()}; the innermost open block starts at token ${at}`,
    );
  }
  return layout(scan, top, maxDepth, options.scoreResponseOnly ?? false);
}

function layout(scan: ScannedTokens, top: RawBlock[], depth: number, responseOnly: boolean): BuildResult {
  const n = scan.length;
  const positions = new Int32Array(n);
  const prev = new Int32Array(n);
  const block = new Int32Array(n * depth).fill(-1); // (tokens, depth)
  const step = new Int32Array(n * depth).fill(-1); // (tokens, depth)
  for (let t = 0; t < n; t++) prev[t] = t === 0 || (responseOnly && t < scan.promptLength) ? -1 : t - 1;
  const infos: BlockInfo[] = [];
  let fault: BuildRejected | undefined;

  // Lays out tokens [from, to) starting at position `pos`; returns the next free position.
  const run = (blocks: RawBlock[], from: number, to: number, pos: number, level: number): number => {
    let t = from;
    for (const b of blocks) {
      if (fault) return pos;
      const first = b.steps[0] as RawStep;
      const s0 = firstTokenFrom(scan, first.start);
      for (; t < s0; t++) positions[t] = pos++;
      const anchor = s0 - 1;
      if (anchor < Math.max(from, scan.promptLength)) {
        fault = { ok: false, mode: scan.mode, reason: 'empty-region', at: s0, message: `block ${b.id}: no token before its first step` };
        return pos;
      }
      const pAnchor = positions[anchor] as number;
      let longest = 0;
      const ranges: [number, number][] = [];
      for (const s of b.steps) {
        const ts = firstTokenFrom(scan, s.start);
        const te = firstTokenFrom(scan, s.end);
        if (te <= ts) {
          fault = {
            ok: false,
            mode: scan.mode,
            reason: 'empty-region',
            at: ts,
            message: `step ${s.id} of block ${b.id}: no token starts inside it`,
          };
          return pos;
        }
        prev[ts] = anchor;
        for (let u = ts; u < te; u++) {
          block[u * depth + level] = b.id;
          step[u * depth + level] = s.id;
        }
        const next = run(s.children, ts, te, pAnchor + 1, level + 1);
        longest = Math.max(longest, next - (pAnchor + 1));
        ranges.push([ts, te]);
        t = te;
      }
      pos = pAnchor + 1 + longest;
      const end = Math.max(t, firstTokenFrom(scan, b.close));
      const info: BlockInfo = {
        id: b.id,
        depth: b.depth,
        start: Math.min(tokenAt(scan, b.open), s0),
        anchor,
        plans: b.plans,
        steps: ranges,
        stepIds: b.steps.map((s) => s.id),
        end,
        anchorPosition: pAnchor,
        longestStep: longest,
      };
      if (b.parent) info.parent = b.parent;
      infos.push(info);
    }
    for (; t < to; t++) positions[t] = pos++;
    return pos;
  };
  run(top, 0, n, 0, 0);
  if (fault) return fault;
  infos.sort((a, b) => a.id - b.id);
  return {
    ok: true,
    mode: scan.mode,
    length: n,
    promptLength: scan.promptLength,
    positions,
    prev,
    structure: { depth, block, step },
    blocks: infos,
  };
}
