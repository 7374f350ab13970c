/**
 * Continuous batching: requests join as the KV pool admits them and leave when they finish;
 * every step makes ONE decode call for all branches of all active requests (a prompt chunk of
 * up to `prefillChunk` tokens for a request still in prefill, one token for every other
 * branch), then hands each logits row to its request's state machine and makes one chooser
 * call per chooser for the rows that need a chosen token. The logits are never copied whole:
 * the step's forced-token logprobs are fetched in one call and choosers sample where the logits
 * are (StepLogits).
 *
 * Admission reserves the most KV blocks a request can hold (budget.ts) so that appends inside
 * a request cannot run the pool dry; if one ever does, that request alone finishes with
 * 'kv-exhausted'. Finished and aborted requests are closed between decode calls (never while
 * one runs), which returns all their blocks.
 *
 * Deliberately not here: what a logits row means (request.ts), events and the public API
 * (engine.ts).
 */
import type { NativeKv } from '../bindings/native.js';
import { PreBranchValidator } from '../parallel/validator.js';
import { Branch } from './branch.js';
import { maxBlocksPerRequest } from './budget.js';
import type { ChooseRow, TokenChooser } from './chooser.js';
import type { TokenCodec } from './codec.js';
import { Request, type RequestSettings, type RequestSink } from './request.js';
import { assembleRollout } from './rollout.js';
import { StepLogits } from './step-logits.js';
import type { Rollout, StepEvent } from './types.js';

export interface SchedulerConfig {
  kv: NativeKv;
  codec: TokenCodec;
  vocab: number;
  blockTokens: number;
  maxBranches: number;
  maxDepth: number;
  prefillChunk: number;
  maxActiveRequests: number;
  cascade: boolean;
  /**
   * Decode on the JS thread (kv.decodeSync), yielding to the event loop once SYNC_YIELD_MS of
   * steps have run since the last yield; otherwise each step is an awaited kv.decode.
   */
  syncDecode: boolean;
  /**
   * With syncDecode: launch each step (kv.decodeLaunch) and let its first read wait for it, so
   * that the host's work in between (the state machines, the sampler's arguments and launches)
   * runs while the device computes.
   */
  overlapDecode: boolean;
}

/** Longest run of synchronous decode steps before the scheduler yields to the event loop. */
const SYNC_YIELD_MS = 10;

/** A prompt waiting for (or holding) a slot. */
export interface Submission {
  number: number;
  index: number;
  rngKey: number;
  prompt: readonly number[];
  settings: RequestSettings;
  chooser: TokenChooser;
  signal: AbortSignal | undefined;
  resolve: (r: Rollout) => void;
  reject: (e: unknown) => void;
}

interface Active {
  sub: Submission;
  req: Request;
  blocks: number;
  /** Its KV request is closed (its rollout being handed on). */
  closed?: boolean;
}

export class Scheduler {
  private lastYield = performance.now();
  private waiting: Submission[] = [];
  private active: Active[] = [];
  private reserved = 0;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly config: SchedulerConfig,
    private readonly sink: RequestSink & {
      finished(req: Request | undefined, sub: Submission, r: Rollout): void;
      step(e: StepEvent): void;
    },
  ) {}

  submit(sub: Submission): void {
    this.waiting.push(sub);
    this.loop ??= this.run().finally(() => {
      this.loop = undefined;
    });
  }

  /** Resolves when nothing is waiting or running. */
  async idle(): Promise<void> {
    while (this.loop) await this.loop;
  }

  private async run(): Promise<void> {
    try {
      while (this.waiting.length > 0 || this.active.length > 0) {
        this.dropAbortedWaiting();
        this.admit();
        for (const a of this.active) if (a.sub.signal?.aborted) a.req.finish('abort');
        this.closeFinished();
        if (this.active.length === 0) continue;
        await this.step();
        this.closeFinished();
      }
    } catch (e) {
      // A native failure (not a refusal), or a throwing 'finish' listener, ends every request;
      // their KV is returned first. A close that fails too (the model kept busy by another call)
      // leaves that request's blocks, not the other requests unsettled.
      for (const a of this.active) {
        a.req.finish('malformed', { reason: 'kv-refused', branch: 0, message: String(e) });
        if (!a.closed) {
          try {
            this.config.kv.closeRequest(a.req.kvRequest);
          } catch {
            // e is the error to report; this one is its consequence
          }
        }
        a.sub.reject(e);
      }
      for (const s of this.waiting) s.reject(e);
      this.active = [];
      this.waiting = [];
      this.reserved = 0;
    }
  }

  private dropAbortedWaiting(): void {
    const keep: Submission[] = [];
    for (const s of this.waiting) {
      if (!s.signal?.aborted) {
        keep.push(s);
        continue;
      }
      const validator = new PreBranchValidator();
      const trunk = new Branch(0, '', null, null, -1, validator, s.prompt.length, 0);
      const rollout = assembleRollout({
        index: s.index,
        mode: s.settings.mode,
        prompt: s.prompt,
        trunk,
        branches: [trunk],
        finishReason: 'abort',
        structureFaults: [],
        fault: undefined,
        wallMs: 0,
      });
      this.sink.finished(undefined, s, rollout);
    }
    this.waiting = keep;
  }

  private admit(): void {
    const { kv, blockTokens, maxBranches, codec } = this.config;
    while (this.waiting.length > 0 && this.active.length < this.config.maxActiveRequests) {
      const s = this.waiting[0] as Submission;
      const need = maxBlocksPerRequest(s.prompt.length, s.settings.maxNewTokens, blockTokens, maxBranches);
      if (this.active.length > 0 && this.reserved + need > kv.numBlocks) return;
      this.waiting.shift();
      const kvRequest = kv.openRequest(s.settings.maxNewTokens);
      const seq = kv.createSequence(kvRequest);
      const validator = new PreBranchValidator({
        maxBranches,
        maxDepth: this.config.maxDepth,
        ...(codec.tagIds ? { tagIds: codec.tagIds } : {}),
      });
      const req = new Request(s.number, s.index, s.rngKey, s.prompt, kvRequest, seq, validator, s.settings, codec, kv, this.sink);
      this.active.push({ sub: s, req, blocks: need });
      this.reserved += need;
    }
  }

  private closeFinished(): void {
    const still: Active[] = [];
    for (const a of this.active) {
      const r = a.req;
      if (!r.finished) {
        if (!r.branches.some((b) => b.wantsDecode))
          r.finish('malformed', { reason: 'validator', branch: 0, message: 'no branch can make progress' });
        else {
          still.push(a);
          continue;
        }
      }
      this.config.kv.closeRequest(r.kvRequest);
      a.closed = true;
      this.reserved -= a.blocks;
      const rollout = assembleRollout({
        index: r.index,
        mode: r.settings.mode,
        prompt: r.prompt,
        trunk: r.trunk,
        branches: r.branches,
        finishReason: r.finishReason ?? 'malformed',
        structureFaults: r.structureFaults(),
        fault: r.fault,
        wallMs: performance.now() - r.startedAt,
        decode: (ids) => this.config.codec.decode(ids),
      });
      this.sink.finished(r, a.sub, rollout);
    }
    this.active = still;
  }

  private async step(): Promise<void> {
    const { kv, vocab: V, prefillChunk } = this.config;
    const fed: { a: Active; b: Branch; n: number }[] = [];
    for (const a of this.active) {
      for (const b of a.req.branches) {
        if (a.req.finished || !b.wantsDecode) continue;
        const n = Math.min(b.pending.length, prefillChunk);
        const generated = b.pending.slice(0, n).filter((p) => p.generated).length;
        let answer = generated > 0 ? kv.append(b.seq, generated, true) : 'ok';
        if (answer === 'ok' && n - generated > 0) answer = kv.append(b.seq, n - generated, false);
        if (answer !== 'ok') {
          a.req.finish(answer === 'no-budget' ? 'budget' : 'kv-exhausted', {
            reason: 'kv-refused',
            branch: b.id,
            message: `the KV cache answered '${answer}' to branch ${b.key}`,
          });
          continue;
        }
        fed.push({ a, b, n });
      }
    }
    const batch = fed.filter((f) => !f.a.req.finished);
    if (batch.length === 0) return;
    const S = batch.length;
    const cuNew = new Int32Array(S + 1);
    batch.forEach((f, i) => {
      cuNew[i + 1] = (cuNew[i] as number) + f.n;
    });
    const N = cuNew[S] as number;
    const ids = new Int32Array(N);
    const positions = new Int32Array(N);
    batch.forEach((f, i) => {
      const at = cuNew[i] as number;
      f.b.pending.slice(0, f.n).forEach((p, j) => {
        ids[at + j] = p.token;
        positions[at + j] = p.position;
      });
    });
    const t0 = performance.now();
    // The logits stay where the model is: only logprobs and sampled tokens come back.
    const step = { seqs: Int32Array.from(batch, (f) => f.b.seq), cuNew, ids, positions, cascade: this.config.cascade };
    if (this.config.overlapDecode) kv.decodeLaunch(step);
    else if (this.config.syncDecode) kv.decodeSync(step);
    else await kv.decode(step);
    const t1 = performance.now();
    if (this.config.syncDecode && t1 - this.lastYield > SYNC_YIELD_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve)); // timers and I/O get their turn
      this.lastYield = performance.now();
    }
    const logits = new StepLogits(kv, S, V);
    const wanted: [number, number][] = [];
    batch.forEach((f, i) => {
      if (f.b.pending.length > f.n) return;
      for (const token of f.a.req.logprobsWanted(f.b)) wanted.push([i, token]);
    });
    logits.prefetch(wanted);

    const choose = new Map<TokenChooser, { a: Active; b: Branch; row: number }[]>();
    batch.forEach((f, i) => {
      f.b.pending.splice(0, f.n);
      if (f.b.pending.length > 0) return; // prompt still in prefill: these logits predict nothing
      if (!f.a.req.afterDecode(f.b, logits, i)) return;
      const list = choose.get(f.a.sub.chooser) ?? [];
      list.push({ a: f.a, b: f.b, row: i });
      choose.set(f.a.sub.chooser, list);
    });
    for (const [chooser, list] of choose) {
      const rows: ChooseRow[] = list.map(({ a, b, row }) => {
        const pen = a.req.penalty(b);
        return {
          row,
          request: a.req.rngKey,
          branch: b.id,
          index: b.tokens,
          key: b.key,
          choiceIndex: b.choices,
          penaltyTokens: pen.tokens,
          repetitionPenalty: pen.value,
        };
      });
      const choices = chooser.choose(rows, logits);
      list.forEach(({ a, b }, r) => {
        const c = choices[r];
        if (c) a.req.accept(b, c.token, c.logprob, c.logprobSampling);
      });
    }
    this.sink.step({ sequences: S, tokens: N, ms: performance.now() - t0, decodeMs: t1 - t0 });
  }
}
