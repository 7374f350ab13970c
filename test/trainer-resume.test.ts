/**
 * Kill and resume: `npr train` (the compiled CLI, as a user runs it) is SIGKILLed right after a
 * step's metrics line - while that step's checkpoint is being written - then run again with the
 * same command. The checkpoint left behind is whole, the run resumes from it, and every metric
 * of the steps after it equals an uninterrupted run with the same seed (AdamW moments, data
 * cursor and rollout seeds all restored).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkpointPath } from '../ts/trainer/checkpoint.js';
import type { CurriculumConfig } from '../ts/trainer/config.js';
import { tinyRun } from './fixtures/trainer/tiny.js';

const cli = join(import.meta.dirname, '..', 'dist', 'ts', 'cli', 'main.js');
const STEPS = 6;

function config(paths: { model: string; data: string }, out: string): CurriculumConfig {
  return {
    model: paths.model,
    codec: 'char',
    data: paths.data,
    out,
    seed: 11,
    sampling: { maxNewTokens: 20, kvBlocks: 512, blockTokens: 8 },
    stages: [
      {
        kind: 'format-rl',
        steps: STEPS,
        prompts: 2,
        samples: 3,
        dynamicSamplingBatches: 0,
        saveEvery: 1,
        schedule: { lr: 3e-3, warmupSteps: 1 },
      },
    ],
  };
}

const KEYS = ['step', 'reward', 'accuracy', 'format_valid_rate', 'response_length', 'loss', 'grad_norm', 'lr'] as const;
const metrics = (out: string) =>
  readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>)
    .map((m) => Object.fromEntries(KEYS.map((k) => [k, m[k]])));

describe.skipIf(!existsSync(cli))('npr train: kill and resume', () => {
  it('a SIGKILL mid-run leaves a whole checkpoint and the resumed run reproduces the uninterrupted one', async () => {
    const paths = await tinyRun();
    const straight = join(paths.root, 'straight');
    const killed = join(paths.root, 'killed');
    await writeFile(join(paths.root, 'straight.json'), JSON.stringify(config(paths, straight)));
    await writeFile(join(paths.root, 'killed.json'), JSON.stringify(config(paths, killed)));
    const full = spawnSync(process.execPath, [cli, 'train', '--config', join(paths.root, 'straight.json')], { encoding: 'utf8' });
    expect(full.status, full.stderr).toBe(0);

    // Kill as soon as step 3's metrics line is out: its checkpoint is being written then.
    const child = spawn(process.execPath, [cli, 'train', '--config', join(paths.root, 'killed.json'), '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await new Promise<void>((resolve) => {
      let buf = '';
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        if (/"step":3[,}]/.test(buf)) child.kill('SIGKILL');
      });
      child.on('exit', () => resolve());
    });
    expect(child.signalCode).toBe('SIGKILL');
    const ckpt = checkpointPath(join(killed, 'format-rl.checkpoint'));
    expect(ckpt, 'a whole checkpoint survives the kill').toBeDefined();
    const state = JSON.parse(readFileSync(join(ckpt as string, 'trainer-state.json'), 'utf8'));
    expect(state.step).toBeGreaterThanOrEqual(2);
    expect(state.step).toBeLessThan(STEPS);

    const resumed = spawnSync(process.execPath, [cli, 'train', '--config', join(paths.root, 'killed.json')], { encoding: 'utf8' });
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming at step [23]/);
    expect(metrics(killed)).toEqual(metrics(straight));
    expect(metrics(killed).length).toBe(STEPS);
  });
});
