/**
 * `npr demo [--quick] [--out DIR] [--seed N] [--model DIR]` (= `npm start`): the NPR
 * curriculum on the shipped tiny base beside a sequential-RL baseline, evaluated on held-out
 * problems (ts/demo/demo.ts). Progress on stderr, the summary table on stdout, the report in
 * the output directory. SIGINT stops between steps; running it again resumes finished stages.
 */
import type { Command } from 'commander';
import { ConfigError } from '../bindings/errors.js';
import { type DemoSummary, type ModelKey, runDemo } from '../demo/demo.js';
import { Progress } from '../demo/progress.js';

const pct = (v: number | null) => (v === null ? '    -' : `${(100 * v).toFixed(1).padStart(5)}%`);

export function summaryTable(s: DemoSummary): string {
  const rows: [ModelKey, string][] = [
    ['base', 'base'],
    ['npr_zero', 'NPR-ZERO'],
    ['npr_beta', 'NPR-BETA'],
    ['sr', 'SR'],
    ['npr', 'NPR'],
  ];
  const head = `model     mode      format  parallel  avg@${s.k}  pass@${s.k}  branches  tok/s  s/problem`;
  const lines = rows.map(([key, name]) => {
    const m = s.models[key];
    return `${name.padEnd(9)} ${m.mode.padEnd(8)} ${pct(m.format_valid_rate)}  ${pct(m.parallel_rate)}  ${pct(m.avg_at_k)} ${pct(m.pass_at_k)}  ${pct(m.branch_correct_rate)}  ${m.tokens_per_s.toFixed(0).padStart(5)}  ${m.wall_s_per_problem.toFixed(3).padStart(9)}`;
  });
  const checks = s.checks.map((c) => `  ${c.met ? 'met ' : 'MISS'}  ${c.figure} ${c.target}: ${c.value.toFixed(3)}`);
  return [
    head,
    ...lines,
    '',
    `held-out problems ${s.test_problems}, k = ${s.k}; NPR wall-clock speedup over SR ${s.speedup_vs_sr.toFixed(2)}x; ${s.wall_s.toFixed(0)} s on ${s.cpu}`,
    ...checks,
  ].join('\n');
}

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('train the shipped tiny base through the three NPR stages beside a sequential-RL baseline and compare them')
    .option('--quick', 'a miniature run (plumbing, under 2 minutes)')
    .option('--out <dir>', 'output directory (default npr-demo, or npr-demo-quick)')
    .option('--seed <n>', 'seed (default 0)')
    .option('--model <dir>', 'base model directory (default: the shipped tiny base)')
    .action(async (o: { quick?: boolean; out?: string; seed?: string; model?: string }) => {
      const seed = o.seed === undefined ? 0 : Number(o.seed);
      if (!Number.isInteger(seed) || seed < 0) throw new ConfigError(`--seed must be an integer >= 0 (got '${o.seed}')`);
      const controller = new AbortController();
      process.once('SIGINT', () => controller.abort());
      const summary = await runDemo(
        { seed, ...(o.quick ? { quick: true } : {}), ...(o.out ? { out: o.out } : {}), ...(o.model ? { model: o.model } : {}) },
        new Progress(),
        controller.signal,
      );
      process.stdout.write(`\n${summaryTable(summary)}\n\nreport: ${summary.settings.out}/report.html\n`);
    });
}
