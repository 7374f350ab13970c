/**
 * What every stage shares: the resolved configuration, the problems, the event sink, the abort
 * signal, the metrics file, and the model/codec plumbing (loading a stage's starting model,
 * turning problems into prompt ids, building the engine over a model).
 */
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { CharCodec, codecFromTokenizer, type TokenCodec } from '../engine/codec.js';
import { Engine } from '../engine/engine.js';
import { Model } from '../model/model.js';
import { HfTokenizer } from '../model/tokenizer.js';
import type { PromptConfig, ResolvedCurriculum, ResolvedSampling } from './config.js';
import { type Problem, renderPrompt } from './data.js';
import type { TrainerEvents } from './events.js';

export class TrainingAborted extends Error {
  override name = 'TrainingAborted';
}

export interface StageContext {
  cfg: ResolvedCurriculum;
  problems: Problem[];
  signal: AbortSignal | undefined;
  emit: <K extends keyof TrainerEvents>(name: K, ...args: Parameters<TrainerEvents[K]>) => void;
  /** Model directory each finished stage left (a rejection stage: the model it sampled). */
  modelDirs: Map<string, string>;
  metricsFile: string;
}

export function throwIfAborted(ctx: StageContext): void {
  if (ctx.signal?.aborted) throw new TrainingAborted('training was aborted; the last checkpoint is intact');
}

/** The codec for a model, as the curriculum says ('char' or the model's tokenizer.json). */
export function codecFor(ctx: StageContext, model: Model): { codec: TokenCodec; tokenizer?: HfTokenizer } {
  if (ctx.cfg.codec === 'char') return { codec: new CharCodec() };
  if (!model.tokenizerFiles.tokenizer) throw new Error(`the model has no tokenizer.json; give the directory one or set "codec": "char"`);
  const tokenizer = HfTokenizer.fromFiles(model.tokenizerFiles);
  return { codec: codecFromTokenizer(tokenizer), tokenizer };
}

/** Prompt ids of a problem (chat template when the tokenizer has one and the config allows). */
export function promptIds(
  ctx: StageContext,
  p: Problem,
  codec: TokenCodec,
  tokenizer?: HfTokenizer,
  prompt: Required<PromptConfig> = ctx.cfg.prompt,
): number[] {
  const text = renderPrompt(p, prompt);
  if (tokenizer && prompt.chat && tokenizer.hasChatTemplate)
    return tokenizer.encodeChat([{ role: 'user', content: text }], { addGenerationPrompt: true, enableThinking: false });
  return codec.encode(text);
}

export function makeEngine(model: Model, codec: TokenCodec, s: ResolvedSampling): Engine {
  return new Engine({
    model: model.nativeHandle,
    vocab: model.config.vocabSize,
    codec,
    kvBlocks: s.kvBlocks,
    blockTokens: s.blockTokens,
    maxActiveRequests: s.concurrency,
  });
}

/** The directory a stage starts from: 'base', 'previous' or a finished stage's name. */
export function startingDir(ctx: StageContext, from: string, previous: string | undefined): string {
  if (from === 'base') return ctx.cfg.model;
  if (from === 'previous') return previous ? (ctx.modelDirs.get(previous) as string) : ctx.cfg.model;
  const dir = ctx.modelDirs.get(from);
  if (!dir) throw new Error(`stage input '${from}' is not a finished stage before this one`);
  return dir;
}

export async function loadModel(ctx: StageContext, dir: string): Promise<Model> {
  return Model.load(dir, {
    backend: ctx.cfg.backend,
    deterministic: ctx.cfg.deterministic,
    attentionKernels: ctx.cfg.attentionKernels,
  });
}

/** Appends one metrics line (JSONL). */
export async function writeMetrics(ctx: StageContext, line: Record<string, unknown>): Promise<void> {
  await appendFile(ctx.metricsFile, `${JSON.stringify(line)}\n`);
}

/** Drops metrics lines of `stage` past `step` (lines a killed run wrote after its last checkpoint). */
export async function truncateMetrics(ctx: StageContext, stage: string, step: number): Promise<void> {
  let text = '';
  try {
    text = await readFile(ctx.metricsFile, 'utf8');
  } catch {
    return;
  }
  const keep = text
    .split('\n')
    .filter((l) => l.trim())
    .filter((l) => {
      try {
        const o = JSON.parse(l) as { stage?: string; step?: number };
        return o.stage !== stage || (o.step ?? 0) <= step;
      } catch {
        return false;
      }
    });
  await writeFile(ctx.metricsFile, keep.length ? `${keep.join('\n')}\n` : '');
}

export async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
}
