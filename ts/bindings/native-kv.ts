/**
 * The KV cache and decode surface of the native addon (NativeKv, its options, stats and the
 * sampler's argument shapes), part of the typed surface native.ts re-exports. Same conventions:
 * typed arrays written in place, options validated by the addon (TypeError / RangeError naming
 * the argument).
 */

/** Answer of a KV-cache call that may be refused; nothing changed unless 'ok'. */
export type KvAnswer = 'ok' | 'no-blocks' | 'no-budget';

/** One decode step's inputs: the sequences and their new tokens (append them to the cache first). */
export interface NativeDecodeBatch {
  /** (S) sequence ids. */
  seqs: Int32Array;
  /** (S + 1) offsets of each sequence's new tokens in ids/positions. */
  cuNew: Int32Array;
  ids: Int32Array;
  positions: Int32Array;
  /** Shared-prefix (cascade) attention for decode steps; default true. */
  cascade?: boolean;
}

/** Where NativeKv's pages live and how its decode steps ran (CUDA graphs; zeros on the CPU). */
export interface NativeKvDeviceStats {
  eagerSteps: number;
  graphCaptures: number;
  graphReplays: number;
  /** Why graph replay was turned off ('' when it was not). */
  graphError: string;
  /** Steps launched as programmatic dependent launches (options.candidateKernels). */
  candidateSteps: number;
  /** Steps run as one persistent kernel (options.stepKernel), and that kernel's CTAs. */
  kernelSteps: number;
  kernelGrid: number;
  /** Whether the last one-kernel step streamed its weights (options.stepKernelStream, on sm_90). */
  kernelStreamed: boolean;
  /** The slots of that step's ring (options.stepKernelRingSlots at most; 0: it did not stream). */
  kernelRingSlots: number;
  /** Why options.stepKernel was turned off ('' when it was not): it could not launch here. */
  kernelError: string;
  /** options.stepKernelTiming: device ms per phase of the one-kernel steps, over kernelTimedSteps. */
  kernelPhaseMs: Record<string, number>;
  kernelTimedSteps: number;
  /** Steps timed op by op (options.profile). */
  profiledSteps: number;
  /** Device milliseconds per op kind summed over the profiled steps. */
  opMs: Record<string, number>;
  /** Device milliseconds of every step's launches (graph or eager), summed over deviceTimedSteps. */
  deviceMs: number;
  deviceTimedSteps: number;
  /**
   * Host milliseconds of the decode calls so far (any backend), summed over `calls`: queued (the
   * call to its worker thread's start), prep (CUDA: checks, plan and uploads before the
   * launches), launch (CUDA: the graph launch or the eager kernels' enqueueing), wait (CUDA:
   * waiting for the device, on the worker or, with decodeSync, on the JS thread; none for
   * decodeLaunch, whose wait is in the step's first read), resolve (the worker's end to the
   * promise settling). decodeSync and decodeLaunch calls add no queue or resolve time.
   */
  hostMs: { calls: number; queueMs: number; prepMs: number; launchMs: number; waitMs: number; resolveMs: number };
}

/**
 * Options of `new NativeKv`: the pool size as numBlocks, or (CUDA models) as budgetBytes or a
 * memoryFraction of the device memory free now. graphs (CUDA, default true): replay one-token
 * decode steps as CUDA graphs. fastKernels (CUDA, default true): the decode-specialised kernels
 * (stacked projections, skinny linear layers, fused q/k norm + RoPE + KV write, tensor-core
 * attention); false runs the generic ops the training forward runs. profile (CUDA, default
 * false): time every op of each step (graphs off) into deviceStats().opMs.
 */
export interface NativeKvOptions {
  numBlocks?: number;
  budgetBytes?: number;
  memoryFraction?: number;
  /** Tokens per block (default 16). */
  blockTokens?: number;
  graphs?: boolean;
  fastKernels?: boolean;
  profile?: boolean;
  /**
   * CUDA, default 'one-row': the decode layer's kernels as programmatic dependent launches (each
   * launched while the one before runs, the linear layers prefetching their weights into L2) in
   * the graph steps of one sequence; true: in every step; false: in none. Same bits either way
   * (a step stays batch invariant). The decode bench's runs on an H200 and an H100 put them
   * 4-9% ahead in tokens/s at batch 1 and 12-14% behind in device time at 8 branches.
   */
  candidateKernels?: boolean | 'one-row';
  /**
   * CUDA, default false: each of the decode's skinny linear layers prefetches the next one's
   * weights into L2 as it starts (q|k|v, o-proj, gate|up, down, the next layer's q|k|v; the last
   * down the head's first rows), so DRAM keeps streaming across the attention and the gaps
   * between kernels. Same bits; on an H200 no faster (1.167 vs 1.134 ms a batch-1 step).
   */
  prefetchNextWeights?: boolean;
  /**
   * CUDA, default true: the decode's skinny linear layers on tensor cores (one mma folds 8
   * weight rows against every batch row, so 8 branches cost about what 1 does); false runs them
   * on CUDA cores (~10% faster at batch 1, ~15% slower at 8 branches on an H100). Other bits
   * either way (each batch invariant).
   */
  tensorCoreLinears?: boolean;
  /**
   * CUDA, default 'staged': how the decode attention merges each query's split-KV partial
   * states: with their loads issued together through shared memory, or 'serial' (one partial
   * at a time, the reference). Same bits either way.
   */
  attentionMerge?: 'staged' | 'serial';
  /**
   * CUDA, default 4 (1..4096): the decode attention's split-KV: a work item (one thread block a
   * kv head) reads at least this many KV pages of a sequence or of a shared prefix. With
   * `attentionItemsPerRun` it sets how many partial states each query merges; other values give
   * other bits (the split changes the sums' order), each batch invariant.
   */
  attentionPagesPerItem?: number;
  /**
   * CUDA, default 16 (1..256): a sequence's run of KV pages (or a fork's shared prefix) is cut
   * into at most this many work items, each of at least `attentionPagesPerItem` pages.
   */
  attentionItemsPerRun?: number;
  /**
   * CUDA, default true: one-token steps on the tensor-core attend kernel (bf16) normalise and
   * rotate q and write the new K and V inside that kernel, one launch a layer fewer; false runs
   * the q/k norm + RoPE + KV write kernel before it. Same bits.
   */
  fusedQkWrite?: boolean;
  /**
   * CUDA, default false: where that attend kernel runs as a programmatic dependent launch
   * (`candidateKernels`), each of its work items first prefetches its keys and values into L2,
   * while the q|k|v projection before it still streams its weights. Same bits. Not yet timed on
   * a GPU.
   */
  attentionPrefetch?: boolean;
  /**
   * CUDA, default true: steps of several new tokens a sequence (a prompt's prefill chunk, a
   * fork's children taking their forced tokens) attend among those tokens with the training
   * forward's fused parallel attention (causal within each sequence's chunk) and through the
   * KV pages only to the keys from before the step, the two merged by log-sum-exp; false: every
   * row reads its keys through the pages. Other bits (float rounding).
   */
  fusedChunkAttention?: boolean;
  /**
   * CUDA, default false: one-token steps of at most 8 sequences (bf16, head dim 128) as one
   * persistent kernel, its phases separated by grid barriers instead of ~200 kernel boundaries;
   * the same bits as the default kernels. Other steps take the layer-by-layer path. Off until a
   * GPU has measured it.
   */
  stepKernel?: boolean;
  /** CUDA, default true: the step kernel's L2 prefetch of each phase's next weights. */
  stepKernelPrefetch?: boolean;
  /**
   * CUDA, default true: on sm_90 devices (H100, H200) the step kernel streams its weights through
   * a ring of shared memory with bulk copies that run ahead across its phases and barriers, in
   * place of the prefetch. Same bits.
   */
  stepKernelStream?: boolean;
  /**
   * CUDA, default true: the step kernel merges each query's split-KV attention states in the CTA
   * that finishes the query's last share (an arrival count), in place of a merge phase and its
   * grid barrier. Same bits.
   */
  stepKernelFoldMerge?: boolean;
  /**
   * CUDA, default true: the step kernel's attention waits for its own kv head's q|k|v tiles
   * (per-head readiness counts) instead of a grid barrier after the whole projection. Same bits.
   */
  stepKernelHeadFlags?: boolean;
  /**
   * CUDA, default 12 (2..12): the most slots the step kernel's weight stream may keep in flight
   * in its ring of shared memory (as many as fit, up to this). Same bits; the benchmark's A/B of
   * how far ahead the stream runs.
   */
  stepKernelRingSlots?: number;
  /**
   * CUDA, default false: time each phase of the one-kernel steps (device clock at its grid
   * barriers) into deviceStats().kernelPhaseMs, with where its CTAs' time went (`cta_wait_ring`,
   * by phase `cta_wait_ring_<phase>`, `cta_wait_grid`, by phase `cta_wait_grid_<phase>`, their
   * `_max`, `cta_work`); every step
   * then waits for the device.
   */
  stepKernelTiming?: boolean;
}

/** The paged KV cache of one model (bookkeeping + pages where the model is) and its decode step. */
export interface NativeKv {
  readonly backend: 'cpu' | 'cuda';
  deviceStats(): NativeKvDeviceStats;
  /** Device-to-device copy bandwidth (GB/s, bytes read + written) over `megabytes`; 0 on the CPU. */
  deviceCopyBandwidth(megabytes: number): number;
  readonly freeBlocks: number;
  readonly numBlocks: number;
  readonly pageBytes: number;
  openRequest(maxNewTokens: number): number;
  closeRequest(request: number): void;
  createSequence(request: number): number;
  append(seq: number, tokens: number, generated: boolean): KvAnswer;
  fork(seq: number, n: number): { answer: KvAnswer; children: Int32Array };
  join(seq: number): void;
  free(seq: number): void;
  length(seq: number): number;
  checkInvariants(): void;
  /**
   * Computes the (S, vocab) next-token logits after each sequence's last new token, writes them
   * to `logits` when given, and keeps them where the model is (device memory for a CUDA model)
   * until the next decode for logprobs / sample / logitsRows.
   */
  decode(batch: NativeDecodeBatch, logits?: Float32Array | null): Promise<void>;
  /**
   * `decode` on the calling (JS) thread: no hand-off to a worker thread and back, at the price of
   * the thread waiting for the step. Same checks, results and errors (thrown).
   */
  decodeSync(batch: NativeDecodeBatch, logits?: Float32Array | null): void;
  /**
   * `decodeSync` that, on a CUDA model, returns once the step is enqueued instead of waiting for
   * it: the host's work until the step's first read (bookkeeping, the sampler's arguments, copies
   * and launches) overlaps the device's. Everything later on the device is queued behind the
   * step. The first logprobs / sample / logitsRows call waits for it (a device fault there may be
   * the step's, and its message says so); a decode with no read in between waits for it first.
   * No logits copy (use decodeSync). On a CPU model, the same as decodeSync.
   */
  decodeLaunch(batch: NativeDecodeBatch): void;
  /** out[i] = log-softmax(row logitRows[i] of the last step)[tokens[i]], computed where the logits are. */
  logprobs(logitRows: Int32Array, tokens: Int32Array, out: Float32Array): void;
  /** The sampler (as `sample`) over rows logitRows[r] of the last step, where the logits are. */
  sample(logitRows: Int32Array, rows: NativeSampleRows, params: NativeSamplingParams, out: NativeSampleOut): void;
  /** Copies of rows logitRows of the last step's logits: out (logitRows.length, vocab). */
  logitsRows(logitRows: Int32Array, out: Float32Array): void;
}

/** Sampling parameters of `sample` (defaults: temperature 1, no truncation, seed 0). */
export interface NativeSamplingParams {
  /** 0: greedy. */
  temperature?: number;
  /** 0: off. */
  topK?: number;
  /** 1: off. */
  topP?: number;
  /** 0: off. */
  minP?: number;
  /** Integer in [0, 2^53). */
  seed?: number;
}

/** The rows of one `sample` call: R = request.length; the RNG is keyed by (seed, request, branch, index). */
export interface NativeSampleRows {
  request: Int32Array;
  branch: Int32Array;
  index: Int32Array;
  /** (R + 1) offsets into penaltyTokens: the tokens each row's repetition penalty applies to. */
  penaltyOffsets?: Int32Array;
  penaltyTokens?: Int32Array;
  /** (R) 1 = off. */
  repetitionPenalty?: Float32Array;
}

/** Written by `sample`, R entries each. */
export interface NativeSampleOut {
  tokens: Int32Array;
  /** Under log-softmax of the raw logits (what RL needs). */
  logprob: Float32Array;
  /** Under the processed, truncated distribution (0 when greedy). */
  logprobSampling: Float32Array;
}
