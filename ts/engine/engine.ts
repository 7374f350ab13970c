/**
 * The NPR engine: native parallel generation over the paged KV cache. `generate(prompts,
 * options)` returns one Rollout per prompt; `stream(prompt, options)` yields the same request's
 * events as they happen; the Engine is a typed EventEmitter (token, fork, fork-refused, join,
 * finish, step). Several calls may run at once: they share the scheduler's continuous batch.
 *
 * Mode 'parallel' forks at every `</guideline>` the validator grants; 'ar' is the same engine
 * with forking off (the sequential baseline). Rollouts are deterministic in (seed, requestKey):
 * the sampler's RNG is keyed by (seed, request key, branch id, token index), not by batch slot.
 *
 * Deliberately not here: chat templates and prompt building (callers), rewards, the CLI.
 */
import { EventEmitter } from 'node:events';
import type TypedEmitterModule from 'typed-emitter';
import { native } from '../bindings/loader.js';
import type { NativeKv, NativeKvOptions, NativeQwen3 } from '../bindings/native.js';
import type { Branch } from './branch.js';
import { DEFAULT_FORK_RESERVE, type ForkReserve } from './budget.js';
import { NativeChooser, type TokenChooser } from './chooser.js';
import type { TokenCodec } from './codec.js';
import type { Request } from './request.js';
import { Scheduler, type Submission } from './scheduler.js';
import { EventQueue } from './stream.js';
import type { EngineEvents, GenerateOptions, Rollout, StreamEvent } from './types.js';

export interface EngineOptions {
  /** The model (Model.nativeHandle) and its vocabulary size (logits row length). */
  model: NativeQwen3;
  vocab: number;
  codec: TokenCodec;
  /** KV pool size in blocks (default 4096) and tokens per block (default 16). */
  kvBlocks?: number;
  blockTokens?: number;
  /** Most plans a fork may have (default 8). */
  maxBranches?: number;
  /** Most blocks open at a fork, itself included (default 1: no fork inside a step). */
  maxDepth?: number;
  /** Prompt tokens per request per decode call (default 256). */
  prefillChunk?: number;
  /** Requests decoded together (default 16). */
  maxActiveRequests?: number;
  /** Fork reserve (budget.ts). */
  reserve?: ForkReserve;
  /** Shared-prefix attention for branches (default true). */
  cascade?: boolean;
  /**
   * Run each decode step on the JS thread (NativeKv.decodeSync) instead of awaiting a worker
   * thread (decode), yielding to the event loop every ~10 ms of steps. Default: on for a CUDA
   * model, whose ~1 ms steps lost 0.17-0.28 ms each to the hand-off to a worker thread and back
   * on an H200 host; off for a CPU model, whose prefill chunks can hold the thread for long.
   */
  syncDecode?: boolean;
  /**
   * With syncDecode, return from each decode call once its step is launched on the device
   * (NativeKv.decodeLaunch): the step's first read (logprobs, sampling) waits for it, so the
   * host's work before that read (the requests' state machines, the sampler's arguments, copies
   * and launches) runs while the device computes. Same tokens and logprobs either way. Default:
   * on wherever syncDecode is (a CPU model's steps are synchronous anyway); true without
   * syncDecode is a RangeError.
   */
  overlapDecode?: boolean;
  /** CUDA decode options of the KV cache (NativeKvOptions: graphs, fastKernels, candidateKernels, prefetchNextWeights, tensorCoreLinears, attentionMerge, attentionPagesPerItem, attentionItemsPerRun, fusedQkWrite, attentionPrefetch, fusedChunkAttention, stepKernel, stepKernelPrefetch, stepKernelStream, stepKernelFoldMerge, stepKernelHeadFlags, stepKernelRingSlots). */
  kvOptions?: Pick<
    NativeKvOptions,
    | 'graphs'
    | 'fastKernels'
    | 'candidateKernels'
    | 'prefetchNextWeights'
    | 'tensorCoreLinears'
    | 'attentionMerge'
    | 'attentionPagesPerItem'
    | 'attentionItemsPerRun'
    | 'fusedQkWrite'
    | 'attentionPrefetch'
    | 'fusedChunkAttention'
    | 'stepKernel'
    | 'stepKernelPrefetch'
    | 'stepKernelStream'
    | 'stepKernelFoldMerge'
    | 'stepKernelHeadFlags'
    | 'stepKernelRingSlots'
  >;
  /** Replace the native sampler (scripted tests and benchmarks); called once per generate call. */
  chooser?: (options: GenerateOptions) => TokenChooser;
}

export class Engine extends (EventEmitter as new () => TypedEmitterModule.default<EngineEvents>) {
  readonly kv: NativeKv;
  readonly vocab: number;
  private readonly scheduler: Scheduler;
  private readonly options: EngineOptions;
  private requests = 0;

  constructor(options: EngineOptions) {
    super();
    this.options = options;
    this.vocab = options.vocab;
    const blockTokens = options.blockTokens ?? 16;
    this.kv = new (native().NativeKv)(options.model, { ...options.kvOptions, numBlocks: options.kvBlocks ?? 4096, blockTokens });
    const maxBranches = options.maxBranches ?? 8;
    if (!Number.isInteger(maxBranches) || maxBranches < 1) throw new RangeError(`maxBranches must be an integer >= 1 (got ${maxBranches})`);
    for (const name of ['syncDecode', 'overlapDecode'] as const)
      if (options[name] !== undefined && typeof options[name] !== 'boolean')
        throw new TypeError(`${name} must be a boolean or left out (got ${typeof options[name]})`);
    const syncDecode = options.syncDecode ?? this.kv.backend === 'cuda';
    if (options.overlapDecode === true && !syncDecode)
      throw new RangeError('overlapDecode needs syncDecode (a launched step is read on the JS thread); leave it out or set syncDecode');
    this.scheduler = new Scheduler(
      {
        kv: this.kv,
        codec: options.codec,
        vocab: options.vocab,
        blockTokens,
        maxBranches,
        maxDepth: options.maxDepth ?? 1,
        prefillChunk: options.prefillChunk ?? 256,
        maxActiveRequests: options.maxActiveRequests ?? 16,
        cascade: options.cascade ?? true,
        syncDecode,
        overlapDecode: syncDecode && (options.overlapDecode ?? true),
      },
      {
        token: (r, b, token, position, logprob, forced) =>
          this.emit('token', { request: r.number, branch: b.id, key: b.key, token, position, logprob, forced }),
        fork: (r, parent, children, labels) =>
          this.emit('fork', {
            request: r.number,
            branch: parent.id,
            children: children.map((c) => c.id),
            labels,
            anchorPosition: (children[0] as Branch).startPosition - 1,
          }),
        forkRefused: (r, b, reason, message) => this.emit('fork-refused', { request: r.number, branch: b.id, reason, message }),
        join: (r, parent, children) =>
          this.emit('join', { request: r.number, branch: parent.id, children: children.map((c) => c.id), position: parent.nextPosition }),
        finished: (_req: Request | undefined, sub: Submission, rollout: Rollout) => {
          this.emit('finish', { request: sub.number, rollout });
          sub.resolve(rollout);
        },
        step: (e) => this.emit('step', e),
      },
    );
  }

  /** One Rollout per prompt (token ids, or text encoded without special tokens), in order. */
  generate(prompts: readonly (string | readonly number[])[], options: GenerateOptions = {}): Promise<Rollout[]> {
    return Promise.all(this.submit(prompts, options).map((s) => s.done));
  }

  /** The events of one prompt's request as they happen, ending with its 'finish'. */
  stream(prompt: string | readonly number[], options: GenerateOptions = {}): AsyncIterableIterator<StreamEvent> {
    const listeners: [keyof EngineEvents, (...args: never[]) => void][] = [];
    const queue = new EventQueue<StreamEvent>(() => {
      for (const [name, fn] of listeners) this.off(name, fn as never);
    });
    const [sub] = this.submit([prompt], options, (number) => {
      const on = <K extends 'token' | 'fork' | 'fork-refused' | 'join' | 'finish'>(name: K) => {
        const fn = (e: Parameters<EngineEvents[K]>[0]) => {
          if (e.request !== number) return;
          queue.push({ type: name, ...e } as StreamEvent);
          if (name === 'finish') queue.return();
        };
        listeners.push([name, fn as never]);
        this.on(name, fn as never);
      };
      for (const name of ['token', 'fork', 'fork-refused', 'join', 'finish'] as const) on(name);
    });
    sub?.done.catch(() => queue.return());
    return queue;
  }

  /** Resolves when no request is waiting or running. */
  idle(): Promise<void> {
    return this.scheduler.idle();
  }

  private submit(
    prompts: readonly (string | readonly number[])[],
    options: GenerateOptions,
    subscribe?: (requestNumber: number) => void,
  ): { done: Promise<Rollout> }[] {
    const settings = {
      mode: options.mode ?? 'parallel',
      maxNewTokens: options.maxNewTokens ?? 1024,
      stepRepetitionPenalty: options.stepRepetitionPenalty ?? 1.02,
      reserve: this.options.reserve ?? DEFAULT_FORK_RESERVE,
      vocab: this.vocab,
    };
    if (settings.mode !== 'parallel' && settings.mode !== 'ar')
      throw new RangeError(`mode must be 'parallel' or 'ar' (got '${settings.mode}')`);
    if (!Number.isInteger(settings.maxNewTokens) || settings.maxNewTokens < 0)
      throw new RangeError(`maxNewTokens must be an integer >= 0 (got ${settings.maxNewTokens})`);
    const chooser =
      this.options.chooser?.(options) ??
      new NativeChooser({
        temperature: options.temperature ?? 1,
        topK: options.topK ?? 0,
        topP: options.topP ?? 1,
        minP: options.minP ?? 0,
        seed: options.seed ?? 0,
      });
    const ids = prompts.map((p, i) => {
      const list = typeof p === 'string' ? this.options.codec.encode(p) : Array.from(p);
      if (list.length === 0) throw new RangeError(`prompt ${i} has no tokens: the engine needs at least one`);
      for (const t of list)
        if (!Number.isInteger(t) || t < 0 || t >= this.vocab)
          throw new RangeError(`prompt ${i}: token ${t} is outside the vocabulary (${this.vocab})`);
      return list;
    });
    return ids.map((prompt, index) => {
      const number = this.requests++;
      subscribe?.(number);
      let resolve!: (r: Rollout) => void;
      let reject!: (e: unknown) => void;
      const done = new Promise<Rollout>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.scheduler.submit({
        number,
        index,
        rngKey: (options.requestKey ?? 0) + index,
        prompt,
        settings,
        chooser,
        signal: options.signal,
        resolve,
        reject,
      });
      return { done };
    });
  }
}
