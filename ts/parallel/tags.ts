/**
 * The NPR tag schema as data: the eight tags, their kinds, the plan-label rule, and where a
 * tokenizer has the tags as single tokens (ids mode) or not (text mode, stock tokenizers).
 *
 * Deliberately not here: any grammar (grammar.ts), scanning (scan.ts) or scoring; adding the
 * tags to a tokenizer is ts/model/special_tokens.ts.
 */
import { NPR_TAGS, type NprTag } from '../model/special_tokens.js';
import type { HfTokenizer } from '../model/tokenizer.js';

export { NPR_TAGS, type NprTag };

/** The longest tag text (`</guideline>`, 12 characters): a streaming scanner holds at most this many characters back. */
export const MAX_TAG_LENGTH = Math.max(...NPR_TAGS.map((t) => t.length));

/** Token id of each of the eight tags, when each tag is one token. */
export type TagIds = Readonly<Record<NprTag, number>>;

/** Plan labels: `1:`, `2:`, dotted `2.1:`, after optional whitespace (the engine's rule). */
export const PLAN_LABEL = /^\s*([0-9]+(?:\.[0-9]+)*)\s*:/;

/** The label of a plan's text (`' 2.1: try x'` -> `'2.1'`), or undefined when it has none. */
export function planLabel(text: string): string | undefined {
  return PLAN_LABEL.exec(text)?.[1];
}

export function isNprTag(text: string): text is NprTag {
  return (NPR_TAGS as readonly string[]).includes(text);
}

/** The tag ids of a tokenizer in which all eight tags are single added tokens, else undefined (use text mode). */
export function tagIdsFromTokenizer(tokenizer: HfTokenizer): TagIds | undefined {
  const out: Partial<Record<NprTag, number>> = {};
  for (const tag of NPR_TAGS) {
    const id = tokenizer.addedTokens.get(tag);
    if (id === undefined) return undefined;
    out[tag] = id;
  }
  return out as TagIds;
}

/** Reverse map id -> tag of a TagIds (RangeError when two tags share an id). */
export function tagOfId(tagIds: TagIds): Map<number, NprTag> {
  const out = new Map<number, NprTag>();
  for (const tag of NPR_TAGS) {
    const id = tagIds[tag];
    if (!Number.isInteger(id)) throw new RangeError(`tagIds['${tag}'] must be an integer token id (got ${id})`);
    if (out.has(id)) throw new RangeError(`tagIds: '${tag}' and '${out.get(id)}' have the same id ${id}; each tag needs its own id`);
    out.set(id, tag);
  }
  return out;
}
