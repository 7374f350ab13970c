/**
 * What the engine needs from a tokenizer: the tag ids (ids mode) or nothing (text mode, the
 * tags are found in the pieces), the text piece of a token (plan labels, text-mode tags),
 * encoding of the texts it forces, and the end-of-sequence ids. `codecFromTokenizer` builds it
 * from an HfTokenizer; `CharCodec` is a character-level codec for scripted and synthetic runs.
 *
 * Deliberately not here: chat templates (the caller renders the prompt), detokenising streams.
 */
import type { HfTokenizer } from '../model/tokenizer.js';
import { NPR_TAGS, type NprTag, type TagIds, tagIdsFromTokenizer } from '../parallel/tags.js';

export interface TokenCodec {
  /** Present when every tag is one token (the validator runs in ids mode). */
  readonly tagIds: TagIds | undefined;
  /** Text of one token (may be a partial character for byte-level BPE). */
  piece(id: number): string;
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
  /** Tokens that end the response when the trunk produces them. */
  readonly eos: ReadonlySet<number>;
}

/** The forced start of a step branch: separator, `<step>`, newline, label (docs/structure.md). */
export const stepPrefixText = (label: string): string => `\n<step>\n${label}:`;
/** Forced after a join, before the takeaway's content. */
export const JOIN_TEXT = '\n<takeaway>';

/** A codec over an HfTokenizer; EOS = the config's eos_token plus Qwen's end markers when present. */
export function codecFromTokenizer(tokenizer: HfTokenizer, eos?: readonly number[]): TokenCodec {
  const ids = new Set<number>(eos ?? []);
  if (!eos) {
    const configured = tokenizer.configToken('eos_token')?.id;
    if (configured !== undefined) ids.add(configured);
    for (const t of ['<|im_end|>', '<|endoftext|>']) {
      const id = tokenizer.tokenToId(t);
      if (id !== undefined) ids.add(id);
    }
  }
  const cache = new Map<number, string>();
  return {
    tagIds: tagIdsFromTokenizer(tokenizer),
    eos: ids,
    piece(id) {
      let p = cache.get(id);
      if (p === undefined) {
        p = tokenizer.decode([id]);
        cache.set(id, p);
      }
      return p;
    },
    encode: (text) => tokenizer.encode(text, { addSpecialTokens: false }),
    decode: (list) => tokenizer.decode(list),
  };
}

/**
 * Ids 0..7 are the eight tags (NPR_TAGS order), 8 is end-of-sequence, then one id per
 * character of `alphabet`; ids up to `vocab` beyond that decode to '' (filler for a model
 * whose vocabulary is larger than the alphabet).
 */
export class CharCodec implements TokenCodec {
  static readonly EOS = 8;
  readonly tagIds: TagIds;
  readonly eos: ReadonlySet<number> = new Set([CharCodec.EOS]);
  private readonly chars: string[];
  private readonly ids = new Map<string, number>();

  constructor(readonly alphabet = '\n 0123456789:.+-*=?abcdefghijklmnopqrstuvwxyz{}\\') {
    this.chars = [...alphabet];
    const tags: Partial<Record<NprTag, number>> = {};
    NPR_TAGS.forEach((t, i) => {
      tags[t] = i;
    });
    this.tagIds = tags as TagIds;
    for (const [i, c] of this.chars.entries()) this.ids.set(c, 9 + i);
  }

  get size(): number {
    return 9 + this.chars.length;
  }

  piece(id: number): string {
    if (id < NPR_TAGS.length) return NPR_TAGS[id] as string;
    if (id === CharCodec.EOS) return '';
    return this.chars[id - 9] ?? '';
  }

  encode(text: string): number[] {
    const out: number[] = [];
    for (let i = 0; i < text.length; ) {
      const tag = NPR_TAGS.findIndex((t) => text.startsWith(t, i));
      if (tag >= 0) {
        out.push(tag);
        i += (NPR_TAGS[tag] as string).length;
        continue;
      }
      const id = this.ids.get(text[i] as string);
      if (id === undefined) throw new RangeError(`CharCodec: '${text[i]}' is not in the alphabet`);
      out.push(id);
      i++;
    }
    return out;
  }

  decode(ids: readonly number[]): string {
    return ids.map((id) => this.piece(id)).join('');
  }
}
