/**
 * Hugging Face Qwen3 model directories: config.json + model.safetensors (or shards listed in
 * model.safetensors.index.json `weight_map`) + tokenizer.json / tokenizer_config.json.
 *
 * Loading checks the tensor names and shapes in the safetensors headers against what config.json
 * implies before reading any weight: a missing tensor is a MissingTensorError, a wrong shape a
 * ShapeMismatchError, an extra tensor an UnexpectedTensorError, each naming the file. Known harmless
 * extras are accepted and dropped: `lm_head.weight` in a checkpoint with tied embeddings when it
 * equals `model.embed_tokens.weight` bit for bit (some exporters write both), and the
 * `rotary_emb.inv_freq` buffers older exporters saved. Weights come back as f32.
 *
 * Saving writes everything into a temp directory beside the target, then renames it into place,
 * so a crash never leaves a half-written model; `maxShardBytes` (tensor bytes per shard, as HF
 * counts them; default 5 GB) decides between one model.safetensors and HF-named shards + index.
 * Every safetensors file carries `__metadata__ {format: 'pt'}`, which transformers requires.
 *
 * Deliberately not here: pytorch_model.bin, GGUF, other architectures, lazy/mmapped weights.
 */
import { mkdir, mkdtemp, open, readFile, rename, rm, rmdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { expectedParameters, formatConfigJson, Qwen3Config } from './config.js';
import {
  HfDirectoryError,
  MissingTensorError,
  ModelConfigError,
  SafetensorsError,
  ShapeMismatchError,
  TokenizerError,
  UnexpectedTensorError,
} from './errors.js';
import { SafetensorsReader, storedBytes, writeSafetensors } from './safetensors.js';
import { type HostTensor, isFloatDType, sameBits, toF32 } from './tensors.js';

export const CONFIG_FILE = 'config.json';
export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';
export const TOKENIZER_FILE = 'tokenizer.json';
export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';
/** HF's default max_shard_size ("5GB"). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

/** The tokenizer files of a directory as parsed JSON; a field is absent when its file is. */
export interface TokenizerFiles {
  /** tokenizer.json */
  tokenizer?: Record<string, unknown>;
  /** tokenizer_config.json (holds chat_template) */
  tokenizerConfig?: Record<string, unknown>;
}

export interface HfModelDirectory {
  dir: string;
  config: Qwen3Config;
  /** Every parameter of expectedParameters(config), in that order, as f32 [shape from the config]. */
  weights: Map<string, HostTensor<'f32'>>;
  tokenizerFiles: TokenizerFiles;
}

export interface LoadHfOptions {
  /** Dtype of the returned weights; only 'f32' for now. */
  dtype?: 'f32';
}

export interface SaveHfOptions {
  config: Qwen3Config;
  /** Float tensors (f32/bf16/f16) named and shaped as expectedParameters(config) says. */
  weights: Map<string, HostTensor>;
  tokenizerFiles?: TokenizerFiles;
  /** Stored dtype of the weights (config.json torch_dtype follows). Default 'f32'. */
  dtype?: 'f32' | 'bf16';
  /** Most tensor bytes per safetensors file before sharding. Default 5 GB. */
  maxShardBytes?: number;
  /** Replace `dir` when it exists and is not empty. Default false: HfDirectoryError instead. */
  overwrite?: boolean;
}

const HARMLESS = /^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/;

/**
 * Checks names and shapes against the config. `fileOf(name)` names the file a tensor is (or would
 * be) in, for messages. Returns the harmless extras to drop; `lm_head.weight` of a tied config is
 * among them and must still be compared with the embedding by the caller.
 */
export function checkWeightShapes(config: Qwen3Config, shapes: Map<string, readonly number[]>, fileOf: (name: string) => string): string[] {
  const expected = expectedParameters(config);
  const missing = expected.filter((p) => !shapes.has(p.name));
  const first = missing[0];
  if (first) {
    const list = missing.slice(0, 5).map((p) => `'${p.name}'`);
    throw new MissingTensorError(
      fileOf(first.name),
      first.name,
      `tensor '${first.name}' is missing (${missing.length} of ${expected.length} expected tensors missing: ${list.join(', ')}${missing.length > 5 ? ', ...' : ''}); ` +
        'the weights do not match config.json (num_hidden_layers, tie_word_embeddings?)',
    );
  }
  for (const p of expected) {
    const actual = shapes.get(p.name) as readonly number[];
    if (actual.length !== p.shape.length || actual.some((d, i) => d !== p.shape[i])) {
      throw new ShapeMismatchError(
        fileOf(p.name),
        p.name,
        p.shape,
        actual,
        'config.json and the weights disagree; fix config.json or use the matching weights',
      );
    }
  }
  const known = new Set(expected.map((p) => p.name));
  const drop: string[] = [];
  for (const [name, shape] of shapes) {
    if (known.has(name)) continue;
    const tiedHead =
      name === 'lm_head.weight' && config.tieWordEmbeddings && shape[0] === config.vocabSize && shape[1] === config.hiddenSize;
    if (tiedHead || HARMLESS.test(name)) {
      drop.push(name);
      continue;
    }
    throw new UnexpectedTensorError(
      fileOf(name),
      name,
      `tensor '${name}' is not a parameter of a Qwen3ForCausalLM with this config.json; remove it or fix config.json`,
    );
  }
  return drop;
}

function tiedHeadError(file: string): UnexpectedTensorError {
  return new UnexpectedTensorError(
    file,
    'lm_head.weight',
    "config.json has tie_word_embeddings true but 'lm_head.weight' differs from 'model.embed_tokens.weight'; set tie_word_embeddings to false if the head is separate",
  );
}

async function readJson(file: string, onBad: (message: string) => Error): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw onBad(`cannot be read: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw onBad(`is not valid JSON (${(e as Error).message})`);
  }
}

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

async function readTokenizerFiles(dir: string): Promise<TokenizerFiles> {
  const out: TokenizerFiles = {};
  for (const [key, name] of [
    ['tokenizer', TOKENIZER_FILE],
    ['tokenizerConfig', TOKENIZER_CONFIG_FILE],
  ] as const) {
    const file = join(dir, name);
    if (!(await exists(file))) continue;
    const json = await readJson(file, (m) => new TokenizerError(`${file}: ${m}`));
    if (!isObject(json)) throw new TokenizerError(`${file}: is not a JSON object`);
    out[key] = json;
  }
  return out;
}

/** name -> shard file (basename inside dir) from the index, or an empty map for the single file. */
async function weightFiles(dir: string): Promise<{ map: Map<string, string>; sharded: boolean; label: string }> {
  const index = join(dir, INDEX_FILE);
  if (await exists(index)) {
    const json = await readJson(index, (m) => new HfDirectoryError(index, m));
    const wm = isObject(json) ? json.weight_map : undefined;
    if (!isObject(wm)) throw new HfDirectoryError(index, "has no 'weight_map' object {tensor name: shard file}");
    const map = new Map<string, string>();
    for (const [name, file] of Object.entries(wm)) {
      if (typeof file !== 'string' || file !== basename(file) || file === '..' || file === '.' || file.includes('\\')) {
        throw new HfDirectoryError(index, `weight_map['${name}'] is ${JSON.stringify(file)}; expected a file name inside the directory`);
      }
      map.set(name, file);
    }
    if (map.size === 0) throw new HfDirectoryError(index, "has an empty 'weight_map'");
    return { map, sharded: true, label: index };
  }
  const single = join(dir, SINGLE_FILE);
  if (await exists(single)) return { map: new Map(), sharded: false, label: single };
  const hint = (await exists(join(dir, 'pytorch_model.bin'))) ? ' (pytorch_model.bin is not supported: convert it to safetensors)' : '';
  throw new HfDirectoryError(dir, `has neither ${SINGLE_FILE} nor ${INDEX_FILE}${hint}`);
}

/** Loads a Qwen3 HF directory; weights converted to f32 and checked against config.json. */
export async function loadHfDirectory(dir: string, options: LoadHfOptions = {}): Promise<HfModelDirectory> {
  if ((options.dtype ?? 'f32') !== 'f32') throw new TypeError(`loadHfDirectory: dtype must be 'f32', got '${options.dtype}'`);
  const configFile = join(dir, CONFIG_FILE);
  if (!(await exists(configFile))) throw new HfDirectoryError(dir, `has no ${CONFIG_FILE}; is this a Hugging Face model directory?`);
  const config = Qwen3Config.fromHfJson(await readJson(configFile, (m) => new ModelConfigError(configFile, m)), configFile);

  const { map, sharded, label } = await weightFiles(dir);
  const readers = new Map<string, SafetensorsReader>();
  try {
    const files = sharded ? [...new Set(map.values())] : [SINGLE_FILE];
    for (const f of files) readers.set(f, await SafetensorsReader.open(join(dir, f)));
    const fileOf = new Map<string, string>();
    const shapes = new Map<string, readonly number[]>();
    for (const [f, r] of readers) {
      for (const [name, e] of r.header.entries) {
        const listed = sharded ? map.get(name) : f;
        if (listed !== f) {
          throw new UnexpectedTensorError(
            r.file,
            name,
            `tensor '${name}' is in this shard but ${INDEX_FILE} ${listed ? `lists it in ${listed}` : 'does not list it'}`,
          );
        }
        fileOf.set(name, r.file);
        shapes.set(name, e.shape);
      }
    }
    for (const [name, f] of map) {
      if (!shapes.has(name))
        throw new MissingTensorError(join(dir, f), name, `${INDEX_FILE} lists tensor '${name}' in this shard, but it is not there`);
    }
    const drop = checkWeightShapes(config, shapes, (name) => fileOf.get(name) ?? label);
    const read = async (name: string) => {
      const file = fileOf.get(name) as string;
      const t = await (readers.get(basename(file)) as SafetensorsReader).read(name);
      if (!isFloatDType(t.dtype))
        throw new SafetensorsError(file, `tensor '${name}' is ${t.dtype}; weights must be F32, BF16, F16 or F64`, name);
      return t;
    };
    const weights = new Map<string, HostTensor<'f32'>>();
    for (const p of expectedParameters(config)) weights.set(p.name, toF32(await read(p.name)));
    if (drop.includes('lm_head.weight')) {
      const head = toF32(await read('lm_head.weight'));
      if (!sameBits(head, weights.get('model.embed_tokens.weight') as HostTensor))
        throw tiedHeadError(fileOf.get('lm_head.weight') as string);
    }
    return { dir, config, weights, tokenizerFiles: await readTokenizerFiles(dir) };
  } finally {
    for (const r of readers.values()) await r.close();
  }
}

async function writeDurable(file: string, text: string): Promise<void> {
  const fh = await open(file, 'wx');
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Splits names (in order) into shards of at most maxBytes each (a bigger tensor gets a shard of its own). */
function planShards(names: string[], bytesOf: (name: string) => number, maxBytes: number): string[][] {
  const shards: string[][] = [];
  let current: string[] = [];
  let size = 0;
  for (const name of names) {
    const b = bytesOf(name);
    if (current.length > 0 && size + b > maxBytes) {
      shards.push(current);
      current = [];
      size = 0;
    }
    current.push(name);
    size += b;
  }
  if (current.length > 0) shards.push(current);
  return shards;
}

/**
 * Moves the finished temp directory to `target`. An empty `target` directory is replaced; a full
 * one only with `overwrite` (renamed aside, the new one renamed in, the old one removed: a crash
 * in between leaves both complete directories beside each other, never a half-written one).
 */
async function moveIntoPlace(tmp: string, target: string, overwrite: boolean): Promise<void> {
  if (!(await exists(target))) return rename(tmp, target);
  const removedEmpty = await rmdir(target).then(
    () => true, // rmdir removes only an empty directory
    () => false,
  );
  if (removedEmpty) return rename(tmp, target);
  if (!overwrite) throw new HfDirectoryError(target, 'already exists and is not empty; choose another directory or pass overwrite: true');
  const old = `${tmp}.old`;
  await rename(target, old);
  await rename(tmp, target);
  await rm(old, { recursive: true, force: true });
}

/**
 * Writes a Qwen3 HF directory atomically (temp directory + rename). Weights are checked against
 * the config exactly as loading checks them; the tied `lm_head.weight`, if given, must equal the
 * embedding and is not written.
 */
export async function saveHfDirectory(dir: string, options: SaveHfOptions): Promise<void> {
  const { config, weights, tokenizerFiles = {}, dtype = 'f32', maxShardBytes = DEFAULT_MAX_SHARD_BYTES, overwrite = false } = options;
  if (!(config instanceof Qwen3Config)) throw new TypeError('saveHfDirectory: options.config must be a Qwen3Config');
  if (dtype !== 'f32' && dtype !== 'bf16') throw new TypeError(`saveHfDirectory: dtype must be 'f32' or 'bf16', got '${dtype}'`);
  if (!(maxShardBytes > 0)) throw new RangeError(`saveHfDirectory: maxShardBytes must be positive, got ${maxShardBytes}`);
  const target = resolve(dir);
  const label = `saveHfDirectory(${target})`;
  const shapes = new Map<string, readonly number[]>([...weights].map(([n, t]) => [n, t.shape]));
  const drop = checkWeightShapes(config, shapes, () => label);
  for (const [name, t] of weights) {
    if (!isFloatDType(t.dtype)) throw new TypeError(`${label}: tensor '${name}' is ${t.dtype}; weights must be float tensors`);
  }
  if (drop.includes('lm_head.weight')) {
    const embed = toF32(weights.get('model.embed_tokens.weight') as HostTensor);
    if (!sameBits(toF32(weights.get('lm_head.weight') as HostTensor), embed)) throw tiedHeadError(label);
  }
  const names = expectedParameters(config).map((p) => p.name);
  const bytesOf = (name: string) => storedBytes(weights.get(name) as HostTensor, dtype);

  await mkdir(dirname(target), { recursive: true });
  const tmp = await mkdtemp(join(dirname(target), `.${basename(target)}.tmp-`));
  try {
    const stored = config.with({ torchDtype: dtype === 'bf16' ? 'bfloat16' : 'float32' });
    await writeDurable(join(tmp, CONFIG_FILE), formatConfigJson(stored));
    const shards = planShards(names, bytesOf, maxShardBytes);
    const metadata = { format: 'pt' };
    const entries = (list: string[]) => list.map((n) => [n, weights.get(n) as HostTensor] as [string, HostTensor]);
    if (shards.length <= 1) {
      await writeSafetensors(join(tmp, SINGLE_FILE), entries(shards[0] ?? []), { metadata, dtype });
    } else {
      const weightMap: Record<string, string> = {};
      const pad = (i: number) => String(i).padStart(5, '0');
      for (const [i, list] of shards.entries()) {
        const file = `model-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`;
        await writeSafetensors(join(tmp, file), entries(list), { metadata, dtype });
        for (const n of list) weightMap[n] = file;
      }
      const sortedMap: Record<string, string> = {};
      for (const n of Object.keys(weightMap).sort()) sortedMap[n] = weightMap[n] as string;
      const totalSize = names.reduce((s, n) => s + bytesOf(n), 0);
      const index = { metadata: { total_size: totalSize }, weight_map: sortedMap };
      await writeDurable(join(tmp, INDEX_FILE), `${JSON.stringify(index, null, 2)}\n`);
    }
    if (tokenizerFiles.tokenizer) await writeDurable(join(tmp, TOKENIZER_FILE), `${JSON.stringify(tokenizerFiles.tokenizer, null, 2)}\n`);
    if (tokenizerFiles.tokenizerConfig) {
      await writeDurable(join(tmp, TOKENIZER_CONFIG_FILE), `${JSON.stringify(tokenizerFiles.tokenizerConfig, null, 2)}\n`);
    }
    await moveIntoPlace(tmp, target, overwrite);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}
