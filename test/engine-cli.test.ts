/**
 * `npr generate` as a user runs it (the compiled dist/; `npx tsc -p tsconfig.json` first), on a
 * tiny Qwen3 directory whose tokenizer has the NPR tags as single tokens: --json prints a
 * Rollout that respects the budget, the summary names tokens, branches and forks, and a bad
 * option is a one-line error with exit code 1.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { native } from '../ts/bindings/loader.js';
import { saveHfDirectory } from '../ts/model/hf_dir.js';
import { addTagsToTokenizer } from '../ts/model/special_tokens.js';
import { qwen3TokenizerFiles, randomWeights, tempDir, tinyQwen3Config } from './fixtures/model/tiny-qwen3.js';

const cli = join(import.meta.dirname, '..', 'dist', 'ts', 'cli', 'main.js');
let root = '';
let dir = '';

beforeAll(async () => {
  root = (await tempDir('npr-generate-')).dir;
  dir = join(root, 'qwen3-tiny-tagged');
  const config = tinyQwen3Config({ numHiddenLayers: 1 });
  const files = addTagsToTokenizer(await qwen3TokenizerFiles()).tokenizerFiles;
  await saveHfDirectory(dir, { config, weights: randomWeights(config, 5), tokenizerFiles: files, dtype: 'bf16' });
});
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

const run = (...args: string[]) => execFileSync(process.execPath, [cli, 'generate', '--model', dir, ...args], { encoding: 'utf8' });

describe('npr generate', () => {
  it('--json prints the Rollout within the budget', () => {
    const r = JSON.parse(run('--prompt', 'What is 1+2?', '--max-new-tokens', '12', '--seed', '4', '--json'));
    expect(r.generatedTokens).toBeLessThanOrEqual(12);
    expect(r.tokens.length).toBe(r.promptLength + r.generatedTokens);
    expect(r.positions).toHaveLength(r.tokens.length);
    expect(['stop', 'budget']).toContain(r.finishReason);
    expect(r.branches[0]).toMatchObject({ id: 0, key: '', tokens: r.generatedTokens });
    // The same seed gives the same rollout; AR mode on a model that does not fork is the same tokens.
    expect(JSON.parse(run('--prompt', 'What is 1+2?', '--max-new-tokens', '12', '--seed', '4', '--json')).tokens).toEqual(r.tokens);
    expect(JSON.parse(run('--prompt', 'What is 1+2?', '--max-new-tokens', '12', '--seed', '4', '--mode', 'ar', '--json')).tokens).toEqual(
      r.tokens,
    );
  });

  it('prints the text and a summary, and names bad options', () => {
    expect(run('--prompt', 'hi', '--max-new-tokens', '6')).toMatch(
      /\n6 tokens, 1 branches, 0 forks, finish budget, [0-9.]+ s, [0-9.]+ tokens\/s\n$/,
    );
    const bad = spawnSync(process.execPath, [cli, 'generate', '--model', dir, '--prompt', 'x', '--mode', 'wide'], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/--mode must be 'parallel' or 'ar'/);
    const gpu = spawnSync(process.execPath, [cli, 'generate', '--model', dir, '--prompt', 'x', '--backend', 'gpu'], { encoding: 'utf8' });
    expect(gpu.status).toBe(1);
    expect(gpu.stderr).toMatch(/--backend must be 'cpu', 'cuda' or 'auto'/);
  });

  it('--backend auto runs where the addon says (the CPU here, without a device) with the same tokens', () => {
    const args = ['--prompt', 'What is 1+2?', '--max-new-tokens', '8', '--seed', '2', '--json'];
    const cpu = JSON.parse(run(...args, '--backend', 'cpu'));
    if (native().backends().cuda.devices === 0) expect(JSON.parse(run(...args, '--backend', 'auto')).tokens).toEqual(cpu.tokens);
    else expect(JSON.parse(run(...args, '--backend', 'auto')).generatedTokens).toBeLessThanOrEqual(8);
  });
});
