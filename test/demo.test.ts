/**
 * `npm start`'s plumbing on the shipped tiny base, as the `--quick` miniature: every stage runs
 * and leaves a model that loads, the held-out split never meets the training prompts, and the
 * report directory holds summary.json (every model, every figure, finite), metrics.jsonl (one
 * finite line per step of every stage), report.html and its charts. Quality figures belong to
 * the full run (README), not to this test. Also: `npr generate` on the shipped models.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type DemoSummary, runDemo } from '../ts/demo/demo.js';
import { Progress } from '../ts/demo/progress.js';
import { SHIPPED_BASE, SHIPPED_NPR } from '../ts/demo/settings.js';
import { MODEL_FIGURES } from '../ts/eval/report/index.js';
import { Model } from '../ts/model/model.js';
import { splitOf } from '../ts/tasks/split.js';

const FIGURES: readonly string[] = MODEL_FIGURES;

describe('npr demo --quick', () => {
  it('runs every stage from the shipped base and writes a complete report', async () => {
    const out = mkdtempSync(join(tmpdir(), 'npr-demo-'));
    const lines: string[] = [];
    const sink = { isTTY: false, write: (s: string) => lines.push(s) } as unknown as NodeJS.WriteStream;
    const summary: DemoSummary = await runDemo({ quick: true, out, seed: 3 }, new Progress(sink));
    for (const key of ['base', 'npr_zero', 'npr_beta', 'sr', 'npr'] as const) {
      const m = summary.models[key] as unknown as Record<string, number>;
      for (const f of FIGURES) expect(Number.isFinite(m[f]), `${key}.${f} = ${m[f]}`).toBe(true);
      for (const f of FIGURES.slice(0, 5)) expect(m[f]).toBeGreaterThanOrEqual(0);
    }
    expect(summary.models.base.parallel_rate).toBe(0);
    expect(summary.models.npr.mode).toBe('parallel');
    expect(summary.test_problems).toBe(6);
    expect(summary.k).toBe(2);
    const written = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as DemoSummary;
    expect(Object.keys(written.models).sort()).toEqual(['base', 'npr', 'npr_beta', 'npr_zero', 'sr']);
    expect(written.wall_s).toBeGreaterThan(0);

    const train = readFileSync(join(out, 'data', 'train.jsonl'), 'utf8')
      .trim()
      .split('\n');
    const test = readFileSync(join(out, 'data', 'test.jsonl'), 'utf8')
      .trim()
      .split('\n');
    const trainQ = new Set(train.map((l) => (JSON.parse(l) as { question: string }).question));
    for (const l of test) {
      const q = (JSON.parse(l) as { question: string }).question;
      expect(trainQ.has(q)).toBe(false);
      expect(splitOf(q)).toBe('test');
    }

    const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const stages = new Set(metrics.map((m) => m.stage));
    for (const s of ['npr-zero', 'rejection', 'npr', 'sr']) expect(stages.has(s), `metrics of ${s}`).toBe(true);
    for (const m of metrics) for (const v of Object.values(m)) if (typeof v === 'number') expect(Number.isFinite(v)).toBe(true);

    for (const f of ['report.html', 'final-accuracy.png', 'final-speed.png', 'curve-npr.png', 'curve-sr.png'])
      expect(existsSync(join(out, f)), f).toBe(true);
    for (const stage of ['npr-zero', 'npr-beta', 'npr', 'sr']) {
      const model = await Model.load(join(out, 'runs', stage));
      expect(model.config.vocabSize).toBeGreaterThan(0);
    }
    expect(lines.join('')).toContain('stage npr (papo)');
  }, 240_000);

  it('npr eval reads task families or a JSONL of {question, answer} and prints every figure', () => {
    const dir = mkdtempSync(join(tmpdir(), 'npr-eval-'));
    const file = join(dir, 'mine.jsonl');
    writeFileSync(file, `${JSON.stringify({ question: 'fib largest 1:37 2:52 3:18 4:90 5:44', answer: '9' })}\n`);
    for (const tasks of ['demo', file]) {
      const out = execFileSync(
        process.execPath,
        [
          'dist/ts/cli/main.js',
          'eval',
          '--model',
          SHIPPED_BASE,
          '--tasks',
          tasks,
          '--problems',
          '2',
          '--k',
          '2',
          '--latency',
          '1',
          '--mode',
          'ar',
          '--json',
        ],
        { encoding: 'utf8' },
      );
      const r = JSON.parse(out) as Record<string, unknown>;
      for (const f of FIGURES) expect(f in r, `${tasks}: ${f}`).toBe(true);
      expect(r.k).toBe(2);
      expect(r.problems).toBe(tasks === 'demo' ? 2 : 1);
      if (tasks === file) expect(r.branch_correct_rate).toBeNull();
    }
    expect(() =>
      execFileSync(process.execPath, ['dist/ts/cli/main.js', 'eval', '--model', SHIPPED_BASE, '--tasks', 'nope'], {
        encoding: 'utf8',
        stdio: 'pipe',
      }),
    ).toThrow(/neither a file nor a task family/);
  }, 60_000);

  it('the shipped base and NPR models load and generate from the npr command', () => {
    for (const dir of [SHIPPED_BASE, SHIPPED_NPR]) {
      expect(existsSync(join(dir, 'config.json')), dir).toBe(true);
      const text = execFileSync(
        process.execPath,
        [
          'dist/ts/cli/main.js',
          'generate',
          '--model',
          dir,
          '--prompt',
          'fib largest 1:37 2:52 3:18 4:90 5:44\n\nparallel',
          '--temperature',
          '0',
          '--max-new-tokens',
          '300',
        ],
        { encoding: 'utf8' },
      );
      expect(text.length).toBeGreaterThan(0);
    }
  }, 60_000);
});
