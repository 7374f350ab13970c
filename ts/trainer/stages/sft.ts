/**
 * Stage 2b, parallel SFT (NPR section 2.3): from the ORIGINAL base model by default, add the 8
 * tags as special tokens when the tokenizer lacks them (embedding rows initialised as NPR does),
 * and train NLL on the accepted trajectories' response tokens with the parallel attention mask
 * and positions of the structure builder (Algorithms 1 + 2, docs/structure.md). Trajectories the
 * builder rejects are skipped with a warning. Output: NPR-BETA.
 *
 * Token ids: with the tags already single tokens (or a char codec) the recorded ids are used as
 * they are; after adding the tags, the response TEXT is encoded with the new tokenizer - the one
 * place a text round trip is inherent (the vocabulary changed).
 */
import { codecFromTokenizer, type TokenCodec } from '../../engine/codec.js';
import { Model } from '../../model/model.js';
import { addNprSpecialTokens } from '../../model/special_tokens.js';
import { HfTokenizer } from '../../model/tokenizer.js';
import { buildFromIds } from '../../parallel/builder.js';
import { loadCheckpoint, readTrainerState, saveCheckpoint } from '../checkpoint.js';
import type { ResolvedSft } from '../config.js';
import { codecFor, loadModel, type StageContext, throwIfAborted, truncateMetrics, writeMetrics } from '../context.js';
import { seededRandom } from '../data.js';
import type { TrainSequence } from '../rollouts.js';
import { learningRate } from '../schedule.js';
import { NonFiniteError, sftStep } from '../update.js';
import { readAccepted } from './rejection.js';

/** The starting model with the tags as single tokens, and its codec. */
async function withTags(ctx: StageContext, dir: string): Promise<{ model: Model; codec: TokenCodec; retokenize: boolean }> {
  const model = await loadModel(ctx, dir);
  const first = codecFor(ctx, model);
  if (first.codec.tagIds) return { model, codec: first.codec, retokenize: false };
  const parts = addNprSpecialTokens({ config: model.config, weights: model.weights(), tokenizerFiles: model.tokenizerFiles });
  const grown = Model.create(parts.config, { weights: parts.weights, tokenizerFiles: parts.tokenizerFiles, backend: ctx.cfg.backend });
  const codec = codecFromTokenizer(HfTokenizer.fromFiles(parts.tokenizerFiles));
  ctx.emit('warning', { message: `added ${parts.initialised.length} tag token(s) to the tokenizer: ${parts.initialised.join(' ')}` });
  return { model: grown, codec, retokenize: true };
}

export async function runSftStage(ctx: StageContext, s: ResolvedSft, startDir: string, dataDir: string, outDir: string): Promise<void> {
  const ckptDir = `${outDir}.checkpoint`;
  const prior = await readTrainerState(ckptDir);
  let model: Model;
  let codec: TokenCodec;
  let retokenize: boolean;
  let step = 0;
  if (prior) {
    const loaded = await loadCheckpoint(ckptDir, ctx.cfg.backend);
    model = loaded.model;
    codec = codecFor(ctx, model).codec;
    retokenize = Boolean(prior.extra?.retokenize);
    step = prior.step;
    await truncateMetrics(ctx, s.name, step);
  } else {
    ({ model, codec, retokenize } = await withTags(ctx, startDir));
  }
  const tagIds = codec.tagIds;
  if (!tagIds) throw new Error('stage sft: the tokenizer still lacks the 8 tags as single tokens');
  const accepted = await readAccepted(dataDir);
  const seqs: TrainSequence[] = [];
  for (const a of accepted) {
    const prompt = retokenize ? codec.encode(a.prompt) : a.promptIds;
    const response = retokenize ? codec.encode(a.response) : a.responseIds;
    const eos = [...codec.eos][0];
    const ids = Int32Array.from([...prompt, ...response, ...(eos === undefined ? [] : [eos])]);
    const built = buildFromIds(ids, tagIds, { promptLength: prompt.length, scoreResponseOnly: true });
    if (!built.ok) {
      ctx.emit('warning', {
        stage: s.name,
        message: `problem ${a.problem}: the builder rejects the trajectory (${built.reason}); skipped`,
      });
      continue;
    }
    const lossMask = new Float32Array(ids.length);
    for (let t = prompt.length; t < ids.length; t++) if ((built.prev[t] as number) >= 0) lossMask[t] = 1;
    seqs.push({
      ids,
      positions: built.positions,
      prev: built.prev,
      structure: built.structure,
      oldLogprob: new Float32Array(ids.length),
      lossMask,
      specialMask: new Uint8Array(ids.length),
      advantage: 0,
    });
  }
  if (seqs.length === 0)
    ctx.emit('warning', {
      stage: s.name,
      message: 'no accepted trajectory to train on; the output is the starting model with the tags added',
    });
  const perEpoch = Math.ceil(seqs.length / s.batch);
  const total = perEpoch * s.epochs;
  ctx.emit('stage-start', { stage: s.name, kind: s.kind, index: 0, steps: total, resumedAt: step });
  const t0 = performance.now();
  for (; step < total; ) {
    throwIfAborted(ctx);
    const epoch = Math.floor(step / perEpoch);
    // Epoch 0 in file order (NPR's sequential sampler); later epochs shuffled by (seed, epoch).
    const order = seqs.map((_, i) => i);
    if (epoch > 0) {
      const rand = seededRandom(ctx.cfg.seed + epoch);
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [order[i], order[j]] = [order[j] as number, order[i] as number];
      }
    }
    const k = step % perEpoch;
    const batch = order.slice(k * s.batch, (k + 1) * s.batch).map((i) => seqs[i] as TrainSequence);
    const lr = learningRate(s.schedule, step, total);
    const tt = performance.now();
    let line: Record<string, unknown> = { stage: s.name, kind: s.kind, step: step + 1, steps: total, lr, sequences: batch.length };
    try {
      const r = await sftStep(model, batch, { ...s.optimizer, lr }, s.microTokens);
      const ms = performance.now() - tt;
      line = {
        ...line,
        loss: r.loss,
        grad_norm: r.gradNorm,
        tokens: r.tokens,
        tokens_per_s: r.tokens / (ms / 1000),
        train_ms: ms,
        native_ms: r.nativeMs,
      };
    } catch (e) {
      if (!(e instanceof NonFiniteError)) throw e;
      ctx.emit('warning', { stage: s.name, message: `step ${step + 1}: ${e.message}` });
    }
    step++;
    line.wall_s = (performance.now() - t0) / 1000;
    await writeMetrics(ctx, line);
    ctx.emit('step', line as never);
    if ((s.saveEvery > 0 && step % s.saveEvery === 0) || step === total) {
      await saveCheckpoint(ckptDir, model, { stage: s.name, step, cursor: step * s.batch, seed: ctx.cfg.seed, extra: { retokenize } });
      ctx.emit('checkpoint', { stage: s.name, step, dir: ckptDir });
    }
  }
  await model.save(outDir, { overwrite: true });
}
