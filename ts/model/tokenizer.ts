/**
 * A Hugging Face tokenizer: tokenizer.json loaded with @huggingface/tokenizers (pure JS, same ids as
 * the Rust tokenizer on Qwen3), and the chat template of tokenizer_config.json rendered with
 * @huggingface/jinja. Thin on purpose: encode/decode, token <-> id, special tokens, chat prompts.
 *
 * Conventions: `encode` adds the post-processor's special tokens by default like HF (Qwen3 adds
 * none); `encodeChat` renders the template and encodes without adding any, as transformers'
 * apply_chat_template(tokenize=True) does. `enableThinking` is passed to the template only when
 * given, so a template's own default ("is defined" checks) still applies.
 *
 * Deliberately not here: changing the vocabulary (special_tokens.ts), truncation/padding/batching,
 * offsets, and any tokenizer that is not described by a tokenizer.json.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { Tokenizer as HfTokenizerImpl } from '@huggingface/tokenizers';
import { TokenizerError } from './errors.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | (string & {});
  content: string;
  /** Qwen3: thinking text of an earlier assistant turn. */
  reasoning_content?: string;
  [key: string]: unknown;
}

export interface ChatTemplateOptions {
  /** Append the assistant header so the model answers next (default false). */
  addGenerationPrompt?: boolean;
  /** Qwen3: false renders an empty think block (no thinking). Passed only when given. */
  enableThinking?: boolean;
  tools?: unknown[];
  /** More template variables, passed as they are. */
  extra?: Record<string, unknown>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A token field of tokenizer_config.json: a string, an AddedToken object {content}, or null. */
function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  return undefined;
}

function pickTemplate(config: Record<string, unknown>): string | undefined {
  const t = config.chat_template;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const named = t.find((x) => isObject(x) && x.name === 'default') ?? t[0];
    if (isObject(named) && typeof named.template === 'string') return named.template;
  }
  return undefined;
}

export class HfTokenizer {
  /** Added tokens (content -> id), special or not, from tokenizer.json `added_tokens`. */
  readonly addedTokens: ReadonlyMap<string, number>;
  /** Added tokens marked `special: true` (content -> id). */
  readonly specialTokens: ReadonlyMap<string, number>;
  /** Largest id + 1 (base vocabulary plus added tokens). */
  readonly vocabSize: number;
  private template: Template | undefined;

  private constructor(
    private readonly impl: HfTokenizerImpl,
    /** tokenizer.json as given (not modified). */
    readonly tokenizerJson: Record<string, unknown>,
    /** tokenizer_config.json as given ({} when there is none). */
    readonly tokenizerConfig: Record<string, unknown>,
  ) {
    const added = new Map<string, number>();
    const special = new Map<string, number>();
    for (const [id, t] of impl.get_added_tokens_decoder()) {
      added.set(t.content, id);
      if (t.special) special.set(t.content, id);
    }
    this.addedTokens = added;
    this.specialTokens = special;
    let max = -1;
    for (const id of impl.get_vocab(true).values()) max = Math.max(max, id);
    this.vocabSize = max + 1;
  }

  /** From parsed tokenizer.json (+ tokenizer_config.json). TokenizerError if the library rejects it. */
  static fromJson(tokenizerJson: Record<string, unknown>, tokenizerConfig: Record<string, unknown> = {}): HfTokenizer {
    if (!isObject(tokenizerJson) || !isObject(tokenizerJson.model)) {
      throw new TokenizerError('tokenizer.json has no "model" object; is this a Hugging Face tokenizer.json?');
    }
    try {
      return new HfTokenizer(new HfTokenizerImpl(tokenizerJson, tokenizerConfig), tokenizerJson, tokenizerConfig);
    } catch (e) {
      throw new TokenizerError(`tokenizer.json could not be loaded: ${(e as Error).message}`);
    }
  }

  /** From the tokenizer files of a loaded HF directory (see hf_dir.ts). */
  static fromFiles(files: { tokenizer?: Record<string, unknown>; tokenizerConfig?: Record<string, unknown> }): HfTokenizer {
    if (!files.tokenizer) throw new TokenizerError('the model directory has no tokenizer.json; copy it from the base model');
    return HfTokenizer.fromJson(files.tokenizer, files.tokenizerConfig ?? {});
  }

  /** Reads tokenizer.json and (when present) tokenizer_config.json from `dir`. */
  static async fromDirectory(dir: string): Promise<HfTokenizer> {
    const read = async (name: string, required: boolean): Promise<Record<string, unknown> | undefined> => {
      let text: string;
      try {
        text = await readFile(join(dir, name), 'utf8');
      } catch (e) {
        if (!required && (e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw new TokenizerError(`${join(dir, name)}: cannot be read: ${(e as Error).message}`);
      }
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (e) {
        throw new TokenizerError(`${join(dir, name)}: is not valid JSON (${(e as Error).message})`);
      }
      if (!isObject(json)) throw new TokenizerError(`${join(dir, name)}: is not a JSON object`);
      return json;
    };
    return HfTokenizer.fromJson(
      (await read('tokenizer.json', true)) as Record<string, unknown>,
      (await read('tokenizer_config.json', false)) ?? {},
    );
  }

  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    return this.impl.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  /** Token strings (byte-level BPE pieces such as 'Ġworld') of `text`, no special tokens added. */
  tokenize(text: string): string[] {
    return this.impl.tokenize(text);
  }

  /** Text of `ids`; RangeError for an id that is not in the vocabulary. */
  decode(ids: readonly number[] | Int32Array, options: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return '';
    const list = Array.from(ids);
    for (const id of list) {
      if (!Number.isInteger(id) || this.impl.id_to_token(id) === undefined) {
        throw new RangeError(`decode: id ${id} is not in the vocabulary (${this.vocabSize} ids)`);
      }
    }
    return this.impl.decode(list, { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  tokenToId(token: string): number | undefined {
    return this.impl.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.impl.id_to_token(id);
  }

  /** A token field of tokenizer_config.json ('eos_token', 'pad_token', 'bos_token', ...) as text and id. */
  configToken(field: string): { text: string; id: number } | undefined {
    const text = tokenText(this.tokenizerConfig[field]);
    const id = text === undefined ? undefined : this.tokenToId(text);
    return text === undefined || id === undefined ? undefined : { text, id };
  }

  get hasChatTemplate(): boolean {
    return pickTemplate(this.tokenizerConfig) !== undefined;
  }

  /** The chat template of tokenizer_config.json rendered for `messages`. TokenizerError if absent or failing. */
  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    if (!this.template) {
      const source = pickTemplate(this.tokenizerConfig);
      if (source === undefined)
        throw new TokenizerError(
          'tokenizer_config.json has no chat_template; use a chat (instruct) tokenizer or write the prompt yourself',
        );
      try {
        this.template = new Template(source);
      } catch (e) {
        throw new TokenizerError(`the chat template of tokenizer_config.json does not parse: ${(e as Error).message}`);
      }
    }
    const context: Record<string, unknown> = {
      messages,
      add_generation_prompt: options.addGenerationPrompt ?? false,
      bos_token: tokenText(this.tokenizerConfig.bos_token) ?? '',
      eos_token: tokenText(this.tokenizerConfig.eos_token) ?? '',
      pad_token: tokenText(this.tokenizerConfig.pad_token) ?? '',
      ...options.extra,
    };
    if (options.tools !== undefined) context.tools = options.tools;
    if (options.enableThinking !== undefined) context.enable_thinking = options.enableThinking;
    try {
      return this.template.render(context);
    } catch (e) {
      throw new TokenizerError(`the chat template failed to render: ${(e as Error).message}`);
    }
  }

  /** Ids of the rendered chat prompt (no special tokens added beyond what the template writes). */
  encodeChat(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): number[] {
    return this.encode(this.applyChatTemplate(messages, options), { addSpecialTokens: false });
  }
}
