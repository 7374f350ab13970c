/**
 * Stage 2a, rejection sampling (NPR section 2.3): up to K sequential samples per problem from
 * NPR-ZERO, keeping the FIRST that is both correct and format-valid (format score exactly 0); a
 * solved problem is not sampled again. Rounds run every still-open problem at once. Output:
 * accepted.jsonl ({problem, question, answer, prompt, response, promptIds, responseIds,
 * attempts}) and stats.json (acceptance rate, attempts per problem, lengths, plans per block).
 * Resumable per round (the accepted set and the round are the checkpoint).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatScore } from '../../parallel/format_score.js';
import type { ResolvedRejection } from '../config.js';
import { codecFor, loadModel, makeEngine, promptIds, type StageContext, throwIfAborted, writeMetrics } from '../context.js';
import { renderPrompt } from '../data.js';
import { checkAnswer } from '../rewards/answer.js';

export interface AcceptedTrajectory {
  problem: number;
  question: string;
  answer: string;
  prompt: string;
  response: string;
  promptIds: number[];
  responseIds: number[];
  attempts: number;
}

async function writeAtomic(file: string, text: string): Promise<void> {
  await writeFile(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
}

export async function runRejectionStage(ctx: StageContext, s: ResolvedRejection, startDir: string, outDir: string): Promise<void> {
  await mkdir(outDir, { recursive: true });
  const progressFile = join(outDir, 'progress.json');
  const problems = ctx.problems.slice(0, s.maxProblems);
  let round = 0;
  let accepted: AcceptedTrajectory[] = [];
  const attempts = new Map<number, number>();
  if (existsSync(progressFile)) {
    const p = JSON.parse(await readFile(progressFile, 'utf8')) as {
      round: number;
      accepted: AcceptedTrajectory[];
      attempts: [number, number][];
    };
    round = p.round;
    accepted = p.accepted;
    for (const [k, v] of p.attempts) attempts.set(k, v);
  }
  ctx.emit('stage-start', { stage: s.name, kind: s.kind, index: 0, steps: s.maxSamples, resumedAt: round });
  const model = await loadModel(ctx, startDir);
  const { codec, tokenizer } = codecFor(ctx, model);
  const engine = makeEngine(model, codec, s.sampling);
  const t0 = performance.now();
  const lengths: number[] = [];
  for (; round < s.maxSamples; ) {
    throwIfAborted(ctx);
    const solved = new Set(accepted.map((a) => a.problem));
    const open = problems.filter((p) => !solved.has(p.id));
    if (open.length === 0) break;
    const ids = open.map((p) => promptIds(ctx, p, codec, tokenizer, s.prompt));
    const tr = performance.now();
    const rollouts = await engine.generate(ids, {
      mode: 'ar',
      maxNewTokens: s.sampling.maxNewTokens,
      temperature: s.sampling.temperature,
      topP: s.sampling.topP,
      topK: s.sampling.topK,
      seed: ctx.cfg.seed + 7777,
      requestKey: round * problems.length,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
    const ms = performance.now() - tr;
    let newly = 0;
    rollouts.forEach((r, i) => {
      const p = open[i] as (typeof open)[number];
      attempts.set(p.id, (attempts.get(p.id) ?? 0) + 1);
      const responseIds = Array.from(r.tokens.subarray(r.promptLength));
      const response = codec.decode(responseIds);
      lengths.push(responseIds.length);
      if (r.finishReason !== 'stop') return;
      if (formatScore(response).score !== 0 || !checkAnswer(response, p.answer, { tailChars: 300 })) return;
      newly++;
      accepted.push({
        problem: p.id,
        question: p.question,
        answer: p.answer,
        prompt: renderPrompt(p, s.prompt),
        response,
        promptIds: Array.from(r.tokens.subarray(0, r.promptLength)),
        responseIds: responseIds.filter((t) => !codec.eos.has(t)),
        attempts: attempts.get(p.id) as number,
      });
    });
    round++;
    const line = {
      stage: s.name,
      kind: s.kind,
      step: round,
      steps: s.maxSamples,
      rollouts: rollouts.length,
      accepted_now: newly,
      accepted: accepted.length,
      acceptance_rate: accepted.length / problems.length,
      response_length: lengths.length ? lengths.reduce((a, b) => a + b, 0) / lengths.length : 0,
      tokens_per_s: rollouts.reduce((a, r) => a + r.generatedTokens, 0) / (ms / 1000),
      wall_s: (performance.now() - t0) / 1000,
    };
    await writeAtomic(progressFile, JSON.stringify({ round, accepted, attempts: [...attempts] }));
    await writeMetrics(ctx, line);
    ctx.emit('step', line);
  }
  const plansPerBlock: number[] = [];
  for (const a of accepted) {
    for (const m of a.response.replace(/\s+/g, '').matchAll(/<guideline>(.*?)<\/guideline>/g))
      plansPerBlock.push((m[1]?.match(/<plan>/g) ?? []).length);
  }
  const stats = {
    problems: problems.length,
    accepted: accepted.length,
    acceptance_rate: problems.length ? accepted.length / problems.length : 0,
    attempts_per_problem: Object.fromEntries(
      problems.map((p) => [p.id, { attempts: attempts.get(p.id) ?? 0, accepted: accepted.some((a) => a.problem === p.id) }]),
    ),
    mean_attempts_accepted: accepted.length ? accepted.reduce((a, x) => a + x.attempts, 0) / accepted.length : 0,
    response_length_mean: accepted.length ? accepted.reduce((a, x) => a + x.responseIds.length, 0) / accepted.length : 0,
    response_length_max: Math.max(0, ...accepted.map((x) => x.responseIds.length)),
    plans_per_block_mean: plansPerBlock.length ? plansPerBlock.reduce((a, b) => a + b, 0) / plansPerBlock.length : 0,
    plans_per_block_histogram: plansPerBlock.reduce<Record<number, number>>((h, n) => {
      h[n] = (h[n] ?? 0) + 1;
      return h;
    }, {}),
  };
  await writeAtomic(join(outDir, 'accepted.jsonl'), accepted.map((a) => JSON.stringify(a)).join('\n') + (accepted.length ? '\n' : ''));
  await writeAtomic(join(outDir, 'stats.json'), `${JSON.stringify(stats, null, 2)}\n`);
}

export async function readAccepted(dir: string): Promise<AcceptedTrajectory[]> {
  const text = await readFile(join(dir, 'accepted.jsonl'), 'utf8');
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as AcceptedTrajectory);
}
