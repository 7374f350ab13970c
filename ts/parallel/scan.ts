/**
 * Finds the tags of a response and puts both input modes on one footing: "units".
 *
 * - ids mode (the tags are single special tokens): a unit is a token; a tag is a token whose
 *   id is a tag id.
 * - text mode (stock tokenizer: `<step>` is several tokens and `><` merges two tags): a unit
 *   is a character of the concatenated per-token text pieces; a tag is a substring.
 *
 * Either way a token starts at a unit (`tokenStart`), and a token belongs to the region that
 * contains its FIRST unit. Only the response (tokens from promptLength on) is scanned.
 *
 * Deliberately not here: the grammar (grammar.ts) and anything positional (builder.ts).
 */
import type { HfTokenizer } from '../model/tokenizer.js';
import { type NprTag, type TagIds, tagOfId } from './tags.js';

/** One tag found in the response: [start, end) in units. */
export interface TagHit {
  tag: NprTag;
  start: number;
  end: number;
}

export interface ScannedTokens {
  mode: 'ids' | 'text';
  /** Tokens in the whole sequence (prompt + response). */
  length: number;
  promptLength: number;
  /** (length + 1) unit where each token starts; the last entry is the unit count. */
  tokenStart: Int32Array;
  /** Tags of the response, in order. */
  tags: TagHit[];
  /** Text of units [a, b) when known (text mode, or ids mode given pieces), else undefined. */
  text(a: number, b: number): string | undefined;
}

const TAG_PATTERN = /<\/?(?:guideline|plan|step|takeaway)>/g;

/** Tags in `text` from character `from` on, with character offsets. */
export function findTags(text: string, from = 0): TagHit[] {
  const out: TagHit[] = [];
  const re = new RegExp(TAG_PATTERN.source, 'g');
  re.lastIndex = from;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    out.push({ tag: m[0] as NprTag, start: m.index, end: m.index + m[0].length });
  }
  return out;
}

/**
 * The text piece of each token: each id decoded on its own (special tokens kept). A token that
 * holds part of a multi-byte character decodes to U+FFFD; the tags are ASCII, so this never
 * changes where a tag is, only the character count of such tokens.
 */
export function tokenPieces(tokenizer: HfTokenizer, ids: ArrayLike<number>): string[] {
  return Array.from(ids, (id) => tokenizer.decode([id], { skipSpecialTokens: false }));
}

function checkPrompt(promptLength: number, length: number): void {
  if (!Number.isInteger(promptLength) || promptLength < 0 || promptLength > length) {
    throw new RangeError(`promptLength must be an integer in [0, ${length}] (got ${promptLength})`);
  }
}

/** ids mode. `pieces` (optional, one per token) only serve to read plan labels. */
export function scanIds(ids: ArrayLike<number>, tagIds: TagIds, promptLength: number, pieces?: readonly string[]): ScannedTokens {
  checkPrompt(promptLength, ids.length);
  if (pieces && pieces.length !== ids.length) throw new RangeError(`pieces has ${pieces.length} entries for ${ids.length} ids`);
  const byId = tagOfId(tagIds);
  const tokenStart = new Int32Array(ids.length + 1);
  const tags: TagHit[] = [];
  for (let t = 0; t <= ids.length; t++) tokenStart[t] = t;
  for (let t = promptLength; t < ids.length; t++) {
    const tag = byId.get(ids[t] as number);
    if (tag) tags.push({ tag, start: t, end: t + 1 });
  }
  return {
    mode: 'ids',
    length: ids.length,
    promptLength,
    tokenStart,
    tags,
    text: (a, b) => pieces?.slice(a, b).join(''),
  };
}

/** text mode: one text piece per token (see tokenPieces). */
export function scanText(pieces: readonly string[], promptLength: number): ScannedTokens {
  checkPrompt(promptLength, pieces.length);
  const tokenStart = new Int32Array(pieces.length + 1);
  let offset = 0;
  pieces.forEach((p, t) => {
    tokenStart[t] = offset;
    offset += p.length;
  });
  tokenStart[pieces.length] = offset;
  const full = pieces.join('');
  return {
    mode: 'text',
    length: pieces.length,
    promptLength,
    tokenStart,
    tags: findTags(full, tokenStart[promptLength] as number),
    text: (a, b) => full.slice(a, b),
  };
}

/** The first token (>= promptLength) that starts at or after `unit`; `length` when none. */
export function firstTokenFrom(scan: ScannedTokens, unit: number): number {
  let lo = scan.promptLength;
  let hi = scan.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((scan.tokenStart[mid] as number) >= unit) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** The token whose text contains `unit` (the last token starting at or before it). */
export function tokenAt(scan: ScannedTokens, unit: number): number {
  const t = firstTokenFrom(scan, unit + 1) - 1;
  return Math.max(t, scan.promptLength, 0);
}
