/**
 * The RL stages over one loop: stage 1 format-follow RL (DAPO: AR rollouts, format-gated
 * reward, group-normalised advantages, PPO-clip with clip-higher and dual clip, dynamic
 * sampling), stage 3 PAPO (native parallel rollouts, structural filter, accuracy reward,
 * batch-level advantages, the PAPO loss, strictly on-policy: the engine's recorded logprobs are
 * the old ones) and SR, the sequential baseline (stage 3 with AR rollouts and a causal mask).
 *
 * Each step: draw prompts at the data cursor, G samples each, rewards, (dynamic sampling),
 * advantages, `miniBatches` optimizer steps, one metrics line; a checkpoint every `saveEvery`
 * steps and at the end. Rollout seeds derive from (seed, step, draw) only, so a resumed run
 * reproduces an uninterrupted one.
 */
import { join } from 'node:path';
import type { Rollout } from '../../engine/types.js';
import type { Model } from '../../model/model.js';
import { advantageEstimator } from '../algos/advantages.js';
import { loadCheckpoint, readTrainerState, saveCheckpoint } from '../checkpoint.js';
import type { ResolvedRl } from '../config.js';
import {
  codecFor,
  ensureDir,
  loadModel,
  makeEngine,
  promptIds,
  type StageContext,
  throwIfAborted,
  truncateMetrics,
  writeMetrics,
} from '../context.js';
import { type Problem, problemAt } from '../data.js';
import type { StepMetrics } from '../events.js';
import { accuracyOnlyReward, formatFollowReward, informativeGroups } from '../rewards/reward.js';
import { rolloutSequence, structuralFilter, type TrainSequence } from '../rollouts.js';
import { learningRate } from '../schedule.js';
import { NonFiniteError, policyStep } from '../update.js';

interface Sample {
  rollout: Rollout;
  group: number;
  reward: number;
  correct: boolean;
  formatValid: boolean;
  kept: boolean;
}

export async function runRlStage(ctx: StageContext, s: ResolvedRl, startDir: string, outDir: string): Promise<void> {
  const ckptDir = `${outDir}.checkpoint`;
  let model: Model;
  let step = 0;
  let cursor = 0;
  const prior = await readTrainerState(ckptDir);
  if (prior) {
    const loaded = await loadCheckpoint(ckptDir, ctx.cfg.backend);
    model = loaded.model;
    step = prior.step;
    cursor = prior.cursor;
    await truncateMetrics(ctx, s.name, step);
  } else {
    model = await loadModel(ctx, startDir);
  }
  ctx.emit('stage-start', { stage: s.name, kind: s.kind, index: 0, steps: s.steps, resumedAt: step });
  const { codec, tokenizer } = codecFor(ctx, model);
  const engine = makeEngine(model, codec, s.sampling);
  const mode = s.kind === 'papo' ? 'parallel' : 'ar';
  const estimator = advantageEstimator(s.advantage);
  const t0 = performance.now();
  const reward = s.kind === 'format-rl' ? formatFollowReward : accuracyOnlyReward;
  const overlong = s.overlong ? { maxLength: s.sampling.maxNewTokens, ...s.overlong } : undefined;

  for (; step < s.steps; ) {
    throwIfAborted(ctx);
    const tStep = performance.now();
    const samples: Sample[] = [];
    let rolloutMs = 0;
    let groupsKept = 0;
    let batches = 0;
    const maxBatches = Math.max(1, s.dynamicSamplingBatches || 1);
    // Generation batches until enough informative groups (dynamic sampling) or the limit.
    while (groupsKept < s.prompts && batches < maxBatches) {
      const drawn: { p: Problem; ids: number[]; at: number }[] = [];
      for (let i = 0; i < s.prompts; i++) {
        const p = problemAt(ctx.problems, ctx.cfg.seed, cursor);
        const ids = promptIds(ctx, p, codec, tokenizer, s.prompt);
        const at = cursor++;
        if (ids.length > s.maxPromptTokens) {
          ctx.emit('warning', {
            stage: s.name,
            message: `problem ${p.id}: prompt of ${ids.length} tokens is over maxPromptTokens ${s.maxPromptTokens}; skipped`,
          });
          continue;
        }
        drawn.push({ p, ids, at });
      }
      batches++;
      if (drawn.length === 0) continue;
      const prompts = drawn.flatMap((d) => Array.from({ length: s.samples }, () => d.ids));
      const tr = performance.now();
      const rollouts = await engine.generate(prompts, {
        mode,
        maxNewTokens: s.sampling.maxNewTokens,
        temperature: s.sampling.temperature,
        topP: s.sampling.topP,
        topK: s.sampling.topK,
        seed: ctx.cfg.seed,
        requestKey: (drawn[0] as { at: number }).at * s.samples,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      });
      rolloutMs += performance.now() - tr;
      throwIfAborted(ctx);
      const fresh: Sample[] = rollouts.map((r, i) => {
        const d = drawn[Math.floor(i / s.samples)] as (typeof drawn)[number];
        const text = codec.decode(Array.from(r.tokens.subarray(r.promptLength)));
        const verdict = s.kind === 'format-rl' ? { ok: true as const } : structuralFilter(r, codec.tagIds);
        const rw = reward(text, d.p.answer, r.generatedTokens, overlong ? { overlong } : {});
        return { rollout: r, group: d.at, reward: rw.reward, correct: rw.correct, formatValid: rw.formatValid, kept: verdict.ok };
      });
      if (s.dynamicSamplingBatches > 0) {
        const live = informativeGroups(
          fresh.map((x) => x.reward),
          fresh.map((x) => x.group),
        );
        for (const x of fresh) x.kept &&= live.has(x.group);
        groupsKept += live.size;
      } else groupsKept += drawn.length;
      samples.push(...fresh);
    }
    const kept = samples.filter((x) => x.kept);
    const metrics: StepMetrics = {
      stage: s.name,
      kind: s.kind,
      step: step + 1,
      steps: s.steps,
      reward: mean(samples.map((x) => x.reward)),
      accuracy: mean(samples.map((x) => (x.correct ? 1 : 0))),
      format_valid_rate: mean(samples.map((x) => (x.formatValid ? 1 : 0))),
      parallel_rate: mean(samples.map((x) => (x.rollout.parallel ? 1 : 0))),
      mean_branches: mean(samples.map((x) => x.rollout.branches.length - 1)),
      response_length: mean(samples.map((x) => x.rollout.generatedTokens)),
      response_length_max: Math.max(0, ...samples.map((x) => x.rollout.generatedTokens)),
      rollouts: samples.length,
      filtered: samples.length - kept.length,
      rollout_ms: rolloutMs,
      wall_s: 0,
    };
    const lr = learningRate(s.schedule, step, s.steps);
    let trainMs = 0;
    if (kept.length > 0) {
      const adv = estimator({ rewards: kept.map((x) => x.reward), groups: kept.map((x) => x.group) });
      const seqs: TrainSequence[] = kept.map((x, i) => {
        const seq = rolloutSequence(x.rollout, codec.tagIds, { label: `stage ${s.name} step ${step + 1} rollout ${x.rollout.index}` });
        seq.advantage = adv[i] as number;
        return seq;
      });
      const tt = performance.now();
      const per = Math.ceil(seqs.length / s.miniBatches);
      const results = [];
      try {
        for (let m = 0; m < s.miniBatches; m++) {
          const part = seqs.slice(m * per, (m + 1) * per);
          if (part.length) results.push(await policyStep(model, part, s.loss, { ...s.optimizer, lr }, s.microTokens));
        }
      } catch (e) {
        if (!(e instanceof NonFiniteError)) throw e;
        ctx.emit('warning', { stage: s.name, message: `step ${step + 1}: ${e.message}` });
      }
      trainMs = performance.now() - tt;
      const last = results[results.length - 1];
      if (last) {
        Object.assign(metrics, {
          loss: mean(results.map((r) => r.loss)),
          grad_norm: last.gradNorm,
          clip_frac: last.metrics.clipFrac,
          clip_frac_lower: last.metrics.clipFracLower,
          special_clip_frac: last.metrics.specialClipFrac,
          ratio_mean: last.metrics.ratioMean,
          native_ms: results.reduce((a, r) => a + r.nativeMs, 0),
        });
      }
    } else {
      ctx.emit('warning', { stage: s.name, message: `step ${step + 1}: no rollout survived the filters; no update` });
    }
    metrics.lr = lr;
    metrics.train_ms = trainMs;
    const genTokens = samples.reduce((a, x) => a + x.rollout.generatedTokens, 0);
    metrics.tokens_per_s = rolloutMs > 0 ? genTokens / (rolloutMs / 1000) : 0;
    metrics.step_s = (performance.now() - tStep) / 1000;
    metrics.wall_s = (performance.now() - t0) / 1000;
    step++;
    await writeMetrics(ctx, metrics);
    ctx.emit('step', metrics);
    if ((s.saveEvery > 0 && step % s.saveEvery === 0) || step === s.steps) {
      await saveCheckpoint(ckptDir, model, { stage: s.name, step, cursor, seed: ctx.cfg.seed });
      ctx.emit('checkpoint', { stage: s.name, step, dir: ckptDir });
    }
  }
  await ensureDir(join(outDir, '..'));
  await model.save(outDir, { overwrite: true });
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}
