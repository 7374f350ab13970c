/**
 * The curriculum end to end on a tiny random model: every kind of stage runs (format RL,
 * rejection sampling, parallel SFT, PAPO, the SR baseline), writes its output with the resolved
 * configuration beside it, and the metrics are one finite JSONL line per step; a finished run
 * is skipped on a second call; bad data lines are reported, not used; an AbortSignal stops the
 * run with the checkpoint whole.
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Model } from '../ts/model/model.js';
import { checkpointPath } from '../ts/trainer/checkpoint.js';
import { resolveCurriculum } from '../ts/trainer/config.js';
import { TrainingAborted } from '../ts/trainer/context.js';
import { Curriculum } from '../ts/trainer/curriculum.js';
import { parseProblems } from '../ts/trainer/data.js';
import { tinyCurriculum, tinyRun } from './fixtures/trainer/tiny.js';

describe('curriculum', () => {
  it('runs format RL, rejection sampling, parallel SFT, PAPO and SR end to end', async () => {
    const paths = await tinyRun();
    const run = new Curriculum(tinyCurriculum(paths));
    const steps: Record<string, unknown>[] = [];
    run.on('step', (m) => steps.push(m));
    const outputs = await run.run();
    expect(outputs.map((o) => o.stage)).toEqual(['format-rl', 'rejection', 'sft', 'papo', 'sr']);
    for (const o of outputs) {
      expect(existsSync(join(o.dir, 'done.json'))).toBe(true);
      expect(existsSync(join(o.dir, 'curriculum.resolved.json'))).toBe(true);
    }
    for (const name of ['format-rl', 'sft', 'papo', 'sr']) {
      const m = await Model.load(run.outputDir(name));
      expect(m.paramCount).toBeGreaterThan(0);
    }
    expect(existsSync(join(run.outputDir('rejection'), 'stats.json'))).toBe(true);
    const lines = readFileSync(join(paths.root, 'run', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.length).toBe(steps.length);
    expect(lines.filter((l) => l.stage === 'format-rl').length).toBe(2);
    expect(lines.filter((l) => l.stage === 'papo').length).toBe(2);
    for (const l of lines) for (const v of Object.values(l)) if (typeof v === 'number') expect(Number.isFinite(v)).toBe(true);
    const rl = lines.find((l) => l.stage === 'format-rl' && l.loss !== undefined);
    expect(rl, 'at least one format-RL step updated the model').toBeDefined();
    const resolved = JSON.parse(readFileSync(join(run.outputDir('papo'), 'curriculum.resolved.json'), 'utf8'));
    expect(resolved.stage.loss).toMatchObject({ kind: 'papo', epsLow: 0.2, clipC: 10 });
    expect(resolved.stage.optimizer).toMatchObject({ weightDecay: 0.1, clipNorm: 1 });
    // A finished run is not redone.
    const again: unknown[] = [];
    const second = new Curriculum(tinyCurriculum(paths));
    second.on('step', (m) => again.push(m));
    await second.run();
    expect(again).toEqual([]);
  });

  it('resolves deterministic to true unless told otherwise, and names a value that is not a boolean', () => {
    const base = { model: 'm', data: 'd.jsonl', out: 'o', stages: [{ kind: 'sft' as const, data: 'x' }] };
    expect(resolveCurriculum(base).deterministic).toBe(true);
    expect(resolveCurriculum({ ...base, deterministic: false }).deterministic).toBe(false);
    expect(() => resolveCurriculum({ ...base, deterministic: 'no' as never })).toThrow(
      /curriculum\.deterministic must be true or false \(got "no"\)/,
    );
  });

  it("resolves attentionKernels to 'wgmma' unless told otherwise, and names a value it does not know", () => {
    const base = { model: 'm', data: 'd.jsonl', out: 'o', stages: [{ kind: 'sft' as const, data: 'x' }] };
    expect(resolveCurriculum(base).attentionKernels).toBe('wgmma');
    expect(resolveCurriculum({ ...base, attentionKernels: 'wgmma-k128' }).attentionKernels).toBe('wgmma-k128');
    expect(() => resolveCurriculum({ ...base, attentionKernels: 'flash' as never })).toThrow(
      /curriculum\.attentionKernels must be mma, wgmma, wgmma-64, wgmma-cp, wgmma-k128 \(got "flash"\)/,
    );
  });

  it('reports malformed data lines and missing answers, and uses the rest', () => {
    const { problems, skipped } = parseProblems(
      '{"question":"q: 1+1=?","answer":"2"}\nnot json\n{"question":"q"}\n\n{"question":"x","answer":3}\n',
      'd.jsonl',
    );
    expect(problems.map((p) => p.answer)).toEqual(['2', '3']);
    expect(skipped).toEqual([expect.stringMatching(/d.jsonl:2: not valid JSON/), expect.stringMatching(/d.jsonl:3: no "answer"/)]);
  });

  it('an AbortSignal stops between steps and leaves the last checkpoint whole', async () => {
    const paths = await tinyRun();
    const cfg = tinyCurriculum(paths);
    cfg.stages = [{ kind: 'format-rl', steps: 5, prompts: 2, samples: 2, saveEvery: 1, dynamicSamplingBatches: 0 }];
    const run = new Curriculum(cfg);
    const ac = new AbortController();
    run.on('checkpoint', (e) => {
      if (e.step === 2) ac.abort();
    });
    await expect(run.run({ signal: ac.signal })).rejects.toBeInstanceOf(TrainingAborted);
    const dir = checkpointPath(`${run.outputDir('format-rl')}.checkpoint`);
    expect(dir).toBeDefined();
    expect(JSON.parse(readFileSync(join(dir as string, 'trainer-state.json'), 'utf8')).step).toBe(2);
    await writeFile(join(paths.root, 'touched'), '');
  });
});
