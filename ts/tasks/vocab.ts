/**
 * The demo's small vocabulary as a Hugging Face tokenizer.json (plus tokenizer_config.json with
 * a chat template), so the tiny model is loaded by exactly the code that loads a real Qwen3
 * tokenizer. Layout: the model is a BPE with single characters and no merges (every character
 * is one token); the task words are added (non-special) tokens so each is one token; the chat
 * markers and the eight NPR tags are special added tokens. The `Fuse` decoder joins pieces.
 *
 * Deliberately not here: the tasks' text (families.ts) - only the words they use.
 */
import { NPR_TAGS } from '../model/special_tokens.js';

/** Single-character tokens, in id order after the specials. */
export const TINY_CHARS = '0123456789abcdefghijklmnopqrstuvwxyz :=\n{}\\()+-.,?/';
/** Words the task templates and the chat template use, one token each. */
export const TINY_WORDS = ['fib', 'ramp', 'hop', 'largest', 'smallest', 'choose', 'parallel', '\\boxed{', 'user', 'assistant'] as const;
export const TINY_SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>', ...NPR_TAGS] as const;

const CHAT_TEMPLATE =
  "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export interface TinyTokenizerFiles {
  tokenizer: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  /** Largest id + 1. */
  size: number;
}

export function tinyTokenizerFiles(): TinyTokenizerFiles {
  const added: Record<string, unknown>[] = [];
  let id = 0;
  for (const s of TINY_SPECIALS)
    added.push({ id: id++, content: s, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const vocab: Record<string, number> = {};
  for (const s of TINY_SPECIALS) vocab[s] = vocab[s] ?? (added.find((a) => a.content === s)?.id as number);
  for (const c of TINY_CHARS) vocab[c] = id++;
  for (const w of TINY_WORDS) {
    added.push({ id, content: w, single_word: false, lstrip: false, rstrip: false, normalized: false, special: false });
    vocab[w] = id++;
  }
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: { type: 'Fuse' },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
  const tokenizerConfig = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    model_max_length: 4096,
    eos_token: '<|im_end|>',
    pad_token: '<|endoftext|>',
    bos_token: null,
    chat_template: CHAT_TEMPLATE,
  };
  return { tokenizer, tokenizerConfig, size: id };
}
