/**
 * Evaluation of one model on a problem set: k samples per problem (throughput pass, many
 * requests decoded together) for avg@k, pass@k, the format-valid rate, the parallel-trigger
 * rate (forks that actually ran) and branch correctness; then a latency pass, one problem at a
 * time, for wall-clock per problem and tokens/s as a user of the engine sees them.
 *
 * Settings follow NPR's validation (temperature 1.0, top-p 0.7, k = 8) unless given. The
 * verifier is the trainer's (\boxed{} in the last 300 characters); branch correctness needs
 * the generated problem (task families), and is null for a JSONL file's problems.
 */
import { codecFromTokenizer, type TokenCodec } from '../engine/codec.js';
import { Engine } from '../engine/engine.js';
import type { EngineMode, Rollout } from '../engine/types.js';
import type { Model } from '../model/model.js';
import { HfTokenizer } from '../model/tokenizer.js';
import { formatScore } from '../parallel/format_score.js';
import { promptText } from '../tasks/corpus.js';
import { branchCorrectness } from '../tasks/families.js';
import type { TaskItem } from '../tasks/sets.js';
import { checkAnswer } from '../trainer/rewards/answer.js';
import { mean, passAtK } from './pass_at_k.js';

export interface EvalOptions {
  k?: number;
  mode?: EngineMode;
  /** Add the parallel-format instruction to the prompt (default: mode === 'parallel'). */
  instruction?: boolean;
  temperature?: number;
  topP?: number;
  maxNewTokens?: number;
  seed?: number;
  /** Problems timed one at a time for wall-clock and tokens/s (default 16; 0 = skip). */
  latencyProblems?: number;
  /** Requests decoded together in the throughput pass (default 64). */
  concurrency?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

export interface EvalFigures {
  format_valid_rate: number;
  parallel_rate: number;
  avg_at_k: number;
  pass_at_k: number;
  /** Null when the problems carry no parts (a user's JSONL). */
  branch_correct_rate: number | null;
  tokens_per_s: number;
  wall_s_per_problem: number;
  response_tokens_mean: number;
  problems: number;
  samples: number;
}

export interface EvalResult extends EvalFigures {
  k: number;
  mode: EngineMode;
  /** The same figures per task family (family problems only). */
  families: Record<string, EvalFigures>;
}

interface Scored {
  item: TaskItem;
  rollouts: Rollout[];
  texts: string[];
}

export function modelCodec(model: Model): { codec: TokenCodec; tokenizer: HfTokenizer } {
  if (!model.tokenizerFiles.tokenizer) throw new Error('evaluation needs a model directory with tokenizer.json');
  const tokenizer = HfTokenizer.fromFiles(model.tokenizerFiles);
  return { codec: codecFromTokenizer(tokenizer), tokenizer };
}

export async function evaluate(model: Model, items: readonly TaskItem[], o: EvalOptions = {}): Promise<EvalResult> {
  const k = o.k ?? 8;
  const mode = o.mode ?? 'parallel';
  const instruction = o.instruction ?? mode === 'parallel';
  const { codec, tokenizer } = modelCodec(model);
  const sampling = { temperature: o.temperature ?? 1, topP: o.topP ?? 0.7, maxNewTokens: o.maxNewTokens ?? 400, mode, seed: o.seed ?? 0 };
  const engine = new Engine({
    model: model.nativeHandle,
    vocab: model.config.vocabSize,
    codec,
    kvBlocks: 8192,
    blockTokens: 16,
    maxActiveRequests: o.concurrency ?? 64,
  });
  const prompts = items.map((it) =>
    tokenizer.encodeChat([{ role: 'user', content: promptText(it.question, instruction) }], { addGenerationPrompt: true }),
  );
  const all = prompts.flatMap((p) => Array.from({ length: k }, () => p));
  const rollouts = await engine.generate(all, { ...sampling, ...(o.signal ? { signal: o.signal } : {}) });
  o.onProgress?.(rollouts.length, all.length);
  const scored: Scored[] = items.map((item, i) => {
    const rs = rollouts.slice(i * k, (i + 1) * k);
    return { item, rollouts: rs, texts: rs.map((r) => codec.decode(Array.from(r.tokens.subarray(r.promptLength)))) };
  });

  // Latency: one problem at a time, one sample each, as a user would call the engine.
  const latencyN = Math.min(o.latencyProblems ?? 16, items.length);
  let wallMs = 0;
  let latencyTokens = 0;
  for (let i = 0; i < latencyN; i++) {
    const t0 = performance.now();
    const [r] = await engine.generate([prompts[i] as number[]], {
      ...sampling,
      requestKey: 1_000_000 + i,
      ...(o.signal ? { signal: o.signal } : {}),
    });
    wallMs += performance.now() - t0;
    latencyTokens += (r as Rollout).generatedTokens;
  }
  const timing = {
    tokens_per_s: wallMs > 0 ? latencyTokens / (wallMs / 1000) : 0,
    wall_s_per_problem: latencyN ? wallMs / 1000 / latencyN : 0,
  };

  const families: Record<string, EvalFigures> = {};
  const names = [...new Set(scored.map((s) => s.item.task?.family).filter((f): f is string => Boolean(f)))];
  for (const name of names)
    families[name] = {
      ...figures(
        scored.filter((s) => s.item.task?.family === name),
        k,
      ),
      tokens_per_s: 0,
      wall_s_per_problem: 0,
    };
  return { ...figures(scored, k), ...timing, k, mode, families };
}

function figures(scored: readonly Scored[], k: number): EvalFigures {
  const avg: number[] = [];
  const pass: number[] = [];
  const format: number[] = [];
  const parallel: number[] = [];
  const branch: number[] = [];
  const lengths: number[] = [];
  for (const s of scored) {
    let c = 0;
    s.texts.forEach((text, j) => {
      const r = s.rollouts[j] as Rollout;
      if (checkAnswer(text, s.item.answer, { tailChars: 300 })) c++;
      format.push(formatScore(text).valid ? 1 : 0);
      parallel.push(r.parallel ? 1 : 0);
      lengths.push(r.generatedTokens);
      if (s.item.task) {
        const b = branchCorrectness(s.item.task, text);
        branch.push(b.correct / b.total);
      }
    });
    avg.push(c / k);
    pass.push(passAtK(k, c, k));
  }
  return {
    format_valid_rate: mean(format),
    parallel_rate: mean(parallel),
    avg_at_k: mean(avg),
    pass_at_k: mean(pass),
    branch_correct_rate: branch.length ? mean(branch) : null,
    tokens_per_s: 0,
    wall_s_per_problem: 0,
    response_tokens_mean: mean(lengths),
    problems: scored.length,
    samples: scored.length * k,
  };
}
