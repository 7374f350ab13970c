/**
 * Adds the 8 NPR tags as single special tokens and grows the model to match.
 *
 * Tokenizer: each tag becomes an entry of tokenizer.json `added_tokens` (special: true, no
 * strip/normalize), with ids after the current largest id, in NPR_TAGS order; tokenizer_config.json
 * gets the same entries in `added_tokens_decoder` and the tags appended to
 * `additional_special_tokens` (as transformers' add_special_tokens would write them).
 *
 * Model: model.embed_tokens.weight (and lm_head.weight when untied) get max(vocab_size, largest
 * id + 1 rounded up to a multiple of 64) rows, and config.vocab_size follows. The row of each new
 * tag is the mean of the rows of the sub-tokens of the tag's text without angle brackets
 * ("guideline", "/guideline", ... as NPR does), tokenized by the tokenizer as it was before. Padding
 * rows beyond the old rows are zeros (rows no token id ever reaches). Note that real Qwen3
 * checkpoints already have 151,936 rows for 151,669 ids, so the tags land in existing unused rows,
 * which are overwritten, and nothing grows.
 *
 * Idempotent: a tag that is already a special added token whose id has a row is left alone; when
 * all 8 are, the input objects are returned unchanged. Inputs are never mutated.
 *
 * Deliberately not here: other tag sets' semantics (the list is a parameter, nothing more), bf16
 * weights (load as f32 first), and the Model class's device copies.
 */
import type { Qwen3Config } from './config.js';
import { ShapeMismatchError, TokenizerError } from './errors.js';
import type { TokenizerFiles } from './hf_dir.js';
import type { HostTensor } from './tensors.js';
import { HfTokenizer } from './tokenizer.js';

export const NPR_TAGS = ['<guideline>', '</guideline>', '<plan>', '</plan>', '<step>', '</step>', '<takeaway>', '</takeaway>'] as const;
export type NprTag = (typeof NPR_TAGS)[number];
/** Embedding rows are padded to a multiple of this (tensor-core friendly, as HF's pad_to_multiple_of). */
export const EMBEDDING_ROW_MULTIPLE = 64;

export interface TagTokenizerResult {
  /** New objects; the inputs are not modified. */
  tokenizerFiles: TokenizerFiles;
  /** Id of every tag. */
  ids: Map<string, number>;
  /** Tags that were not special added tokens before. */
  added: string[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Adds `tags` to tokenizer.json (+ tokenizer_config.json) as special added tokens. */
export function addTagsToTokenizer(files: TokenizerFiles, tags: readonly string[] = NPR_TAGS): TagTokenizerResult {
  const tj = files.tokenizer;
  if (!tj) throw new TokenizerError('no tokenizer.json to add the NPR tags to; copy it from the base model');
  const model = tj.model;
  const addedTokens = tj.added_tokens ?? [];
  if (!isObject(model) || !isObject(model.vocab) || !Array.isArray(addedTokens)) {
    throw new TokenizerError('tokenizer.json needs a model.vocab object and an added_tokens array to add tokens');
  }
  let maxId = -1;
  for (const id of Object.values(model.vocab)) if (typeof id === 'number') maxId = Math.max(maxId, id);
  const existing = new Map<string, Record<string, unknown>>();
  for (const t of addedTokens) {
    if (isObject(t) && typeof t.content === 'string' && typeof t.id === 'number') {
      existing.set(t.content, t);
      maxId = Math.max(maxId, t.id);
    }
  }
  const ids = new Map<string, number>();
  const newEntries: Record<string, unknown>[] = [];
  for (const tag of tags) {
    const have = existing.get(tag);
    if (have) {
      if (have.special !== true)
        throw new TokenizerError(`tokenizer.json already has '${tag}' as a non-special added token (id ${have.id}); remove it first`);
      ids.set(tag, have.id as number);
      continue;
    }
    if (tag in model.vocab)
      throw new TokenizerError(`tokenizer.json already has '${tag}' as a regular vocabulary token; it cannot be added again`);
    const entry = { id: ++maxId, content: tag, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
    newEntries.push(entry);
    ids.set(tag, entry.id);
  }
  if (newEntries.length === 0) return { tokenizerFiles: files, ids, added: [] };

  const tokenizer = { ...tj, added_tokens: [...addedTokens, ...newEntries] };
  let tokenizerConfig = files.tokenizerConfig;
  if (tokenizerConfig) {
    const decoder = isObject(tokenizerConfig.added_tokens_decoder) ? { ...tokenizerConfig.added_tokens_decoder } : {};
    for (const { id, ...rest } of newEntries) decoder[String(id)] = rest;
    const extra = Array.isArray(tokenizerConfig.additional_special_tokens) ? tokenizerConfig.additional_special_tokens : [];
    const newTags = newEntries.map((e) => e.content as string).filter((c) => !extra.includes(c));
    tokenizerConfig = { ...tokenizerConfig, added_tokens_decoder: decoder, additional_special_tokens: [...extra, ...newTags] };
  }
  return { tokenizerFiles: { tokenizer, tokenizerConfig }, ids, added: newEntries.map((e) => e.content as string) };
}

/** `t` [rows, H] copied into a zero-filled [newRows, H] (rows >= old rows are zeros). */
export function resizeRows(t: HostTensor<'f32'>, newRows: number): HostTensor<'f32'> {
  const [rows, h] = t.shape as [number, number];
  if (newRows === rows) return { dtype: 'f32', shape: [rows, h], data: t.data.slice() };
  const data = new Float32Array(newRows * h); // [newRows, H]
  data.set(newRows > rows ? t.data : t.data.subarray(0, newRows * h));
  return { dtype: 'f32', shape: [newRows, h], data };
}

/** Writes the mean of rows `from` of `t` [rows, H] into row `to` (accumulated in f64). */
export function setRowToMean(t: HostTensor<'f32'>, to: number, from: readonly number[]): void {
  const h = t.shape[1] as number;
  const acc = new Float64Array(h);
  for (const r of from) for (let j = 0; j < h; j++) acc[j] = (acc[j] as number) + (t.data[r * h + j] as number);
  for (let j = 0; j < h; j++) t.data[to * h + j] = (acc[j] as number) / from.length;
}

export interface NprModelParts {
  config: Qwen3Config;
  /** f32 weights as loadHfDirectory returns them. */
  weights: Map<string, HostTensor<'f32'>>;
  tokenizerFiles: TokenizerFiles;
}

export interface AddNprTokensResult extends NprModelParts {
  ids: Map<string, number>;
  /** Tags whose embedding rows were initialised by this call. */
  initialised: string[];
  /** false when everything was already in place (the input objects are returned). */
  changed: boolean;
}

/** Tokenizer, embeddings, untied head and config.vocab_size, all updated for the NPR tags. */
export function addNprSpecialTokens(parts: NprModelParts, tags: readonly string[] = NPR_TAGS): AddNprTokensResult {
  const { config, weights } = parts;
  const names = ['model.embed_tokens.weight', ...(config.tieWordEmbeddings ? [] : ['lm_head.weight'])];
  const mats = names.map((name) => {
    const t = weights.get(name);
    if (t?.dtype !== 'f32') throw new TypeError(`addNprSpecialTokens: weights need '${name}' as an f32 tensor`);
    if (t.shape.length !== 2 || t.shape[0] !== config.vocabSize || t.shape[1] !== config.hiddenSize) {
      throw new ShapeMismatchError(
        'addNprSpecialTokens',
        name,
        [config.vocabSize, config.hiddenSize],
        t.shape,
        'pass the weights that belong to this config',
      );
    }
    return t;
  });
  const stock = HfTokenizer.fromFiles(parts.tokenizerFiles);
  const tok = addTagsToTokenizer(parts.tokenizerFiles, tags);
  const rows = config.vocabSize;
  const needInit = tags.filter((tag) => tok.added.includes(tag) || (tok.ids.get(tag) as number) >= rows);
  if (needInit.length === 0) return { ...parts, ids: tok.ids, initialised: [], changed: false };

  const maxId = Math.max(...tok.ids.values(), stock.vocabSize - 1);
  const newRows = Math.max(rows, Math.ceil((maxId + 1) / EMBEDDING_ROW_MULTIPLE) * EMBEDDING_ROW_MULTIPLE);
  const out = new Map(weights);
  for (const [i, name] of names.entries()) {
    const grown = resizeRows(mats[i] as HostTensor<'f32'>, newRows);
    for (const tag of needInit) {
      const sub = stock.encode(tag.replace(/^</, '').replace(/>$/, ''), { addSpecialTokens: false });
      if (sub.length === 0 || sub.some((id) => id >= rows)) {
        throw new TokenizerError(
          `the text of tag '${tag}' maps to ids ${JSON.stringify(sub)}, not to rows of the old embedding (${rows} rows)`,
        );
      }
      setRowToMean(grown, tok.ids.get(tag) as number, sub);
    }
    out.set(name, grown);
  }
  return {
    config: config.with({ vocabSize: newRows }),
    weights: out,
    tokenizerFiles: tok.tokenizerFiles,
    ids: tok.ids,
    initialised: needInit,
    changed: true,
  };
}
