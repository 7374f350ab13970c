/**
 * `npr train --config FILE [--from-stage N] [--json]`: runs a curriculum file (JSON, see
 * ts/trainer/config.ts) through the same API a library user drives (Curriculum). On a terminal a
 * progress line per stage redrawn in place; piped (CI logs), one plain line every few seconds
 * and at each stage end; --json prints each step's metrics as JSONL. SIGINT stops between
 * steps with the last checkpoint intact; running the same command again resumes.
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../bindings/errors.js';
import type { CurriculumConfig } from '../trainer/config.js';
import { Curriculum } from '../trainer/curriculum.js';
import type { StepMetrics } from '../trainer/events.js';

interface TrainCliOptions {
  config: string;
  fromStage?: string;
  json?: boolean;
}

const fmt = (v: unknown, d = 3) => (typeof v === 'number' ? v.toFixed(d) : '-');

function describe(m: StepMetrics): string {
  return (
    `${m.stage} ${m.step}/${m.steps}` +
    (m.reward !== undefined
      ? ` reward ${fmt(m.reward)} acc ${fmt(m.accuracy, 2)} format ${fmt(m.format_valid_rate, 2)} parallel ${fmt(m.parallel_rate, 2)}`
      : '') +
    (m.accepted !== undefined ? ` accepted ${m.accepted} (${fmt(m.acceptance_rate, 2)})` : '') +
    (m.loss !== undefined ? ` loss ${fmt(m.loss, 4)} |g| ${fmt(m.grad_norm, 3)}` : '') +
    ` ${fmt(m.wall_s, 1)} s`
  );
}

export async function trainCommand(opts: TrainCliOptions): Promise<void> {
  let config: CurriculumConfig;
  try {
    config = JSON.parse(await readFile(opts.config, 'utf8')) as CurriculumConfig;
  } catch (e) {
    throw new ConfigError(`cannot read the curriculum ${opts.config}: ${(e as Error).message}`);
  }
  // Relative paths in the file are relative to the file.
  const base = dirname(resolve(opts.config));
  for (const k of ['model', 'data', 'out'] as const)
    if (typeof config[k] === 'string' && !isAbsolute(config[k])) config[k] = resolve(base, config[k]);
  const fromStage = opts.fromStage === undefined ? undefined : Number(opts.fromStage);
  if (fromStage !== undefined && (!Number.isInteger(fromStage) || fromStage < 0))
    throw new ConfigError(`--from-stage must be an integer >= 0 (got '${opts.fromStage}')`);
  const run = new Curriculum(config);
  const tty = process.stderr.isTTY && !opts.json;
  let lastPlain = 0;
  run.on('stage-start', (e) =>
    process.stderr.write(`npr train: stage '${e.stage}' (${e.kind})${e.resumedAt ? `, resuming at step ${e.resumedAt}` : ''}\n`),
  );
  run.on('step', (m) => {
    if (opts.json) process.stdout.write(`${JSON.stringify(m)}\n`);
    else if (tty) process.stderr.write(`\r\x1b[2K${describe(m)}`);
    else if (performance.now() - lastPlain > 5000 || m.step === m.steps) {
      lastPlain = performance.now();
      process.stderr.write(`${describe(m)}\n`);
    }
  });
  run.on('checkpoint', (e) => tty || process.stderr.write(`npr train: checkpoint ${e.stage} step ${e.step}\n`));
  run.on('stage-end', (e) => process.stderr.write(`${tty ? '\n' : ''}npr train: stage '${e.stage}' done -> ${e.output}\n`));
  run.on('warning', (e) => process.stderr.write(`${tty ? '\n' : ''}npr train: warning: ${e.stage ? `${e.stage}: ` : ''}${e.message}\n`));
  const ac = new AbortController();
  const onSigint = () => {
    process.stderr.write('\nnpr train: stopping after this step (the last checkpoint stays whole)\n');
    ac.abort();
  };
  process.once('SIGINT', onSigint);
  try {
    const outputs = await run.run({ signal: ac.signal, ...(fromStage === undefined ? {} : { fromStage }) });
    if (!opts.json) for (const o of outputs) process.stderr.write(`  ${o.stage.padEnd(12)} ${o.dir}\n`);
  } finally {
    process.off('SIGINT', onSigint);
  }
}

export function registerTrainCommand(program: Command): void {
  program
    .command('train')
    .description(
      'Run an NPR training curriculum (format RL, rejection sampling + parallel SFT, PAPO) from a JSON file; resumes where it stopped.',
    )
    .requiredOption('--config <file>', 'curriculum JSON (model, data, out, stages, settings)')
    .option('--from-stage <n>', 'start at this stage index (earlier stages must be finished)')
    .option('--json', 'print every step as a JSON line on stdout')
    .action((opts: TrainCliOptions) => trainCommand(opts));
}
