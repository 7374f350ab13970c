/**
 * A user's-style Qwen3 directory: the real Qwen3 tokenizer (vocab 151,936) with a tiny random
 * model, saved as Hugging Face files. It must load, run forward and backward, save and reload
 * identically, and `npr score` must report the same logprobs as the library.
 */
import { execFileSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { causalBatch } from '../ts/model/batch.js';
import { saveHfDirectory } from '../ts/model/hf_dir.js';
import { Model } from '../ts/model/model.js';
import { HfTokenizer } from '../ts/model/tokenizer.js';
import { qwen3TokenizerFiles, randomWeights, tempDir, tinyQwen3Config } from './fixtures/model/tiny-qwen3.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function userDirectory(): Promise<string> {
  const tmp = await tempDir();
  dirs.push(tmp.dir);
  const dir = join(tmp.dir, 'qwen3-tiny');
  const config = tinyQwen3Config();
  const weights = randomWeights(config, 7);
  for (const [, t] of weights) for (let i = 0; i < t.data.length; i++) (t.data as Float32Array)[i] *= 0.1;
  await saveHfDirectory(dir, { config, weights, tokenizerFiles: await qwen3TokenizerFiles(), dtype: 'bf16' });
  return dir;
}

describe('a Hugging Face Qwen3 directory with the real tokenizer', () => {
  it('loads, runs forward and backward, saves and reloads identically', async () => {
    const dir = await userDirectory();
    const model = await Model.load(dir);
    expect(model.config.vocabSize).toBe(151936);
    const tokenizer = HfTokenizer.fromFiles(model.tokenizerFiles);
    const ids = tokenizer.encode('Native parallel reasoning: plan, branch, merge.');
    const batch = causalBatch([ids, ids.slice(0, 5)]);
    const { logprob } = await model.forward(batch);
    for (let t = 0; t < logprob.length; t++) {
      if ((batch.prev[t] as number) < 0) expect(logprob[t]).toBe(0);
      else expect(logprob[t]).toBeLessThan(0);
    }
    model.zeroGrad();
    await model.backward(new Float32Array(logprob.length).fill(-1));
    expect(model.getGrad('model.embed_tokens.weight').some((g) => g !== 0)).toBe(true);

    const copy = join(dir, '..', 'saved');
    await model.save(copy);
    const again = await Model.load(copy);
    // bit-exact: compare bytes (a deep toEqual over 9.7M embedding floats takes minutes)
    const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    for (const name of model.paramNames()) expect(bytes(again.getParam(name)).equals(bytes(model.getParam(name))), name).toBe(true);
    expect(bytes((await again.forward(batch)).logprob).equals(bytes(logprob))).toBe(true);
  });

  it('npr score prints the same logprobs as the library', async () => {
    const dir = await userDirectory();
    const model = await Model.load(dir);
    const text = 'Two plus two is four.';
    const ids = HfTokenizer.fromFiles(model.tokenizerFiles).encode(text);
    const { logprob } = await model.forward(causalBatch([ids]));
    const cli = join(import.meta.dirname, '..', 'dist', 'ts', 'cli', 'main.js');
    const out = JSON.parse(
      execFileSync(process.execPath, [cli, 'score', '--model', dir, '--text', text, '--json'], { encoding: 'utf8' }),
    ) as {
      tokens: number[];
      logprobs: (number | null)[];
    };
    expect(out.tokens).toEqual(ids);
    expect(out.logprobs[0]).toBeNull();
    for (let t = 1; t < ids.length; t++) expect(out.logprobs[t]).toBeCloseTo(logprob[t] as number, 6);
    const byIds = JSON.parse(
      execFileSync(process.execPath, [cli, 'score', '--model', dir, '--ids', ids.join(','), '--json'], { encoding: 'utf8' }),
    ) as { logprobs: (number | null)[] };
    expect(byIds.logprobs).toEqual(out.logprobs);
  });
});
