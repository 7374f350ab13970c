/**
 * `npr pretrain`: the demo's tiny base model, trained from scratch by this runtime on the
 * synthetic corpus of ts/tasks/corpus.ts (NLL on responses, causal, packed varlen batches of
 * `batchTokens`, AdamW, cosine schedule with warmup). Deterministic from the seed: step s draws
 * its examples from an RNG seeded by (seed, s), so a resumed run (atomic checkpoint every
 * `saveEvery` steps) equals an uninterrupted one. Every `evalEvery` steps the evaluated families
 * are decoded greedily on held-out problems (sequential prompt) and the accuracy is logged.
 *
 * Output: a Hugging Face Qwen3 directory with the tiny tokenizer, plus pretrain.json (settings,
 * command, wall time, final evaluation) and metrics.jsonl.
 */
import { appendFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConfigError } from '../bindings/errors.js';
import { evaluate } from '../eval/evaluate.js';
import { Qwen3Config } from '../model/config.js';
import { Model } from '../model/model.js';
import { HfTokenizer } from '../model/tokenizer.js';
import { buildFromIds } from '../parallel/builder.js';
import { type TagIds, tagIdsFromTokenizer } from '../parallel/tags.js';
import { type CorpusExample, corpusExample, DEFAULT_MIX } from '../tasks/corpus.js';
import { DEMO_FAMILIES, generateProblems } from '../tasks/sets.js';
import { tinyTokenizerFiles } from '../tasks/vocab.js';
import { loadCheckpoint, readTrainerState, saveCheckpoint } from './checkpoint.js';
import { seededRandom } from './data.js';
import type { TrainSequence } from './rollouts.js';
import { learningRate } from './schedule.js';
import { sftStep } from './update.js';

export interface PretrainConfig {
  out: string;
  seed?: number;
  /** Optimizer steps (default 2400). */
  steps?: number;
  /** Tokens per step (default 8192). */
  batchTokens?: number;
  /** Peak learning rate (default 3e-3), linear warmup steps (100), cosine floor ratio (0.1). */
  lr?: number;
  warmupSteps?: number;
  minLrRatio?: number;
  hidden?: number;
  layers?: number;
  heads?: number;
  kvHeads?: number;
  intermediate?: number;
  /** Evaluate every N steps (default 200; 0 = only at the end) on this many held-out problems per family (32). */
  evalEvery?: number;
  evalProblems?: number;
  /** Checkpoint every N steps (default 100). */
  saveEvery?: number;
}

export type ResolvedPretrain = Required<PretrainConfig>;

export function resolvePretrain(c: PretrainConfig): ResolvedPretrain {
  const r: ResolvedPretrain = {
    seed: 0,
    steps: 2400,
    batchTokens: 8192,
    lr: 3e-3,
    warmupSteps: 100,
    minLrRatio: 0.1,
    hidden: 128,
    layers: 6,
    heads: 4,
    kvHeads: 2,
    intermediate: 384,
    evalEvery: 200,
    evalProblems: 32,
    saveEvery: 100,
    ...c,
  };
  for (const k of ['steps', 'batchTokens', 'hidden', 'layers', 'heads', 'kvHeads', 'intermediate', 'evalProblems'] as const)
    if (!Number.isInteger(r[k]) || r[k] < 1) throw new ConfigError(`pretrain ${k} must be an integer >= 1 (got ${r[k]})`);
  if (r.hidden % r.heads !== 0) throw new ConfigError(`pretrain hidden ${r.hidden} must be a multiple of heads ${r.heads}`);
  if (r.heads % r.kvHeads !== 0) throw new ConfigError(`pretrain heads ${r.heads} must be a multiple of kvHeads ${r.kvHeads}`);
  if (!(r.lr > 0)) throw new ConfigError(`pretrain lr must be > 0 (got ${r.lr})`);
  return r;
}

/** A corpus example as a training sequence: causal, or the NPR layout of the structure builder. */
export function corpusSequence(ex: CorpusExample, tagIds: TagIds): TrainSequence {
  const n = ex.ids.length;
  const ids = Int32Array.from(ex.ids);
  const lossMask = new Float32Array(n);
  const seq: TrainSequence = {
    ids,
    positions: Int32Array.from({ length: n }, (_, i) => i),
    prev: Int32Array.from({ length: n }, (_, i) => i - 1),
    oldLogprob: new Float32Array(n),
    lossMask,
    specialMask: new Uint8Array(n),
    advantage: 0,
  };
  if (ex.parallelLayout) {
    const built = buildFromIds(ids, tagIds, { promptLength: ex.promptLength, scoreResponseOnly: true });
    if (!built.ok) throw new Error(`corpus: the builder rejects a ${ex.family} example (${built.reason}: ${built.message})`);
    seq.positions = built.positions;
    seq.prev = built.prev;
    seq.structure = built.structure;
  }
  for (let t = ex.promptLength; t < n; t++) if ((seq.prev[t] as number) >= 0) lossMask[t] = 1;
  return seq;
}

export interface PretrainEvents {
  onStep?: (line: Record<string, unknown>) => void;
  onEval?: (line: Record<string, unknown>) => void;
  signal?: AbortSignal;
}

function tinyConfig(r: ResolvedPretrain, vocab: number): Qwen3Config {
  return Qwen3Config.fromHfJson({
    architectures: ['Qwen3ForCausalLM'],
    model_type: 'qwen3',
    vocab_size: vocab,
    hidden_size: r.hidden,
    intermediate_size: r.intermediate,
    num_hidden_layers: r.layers,
    num_attention_heads: r.heads,
    num_key_value_heads: r.kvHeads,
    head_dim: r.hidden / r.heads,
    hidden_act: 'silu',
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    max_position_embeddings: 2048,
    tie_word_embeddings: true,
    attention_bias: false,
    torch_dtype: 'float32',
    bos_token_id: null,
    eos_token_id: 2,
  });
}

/** Greedy held-out accuracy of the evaluated families (sequential prompt), per family. */
export async function baseAccuracy(model: Model, problems: number, seed: number): Promise<Record<string, number>> {
  const items = generateProblems(DEMO_FAMILIES, 'test', problems * DEMO_FAMILIES.length, seed + 99).map((task) => ({
    question: task.question,
    answer: task.answer,
    task,
  }));
  const r = await evaluate(model, items, { k: 1, mode: 'ar', instruction: false, temperature: 0, latencyProblems: 0 });
  return Object.fromEntries([
    ['all', r.avg_at_k],
    ...Object.entries(r.families).map(([f, x]) => [f, x.avg_at_k]),
    ['branch_correct', r.branch_correct_rate ?? 0],
  ]);
}

export async function pretrain(config: PretrainConfig, ev: PretrainEvents = {}): Promise<{ dir: string; wallS: number }> {
  const r = resolvePretrain(config);
  const out = resolve(r.out);
  const ckpt = `${out}.checkpoint`;
  const metricsFile = `${out}.metrics.jsonl`;
  const files = tinyTokenizerFiles();
  const tokenizer = HfTokenizer.fromFiles(files);
  const tagIds = tagIdsFromTokenizer(tokenizer);
  if (!tagIds) throw new Error('the tiny tokenizer lacks the eight tags as single tokens');
  // Exactly the tokenizer's ids: padded rows would be sampled by a small model and decode to nothing.
  const vocab = files.size;
  let model: Model;
  let step = 0;
  let priorWall = 0;
  const prior = await readTrainerState(ckpt);
  if (prior) {
    model = (await loadCheckpoint(ckpt, 'cpu')).model;
    step = prior.step;
    priorWall = Number(prior.extra?.wallS ?? 0);
  } else {
    model = Model.create(tinyConfig(r, vocab), {
      seed: r.seed,
      tokenizerFiles: { tokenizer: files.tokenizer, tokenizerConfig: files.tokenizerConfig },
    });
    await mkdir(resolve(out, '..'), { recursive: true });
    await writeFile(metricsFile, '');
  }
  const t0 = performance.now() - priorWall * 1000;
  const wall = () => (performance.now() - t0) / 1000;
  const log = async (line: Record<string, unknown>) => appendFile(metricsFile, `${JSON.stringify(line)}\n`);
  for (; step < r.steps; ) {
    if (ev.signal?.aborted) throw new Error('pretraining was aborted; the last checkpoint is intact and the same command resumes it');
    const rand = seededRandom(r.seed * 1_000_003 + step);
    const seqs: TrainSequence[] = [];
    let tokens = 0;
    while (tokens < r.batchTokens) {
      const ex = corpusExample(rand, tokenizer, DEFAULT_MIX);
      seqs.push(corpusSequence(ex, tagIds));
      tokens += ex.ids.length;
    }
    const lr = learningRate({ kind: 'cosine', lr: r.lr, warmupSteps: r.warmupSteps, minLrRatio: r.minLrRatio }, step, r.steps);
    const ts = performance.now();
    const res = await sftStep(model, seqs, { lr, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clipNorm: 1 }, r.batchTokens * 2);
    step++;
    const line = {
      stage: 'pretrain',
      step,
      steps: r.steps,
      loss: res.loss,
      grad_norm: res.gradNorm,
      lr,
      tokens,
      tokens_per_s: tokens / ((performance.now() - ts) / 1000),
      wall_s: wall(),
    };
    await log(line);
    ev.onStep?.(line);
    if ((r.evalEvery > 0 && step % r.evalEvery === 0) || step === r.steps) {
      const acc = await baseAccuracy(model, r.evalProblems, r.seed);
      const e = { stage: 'pretrain-eval', step, steps: r.steps, accuracy: acc.all, ...acc, wall_s: wall() };
      await log(e);
      ev.onEval?.(e);
    }
    if (step % r.saveEvery === 0 || step === r.steps)
      await saveCheckpoint(ckpt, model, { stage: 'pretrain', step, cursor: 0, seed: r.seed, extra: { wallS: wall() } });
  }
  const wallS = wall();
  await model.save(out, { overwrite: true });
  const finalAcc = await baseAccuracy(model, r.evalProblems, r.seed);
  await writeFile(
    join(out, 'pretrain.json'),
    `${JSON.stringify({ command: `npr pretrain --out ${r.out} --seed ${r.seed} --steps ${r.steps}`, settings: r, mix: DEFAULT_MIX, params: model.paramCount, wall_s: wallS, greedy_heldout_accuracy: finalAcc, finishedAt: new Date().toISOString() }, null, 2)}\n`,
  );
  await rm(ckpt, { recursive: true, force: true });
  return { dir: out, wallS };
}
