/**
 * The curriculum: stages run in order from a resolved configuration, each a resumable unit.
 * A finished stage leaves its output directory (a Hugging Face model, or the rejection stage's
 * dataset) with the fully resolved configuration beside it (curriculum.resolved.json) and a
 * done.json marker; a stage interrupted mid-way resumes from its last atomic checkpoint. One
 * metrics.jsonl line per step for the whole run; typed events for library users; an
 * AbortSignal stops between steps with the checkpoint intact.
 *
 *   const run = new Curriculum(config);
 *   run.on('step', (m) => ...);
 *   const outputs = await run.run({ signal, fromStage: 0 });
 */
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type TypedEmitterModule from 'typed-emitter';
import { type CurriculumConfig, type ResolvedCurriculum, resolveCurriculum } from './config.js';
import { type StageContext, startingDir } from './context.js';
import { loadProblems } from './data.js';
import type { TrainerEvents } from './events.js';
import { runRejectionStage } from './stages/rejection.js';
import { runRlStage } from './stages/rl.js';
import { runSftStage } from './stages/sft.js';

export interface RunOptions {
  signal?: AbortSignal;
  /** Start at this stage index (0-based); earlier stages must have finished outputs. Default: the first unfinished one. */
  fromStage?: number;
}

export interface StageOutput {
  stage: string;
  kind: string;
  /** The stage's output directory (a model, or the rejection dataset). */
  dir: string;
  /** The model directory it produced or used. */
  model: string;
}

export class Curriculum extends (EventEmitter as new () => TypedEmitterModule.default<TrainerEvents>) {
  readonly config: ResolvedCurriculum;

  constructor(config: CurriculumConfig | ResolvedCurriculum) {
    super();
    this.config = resolveCurriculum(config as CurriculumConfig);
  }

  /** The directory of stage `name`'s output. */
  outputDir(name: string): string {
    return join(resolve(this.config.out), name);
  }

  async run(options: RunOptions = {}): Promise<StageOutput[]> {
    const cfg = this.config;
    const out = resolve(cfg.out);
    await mkdir(out, { recursive: true });
    await writeFile(join(out, 'curriculum.resolved.json'), `${JSON.stringify(cfg, null, 2)}\n`);
    const { problems, skipped } = await loadProblems(cfg.data);
    for (const message of skipped) this.emit('warning', { message });
    const ctx: StageContext = {
      cfg,
      problems,
      signal: options.signal,
      emit: (name, ...args) => (this.emit as (n: string, ...a: unknown[]) => boolean)(name, ...args),
      modelDirs: new Map(),
      metricsFile: join(out, 'metrics.jsonl'),
    };
    const outputs: StageOutput[] = [];
    let previous: string | undefined;
    for (const [i, s] of cfg.stages.entries()) {
      const dir = this.outputDir(s.name);
      const done = existsSync(join(dir, 'done.json'));
      const skip = options.fromStage !== undefined ? i < options.fromStage : done;
      const start = startingDir(ctx, s.from, previous);
      if (skip) {
        if (!done) throw new Error(`--from-stage ${options.fromStage}: stage ${i} ('${s.name}') has no finished output at ${dir}`);
      } else {
        if (done) await rm(join(dir, 'done.json'));
        if (s.kind === 'rejection') await runRejectionStage(ctx, s, start, dir);
        else if (s.kind === 'sft') await runSftStage(ctx, s, start, this.outputDir(s.data), dir);
        else await runRlStage(ctx, s, start, dir);
        await writeFile(join(dir, 'curriculum.resolved.json'), `${JSON.stringify({ ...cfg, stage: s }, null, 2)}\n`);
        await writeFile(join(dir, 'done.json'), `${JSON.stringify({ stage: s.name, finishedAt: new Date().toISOString() })}\n`);
        await rm(`${dir}.checkpoint`, { recursive: true, force: true });
        this.emit('stage-end', { stage: s.name, kind: s.kind, output: dir });
      }
      const model = s.kind === 'rejection' ? start : dir;
      ctx.modelDirs.set(s.name, model);
      outputs.push({ stage: s.name, kind: s.kind, dir, model });
      previous = s.name;
    }
    return outputs;
  }
}
