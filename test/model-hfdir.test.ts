/**
 * Whole Hugging Face directories: a tiny random Qwen3 (Qwen3's real 151,936-row vocabulary and
 * tokenizer files, hidden 64, 2 layers, GQA 4/2, head_dim 16) saved and loaded back bit-exactly,
 * as one file, as shards with an index, and as bf16. Guards against: checkpoints whose tensors do not
 * match config.json loading anyway, a lying index, and saves that leave half-written directories.
 */
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatConfigJson } from '../ts/model/config.js';
import {
  HfDirectoryError,
  MissingTensorError,
  ModelConfigError,
  SafetensorsError,
  ShapeMismatchError,
  UnexpectedTensorError,
} from '../ts/model/errors.js';
import { INDEX_FILE, loadHfDirectory, SINGLE_FILE, saveHfDirectory } from '../ts/model/hf_dir.js';
import { readSafetensorsHeader, writeSafetensors } from '../ts/model/safetensors.js';
import { castFloat, type HostTensor, sameBits, toF32 } from '../ts/model/tensors.js';
import { qwen3TokenizerFiles, randomWeights, tempDir, tinyQwen3Config } from './fixtures/model/tiny-qwen3.js';

function expectSameWeights(a: Map<string, HostTensor>, b: Map<string, HostTensor>): void {
  expect([...a.keys()]).toEqual([...b.keys()]);
  for (const [name, t] of a) expect(sameBits(t, b.get(name) as HostTensor), name).toBe(true);
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: Error) => e,
  );
}

describe('HF model directories', () => {
  let root = '';
  let cleanup: () => Promise<void> = async () => {};
  beforeEach(async () => ({ dir: root, cleanup } = await tempDir('npr-hf-')));
  afterEach(() => cleanup());

  it('saves and reloads a tiny random Qwen3 with the real tokenizer bit-exactly (f32, one file)', async () => {
    const config = tinyQwen3Config();
    const weights = randomWeights(config, 1);
    const tokenizerFiles = await qwen3TokenizerFiles();
    const dir = join(root, 'tiny');
    await saveHfDirectory(dir, { config, weights, tokenizerFiles });
    expect((await readdir(dir)).sort()).toEqual(['config.json', SINGLE_FILE, 'tokenizer.json', 'tokenizer_config.json']);
    expect((await readSafetensorsHeader(join(dir, SINGLE_FILE))).metadata).toEqual({ format: 'pt' });

    const back = await loadHfDirectory(dir);
    expect(back.dir).toBe(dir);
    expect(back.config.toHfJson()).toEqual({ ...config.toHfJson(), torch_dtype: 'float32' });
    expectSameWeights(back.weights, weights);
    expect(back.tokenizerFiles).toEqual(tokenizerFiles);
    expect((await readdir(root)).sort()).toEqual(['tiny']); // no temp directory left beside it
  });

  it('shards by maxShardBytes with an HF index and reloads bit-exactly', async () => {
    const config = tinyQwen3Config();
    const weights = randomWeights(config, 2);
    const dir = join(root, 'sharded');
    await saveHfDirectory(dir, { config, weights, maxShardBytes: 40_000 });
    const files = (await readdir(dir)).sort();
    const shards = files.filter((f) => f.endsWith('.safetensors'));
    expect(shards.length).toBeGreaterThan(2);
    expect(shards[0]).toBe(`model-00001-of-${String(shards.length).padStart(5, '0')}.safetensors`);
    expect(files).not.toContain(SINGLE_FILE);
    const index = JSON.parse(await readFile(join(dir, INDEX_FILE), 'utf8'));
    const total = [...weights.values()].reduce((s, t) => s + t.data.byteLength, 0);
    expect(index.metadata.total_size).toBe(total);
    expect(Object.keys(index.weight_map).sort()).toEqual([...weights.keys()].sort());
    for (const shard of shards) {
      const h = await readSafetensorsHeader(join(dir, shard));
      const bytes = [...h.entries.values()].reduce((s, e) => s + e.end - e.begin, 0);
      expect(bytes <= 40_000 || h.entries.size === 1, shard).toBe(true);
    }
    expectSameWeights((await loadHfDirectory(dir)).weights, weights);
  });

  it('saves bf16 (torch_dtype follows) and loads the rounded values as f32', async () => {
    const config = tinyQwen3Config({ torchDtype: 'float32' });
    const weights = randomWeights(config, 3);
    const dir = join(root, 'bf16');
    await saveHfDirectory(dir, { config, weights, dtype: 'bf16', maxShardBytes: 1_000_000 });
    const back = await loadHfDirectory(dir);
    expect(back.config.torchDtype).toBe('bfloat16');
    const rounded = new Map([...weights].map(([n, t]) => [n, toF32(castFloat(t, 'bf16'))]));
    expectSameWeights(back.weights, rounded);
    const index = JSON.parse(await readFile(join(dir, INDEX_FILE), 'utf8'));
    expect(index.metadata.total_size).toBe([...weights.values()].reduce((s, t) => s + t.data.length * 2, 0));
  });

  it('round-trips an untied head', async () => {
    const config = tinyQwen3Config({ vocabSize: 1000, tieWordEmbeddings: false });
    const weights = randomWeights(config, 4);
    expect(weights.has('lm_head.weight')).toBe(true);
    await saveHfDirectory(join(root, 'untied'), { config, weights });
    const back = await loadHfDirectory(join(root, 'untied'));
    expectSameWeights(back.weights, weights);
    expect(back.tokenizerFiles).toEqual({});
  });

  describe('checkpoints that do not match config.json', () => {
    const config = tinyQwen3Config({ vocabSize: 512 });
    /** A directory with config.json and one model.safetensors holding `tensors`. */
    async function dirWith(tensors: Map<string, HostTensor>, configJson: unknown = config.toHfJson()): Promise<string> {
      const dir = join(root, 'ckpt');
      await rm(dir, { recursive: true, force: true });
      await saveHfDirectory(dir, { config, weights: randomWeights(config, 9) });
      await writeFile(join(dir, 'config.json'), typeof configJson === 'string' ? configJson : JSON.stringify(configJson));
      await writeSafetensors(join(dir, SINGLE_FILE), tensors);
      return dir;
    }

    it('a missing tensor', async () => {
      const w = randomWeights(config, 5);
      w.delete('model.layers.1.mlp.up_proj.weight');
      const err = await rejection(loadHfDirectory(await dirWith(w)));
      expect(err).toBeInstanceOf(MissingTensorError);
      expect(err.message).toMatch(/model\.safetensors: tensor 'model\.layers\.1\.mlp\.up_proj\.weight' is missing \(1 of 24/);
    });

    it('a shape disagreeing with config.json', async () => {
      const err = await rejection(
        loadHfDirectory(await dirWith(randomWeights(config, 5), { ...config.toHfJson(), intermediate_size: 97 })),
      );
      expect(err).toBeInstanceOf(ShapeMismatchError);
      expect(err.message).toMatch(
        /model\.safetensors: tensor 'model\.layers\.0\.mlp\.gate_proj\.weight' has shape \[96, 64\] but config\.json implies \[97, 64\]/,
      );
    });

    it('an unexpected tensor; harmless extras are dropped', async () => {
      const w: Map<string, HostTensor> = randomWeights(config, 5);
      w.set('model.layers.0.self_attn.q_proj.bias', { dtype: 'f32', shape: [64], data: new Float32Array(64) });
      const err = await rejection(loadHfDirectory(await dirWith(w)));
      expect(err).toBeInstanceOf(UnexpectedTensorError);
      expect(err.message).toMatch(/tensor 'model\.layers\.0\.self_attn\.q_proj\.bias' is not a parameter of a Qwen3ForCausalLM/);

      w.delete('model.layers.0.self_attn.q_proj.bias');
      w.set('model.layers.1.self_attn.rotary_emb.inv_freq', { dtype: 'f32', shape: [8], data: new Float32Array(8) });
      w.set('lm_head.weight', { ...(w.get('model.embed_tokens.weight') as HostTensor<'f32'>) }); // tied, equal: accepted
      const back = await loadHfDirectory(await dirWith(w));
      expect(back.weights.has('lm_head.weight')).toBe(false);
      expect(back.weights.size).toBe(24);

      const other = (w.get('model.embed_tokens.weight') as HostTensor<'f32'>).data.slice();
      other[5] = (other[5] as number) + 1;
      w.set('lm_head.weight', { dtype: 'f32', shape: [512, 64], data: other });
      const tied = await rejection(loadHfDirectory(await dirWith(w)));
      expect(tied).toBeInstanceOf(UnexpectedTensorError);
      expect(tied.message).toMatch(/tie_word_embeddings true but 'lm_head\.weight' differs/);
    });

    it('a malformed config.json field, or config.json that is not JSON', async () => {
      const w = randomWeights(config, 5);
      const err = await rejection(loadHfDirectory(await dirWith(w, { ...config.toHfJson(), num_key_value_heads: 3 })));
      expect(err).toBeInstanceOf(ModelConfigError);
      expect(err.message).toMatch(/config\.json: num_attention_heads 4 is not divisible by num_key_value_heads 3/);
      const notJson = await rejection(loadHfDirectory(await dirWith(w, '{"vocab_size": ')));
      expect(notJson).toBeInstanceOf(ModelConfigError);
      expect(notJson.message).toMatch(/config\.json: is not valid JSON/);
    });

    it('a weight stored as integers', async () => {
      const w: Map<string, HostTensor> = randomWeights(config, 5);
      w.set('model.norm.weight', { dtype: 'i32', shape: [64], data: new Int32Array(64) });
      const err = await rejection(loadHfDirectory(await dirWith(w)));
      expect(err).toBeInstanceOf(SafetensorsError);
      expect(err.message).toMatch(/tensor 'model\.norm\.weight' is i32; weights must be F32, BF16, F16 or F64/);
    });

    it('a corrupt safetensors file, missing weights, missing config.json', async () => {
      const dir = await dirWith(randomWeights(config, 5));
      const bytes = await readFile(join(dir, SINGLE_FILE));
      await writeFile(join(dir, SINGLE_FILE), bytes.subarray(0, bytes.length - 10));
      expect(await rejection(loadHfDirectory(dir))).toBeInstanceOf(SafetensorsError);
      await rm(join(dir, SINGLE_FILE));
      await writeFile(join(dir, 'pytorch_model.bin'), 'x');
      const none = await rejection(loadHfDirectory(dir));
      expect(none).toBeInstanceOf(HfDirectoryError);
      expect(none.message).toMatch(
        /has neither model\.safetensors nor model\.safetensors\.index\.json \(pytorch_model\.bin is not supported/,
      );
      await rm(join(dir, 'config.json'));
      expect((await rejection(loadHfDirectory(dir))).message).toMatch(/has no config\.json/);
    });
  });

  describe('a sharded checkpoint whose index lies', () => {
    const config = tinyQwen3Config({ vocabSize: 256 });
    async function sharded(): Promise<{ dir: string; index: { weight_map: Record<string, string> } }> {
      const dir = join(root, 'lies');
      await rm(dir, { recursive: true, force: true });
      await saveHfDirectory(dir, { config, weights: randomWeights(config, 6), maxShardBytes: 20_000 });
      return { dir, index: JSON.parse(await readFile(join(dir, INDEX_FILE), 'utf8')) };
    }

    it('lists a tensor in the wrong shard, outside the directory, or omits one', async () => {
      let { dir, index } = await sharded();
      const name = 'model.layers.0.input_layernorm.weight'; // shares its shard with other tensors
      const right = index.weight_map[name] as string;
      const wrong = Object.values(index.weight_map).find((f) => f !== right) as string;
      await writeFile(join(dir, INDEX_FILE), JSON.stringify({ ...index, weight_map: { ...index.weight_map, [name]: wrong } }));
      const err = await rejection(loadHfDirectory(dir));
      expect(err).toBeInstanceOf(UnexpectedTensorError);
      expect(err.message).toContain(`${right}: tensor '${name}' is in this shard but ${INDEX_FILE} lists it in ${wrong}`);

      ({ dir, index } = await sharded());
      await writeFile(join(dir, INDEX_FILE), JSON.stringify({ weight_map: { ...index.weight_map, [name]: '../model.safetensors' } }));
      expect((await rejection(loadHfDirectory(dir))).message).toContain(`weight_map['${name}'] is "../model.safetensors"`);

      ({ dir, index } = await sharded());
      const { [name]: _, ...rest } = index.weight_map;
      await writeFile(join(dir, INDEX_FILE), JSON.stringify({ weight_map: rest }));
      expect((await rejection(loadHfDirectory(dir))).message).toContain(
        `${right}: tensor '${name}' is in this shard but ${INDEX_FILE} does not list it`,
      );

      ({ dir, index } = await sharded());
      await writeFile(join(dir, INDEX_FILE), JSON.stringify({ weight_map: { ...index.weight_map, 'model.extra': right } }));
      expect(await rejection(loadHfDirectory(dir))).toBeInstanceOf(MissingTensorError);

      await writeFile(join(dir, INDEX_FILE), JSON.stringify({ weight_map: {} }));
      expect((await rejection(loadHfDirectory(dir))).message).toMatch(/has an empty 'weight_map'/);
      await writeFile(join(dir, INDEX_FILE), '{"weight_map": [1]}');
      expect(await rejection(loadHfDirectory(dir))).toBeInstanceOf(HfDirectoryError);
    });
  });

  describe('saving', () => {
    const config = tinyQwen3Config({ vocabSize: 256 });

    it('refuses weights that do not match the config and writes nothing', async () => {
      const w = randomWeights(config, 7);
      w.delete('model.norm.weight');
      const err = await rejection(saveHfDirectory(join(root, 'out'), { config, weights: w }));
      expect(err).toBeInstanceOf(MissingTensorError);
      expect(err.message).toMatch(/saveHfDirectory\(.*out\): tensor 'model\.norm\.weight' is missing/);
      expect(await readdir(root)).toEqual([]);
    });

    it('a save failing half way leaves neither the target nor a temp directory', async () => {
      const w: Map<string, HostTensor> = randomWeights(config, 7);
      w.set('model.norm.weight', { dtype: 'f32', shape: [64], data: new Float32Array(3) }); // lies about its length
      await expect(saveHfDirectory(join(root, 'out'), { config, weights: w, maxShardBytes: 10_000 })).rejects.toThrow(
        /needs 64 elements, data has 3/,
      );
      expect(await readdir(root)).toEqual([]);
    });

    it('replaces an existing directory only with overwrite', async () => {
      const dir = join(root, 'out');
      await saveHfDirectory(dir, { config, weights: randomWeights(config, 1) });
      const second = randomWeights(config, 2);
      const err = await rejection(saveHfDirectory(dir, { config, weights: second }));
      expect(err).toBeInstanceOf(HfDirectoryError);
      expect(err.message).toMatch(/already exists and is not empty; choose another directory or pass overwrite: true/);
      expectSameWeights((await loadHfDirectory(dir)).weights, randomWeights(config, 1));
      await saveHfDirectory(dir, { config, weights: second, overwrite: true, maxShardBytes: 30_000 });
      expectSameWeights((await loadHfDirectory(dir)).weights, second);
      expect(await readdir(dir)).not.toContain(SINGLE_FILE);
      expect(await readdir(root)).toEqual(['out']);
      expect((await stat(join(dir, 'config.json'))).isFile()).toBe(true);
      expect(await readFile(join(dir, 'config.json'), 'utf8')).toBe(formatConfigJson(config.with({ torchDtype: 'float32' })));
    });
  });
});
