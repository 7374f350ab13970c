/**
 * The whole surface of the native addon, typed in one place. Nothing else in the package
 * declares what the addon exports; every call into C++ goes through these signatures.
 *
 * Conventions: bulk data crosses as typed arrays written in place where the caller knows the
 * size; option objects are validated by the addon, which throws TypeError (wrong type) or
 * RangeError (bad size or value) naming the argument.
 */

/** SIMD instruction level of the CPU kernels. */
export type SimdLevel = 'scalar' | 'avx2' | 'avx512';

export interface CpuInfo {
  /** Threads in the CPU pool. */
  threads: number;
  /** SIMD level the kernels use now. */
  simd: SimdLevel;
  /** Best SIMD level this CPU supports. */
  simdBest: SimdLevel;
  /** Cores this process may run on. */
  cores: number;
}

export interface CudaInfo {
  /** The CUDA sources are compiled into this addon. */
  compiled: boolean;
  /** Devices that answered. */
  devices: number;
  /** Why no device answers (a CUDA error name such as cudaErrorNoDevice), or null. */
  reason: string | null;
  /** CUDA runtime version as an integer (13000 = 13.0); 0 when not compiled. */
  runtimeVersion: number;
  deviceName: string | null;
}

export interface BackendsInfo {
  cpu: CpuInfo;
  cuda: CudaInfo;
}

export interface BuildInfo {
  /** Built with -march=native (NPR_NATIVE=on). */
  native: boolean;
  compiler: string;
  /** CUDA architectures compiled, e.g. "80,90"; null without CUDA. */
  cudaArchitectures: string | null;
}

/** Options of a GEMM: C (m, n) = alpha * op(A) (m, k) * op(B) (k, n) + beta * C, row-major. */
export interface GemmOptions {
  m: number;
  n: number;
  k: number;
  /** A is stored (k, m) and used transposed. Default false: A stored (m, k). */
  transA?: boolean;
  /** B is stored (n, k) and used transposed (a linear layer's weight). Default false. */
  transB?: boolean;
  /** Leading dimensions; default the packed row length. */
  lda?: number;
  ldb?: number;
  ldc?: number;
  /** Default 1. */
  alpha?: number;
  /** Default 0: C is overwritten without being read. */
  beta?: number;
  /** Default 'cpu'. 'cuda' copies to device 0, runs there and copies C back. */
  backend?: 'cpu' | 'cuda';
  /** 'reference' runs the plain triple loop (double accumulation): the oracle. */
  impl?: 'fast' | 'reference';
}

/**
 * Options of parallelAttention: the fused block-sparse attention over a packed batch.
 * q, out: (T, heads, headDim); k, v: (T, kvHeads, headDim); lse: (T, heads); all Float32Array.
 */
export interface ParallelAttentionOptions {
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Score scale; default 1 / sqrt(headDim). */
  scale?: number;
  /** (sequences + 1) packed sequence boundaries, 0 first, T last. */
  cuSeqlens: Int32Array;
  /** Levels of branch paths (0: plain causal); block and step then hold T * depth entries. */
  depth?: number;
  block?: Int32Array;
  step?: Int32Array;
  /** Plan as plain causal attention, ignoring the branch paths (skipping disabled). */
  dense?: boolean;
  /** Also run backward: dout and dq like q, dk and dv like k (written). */
  backward?: { dout: Float32Array; dq: Float32Array; dk: Float32Array; dv: Float32Array };
}

/** What parallelAttention planned: (q, k) pairs, 64 x 64 tiles on or below the diagonal, bytes. */
export interface ParallelAttentionInfo {
  visiblePairs: number;
  causalPairs: number;
  tilesCausal: number;
  tilesFull: number;
  tilesPartial: number;
  tilesSkipped: number;
  planBytes: number;
  /** Scratch the run allocated (per-thread tiles plus packed K/V and, for backward, q/dO rows). */
  workspaceBytes: number;
}

/**
 * Options of attentionCudaTime: the CUDA block-sparse attention timed on device 0 with CUDA
 * events, on inputs the addon fills with a counter hash (bench/peers/attention_cuda.py makes the
 * same ones). The token count is the last entry of cuSeqlens.
 */
export interface AttentionCudaTimeOptions {
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Score scale; default 1 / sqrt(headDim). */
  scale?: number;
  cuSeqlens: Int32Array;
  depth?: number;
  block?: Int32Array;
  step?: Int32Array;
  /** Plan as plain causal attention (skipping disabled). */
  dense?: boolean;
  /** Element type of q, k, v, out and gradients; default 'bf16'. */
  dtype?: 'bf16' | 'fp32';
  /** Timed runs of each pass (default 20) after `warmup` untimed ones (default 3). */
  iters?: number;
  warmup?: number;
  /** Also time forward + backward; default true. */
  backward?: boolean;
  /** The context's deterministic switch; default true. */
  deterministic?: boolean;
  /**
   * The Hopper (wgmma) kernels where the build and device can run them (sm_90, bf16, head dim
   * 64/128; the forward needs an even GQA group): 1 the pipelined one-CTA-an-SM forward, 2 the
   * two-CTA one, 3 the pipelined one loading K/V two tiles ahead, 4 that with Q held in
   * registers, 5 and 6 variants 1 and 4 with the two warpgroups ping-ponging (half a tile
   * apart), 7 the warp-specialised forward (K/V by tensor-map copies from a producer warp into
   * a ring of mbarrier-tracked buffers), 8 that ping-ponging and 9 variant 5 with its K/V by
   * tensor-map copies from thread 0 (no producer warp), 10 the warp-specialised forward over
   * 128 keys a step (a producer warpgroup handing its registers to the consumers; its own sums,
   * deterministic), 11 that ping-ponging, each with the backward's
   * deterministic dQ kernel warp-specialised the same way and its dK/dV kernel's Q and dO by
   * tensor-map copies; 0 (default): the mma.sync kernels.
   */
  wgmma?: 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 | 11;
  /** The wgmma backward's dK/dV kernel: 64 keys a CTA (default) or 128 (two warpgroups; head dim 128). */
  wgmmaKeys?: 64 | 128;
  /** Tokens whose rows of out, dq (heads * headDim each) and dk, dv (kvHeads * headDim) come back. */
  sampleTokens?: Int32Array;
}

/** Device times (ms, median and min of `iters`), the plan's statistics, and sanity counts. */
export interface AttentionCudaTiming extends Omit<ParallelAttentionInfo, 'workspaceBytes'> {
  fwdMs: number;
  fwdMsMin: number;
  fwdBwdMs: number | null;
  fwdBwdMsMin: number | null;
  iters: number;
  /** The allocator's peak while timing (inputs, outputs, plan, scratch). */
  devicePeakBytes: number;
  /** Non-finite elements of out and lse after the last forward, of dq, dk, dv after backward. */
  nonFiniteOut: number;
  nonFiniteGrads: number;
  /** Which forward kernel ran. */
  forwardKernel: 'wgmma' | 'mma';
  samples: { out: Float32Array; dq?: Float32Array; dk?: Float32Array; dv?: Float32Array } | null;
}

export interface OpenBlasInfo {
  available: boolean;
  library: string | null;
  /** The kernel set OpenBLAS chose (OPENBLAS_CORETYPE or its own detection). */
  coreName: string | null;
  reason: string | null;
}

/** Hyper-parameters of a Qwen3 decoder as the addon takes them. */
export interface NativeQwen3Config {
  vocab: number;
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  rmsEps?: number;
  ropeTheta?: number;
  tied?: boolean;
}

export interface NativeParamInfo {
  name: string;
  shape: number[];
  offset: number;
  numel: number;
}

/** A packed batch as the addon takes it (see ts/model/batch.ts). */
export interface NativeBatch {
  ids: Int32Array;
  positions: Int32Array;
  prev: Int32Array;
  cuSeqlens: Int32Array;
  depth?: number;
  block?: Int32Array;
  step?: Int32Array;
}

/** Where a NativeQwen3 lives and computes ('auto' is resolved in TypeScript before this). */
export interface NativeQwen3Options {
  /** Default 'cpu'. */
  backend?: 'cpu' | 'cuda';
  /** 'bf16' (CUDA only): bf16 compute copy and activations, fp32 masters. Default 'fp32'. */
  precision?: 'fp32' | 'bf16';
  /** Bit-identical backward (default true); false: CUDA bf16 sums attention dQ with atomics. */
  deterministic?: boolean;
  /**
   * 'wgmma' (default): the attention on Hopper's warpgroup MMA where it can run (sm_90, bf16),
   * warp-specialised with tensor-map copies, the forward over 128 keys a step; 'wgmma-64': its
   * forward over 64 keys a step (the default before); 'wgmma-cp': 'wgmma-64''s MMAs with cp.async
   * loads and a CTA barrier a tile (the same bits as 'wgmma-64'); 'wgmma-k128': 'wgmma' with the
   * two-warpgroup backward kernels (head dim 128); 'mma': mma.sync.
   */
  attentionKernels?: 'mma' | 'wgmma' | 'wgmma-64' | 'wgmma-cp' | 'wgmma-k128';
}

/** One Qwen3 model in native memory (fp32 weights, grads, AdamW moments). */
export interface NativeQwen3 {
  readonly paramCount: number;
  readonly backend: 'cpu' | 'cuda';
  readonly precision: 'fp32' | 'bf16';
  readonly deterministic: boolean;
  paramTable(): NativeParamInfo[];
  setParam(name: string, data: Float32Array): void;
  getParam(name: string, out: Float32Array): void;
  getGrad(name: string, out: Float32Array): void;
  /** Writes logprob (and entropy) per token in place; one call at a time per model. */
  forward(batch: NativeBatch, outputs: { logprob: Float32Array; entropy?: Float32Array }): Promise<void>;
  /** Accumulates d(sum dlogprob * logprob) into the gradients; needs the last forward. */
  backward(dlogprob: Float32Array): Promise<void>;
  zeroGrad(): void;
  optimizerStep(options: { lr: number; beta1?: number; beta2?: number; eps?: number; weightDecay?: number; clipNorm?: number }): {
    gradNorm: number;
    step: number;
  };
  memoryBytes(): number;
}

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

/** Inputs of `policyLoss`, T tokens in S packed sequences. */
export interface NativePolicyLossInputs {
  /** (T) log pi_theta(token) of the current forward. */
  logprob: Float32Array;
  /** (T) log pi_old(token); read by 'ppo-clip' only (PAPO is strictly on-policy). */
  oldLogprob?: Float32Array;
  /** (T) advantage per token (a sequence's advantage repeated over its tokens). */
  advantages: Float32Array;
  /** (T) 0/1 weight: which tokens the loss counts. */
  lossMask: Float32Array;
  /** (T) 1 for the special (tag) tokens. */
  specialMask?: Uint8Array;
  /** (S + 1) sequence boundaries (aggregation by sequence). */
  cuSeqlens: Int32Array;
}

/** Options of `policyLoss` (defaults: 'ppo-clip', 'token-mean', 0.2 / 0.28, dual clip 10, no exemption). */
export interface NativePolicyLossOptions {
  kind?: 'ppo-clip' | 'papo';
  aggregation?: 'token-mean' | 'seq-mean-token-sum' | 'seq-mean-token-mean';
  epsLow?: number;
  epsHigh?: number;
  /** Dual-clip bound c for negative advantages; <= 1 turns it off. */
  clipC?: number;
  /** 'ppo-clip': special tokens are not eps-clipped. */
  exemptSpecial?: boolean;
  /** > 0: divide by this instead of the local token (or sequence) count (gradient accumulation). */
  denominator?: number;
  /** |logprob - oldLogprob| is clamped to this before exp (default 20). */
  logRatioLimit?: number;
}

/** Returned by `policyLoss`; fractions are over masked tokens. */
export interface NativePolicyLossMetrics {
  loss: number;
  tokens: number;
  specialTokens: number;
  /** Tokens whose gradient the eps clip zeroed. */
  clipFrac: number;
  /** Tokens whose gradient the dual clip zeroed. */
  clipFracLower: number;
  /** Special tokens whose gradient any clip zeroed. */
  specialClipFrac: number;
  ratioMean: number;
  ratioMin: number;
  ratioMax: number;
  /** mean(oldLogprob - logprob). */
  approxKl: number;
}

export interface NativeAddon {
  /** Version of this interface; bumped when a signature changes. */
  readonly abiVersion: number;
  backends(): BackendsInfo;
  /** Resizes the CPU pool and/or changes the SIMD level; returns the new state. */
  configure(options: { threads?: number; simd?: SimdLevel }): BackendsInfo;
  buildInfo(): BuildInfo;
  /** c: Float32Array written in place; a, b: Float32Array inputs (must not overlap c). */
  gemm(c: Float32Array, a: Float32Array, b: Float32Array, options: GemmOptions): void;
  /** The same on a worker thread; do not touch the arrays until the promise settles. */
  gemmAsync(c: Float32Array, a: Float32Array, b: Float32Array, options: GemmOptions): Promise<void>;
  /** FP32 GFLOP/s one core reaches with FMA (benchmark denominator). */
  fmaPeak(options?: { simd?: SimdLevel; seconds?: number }): number;
  /** GB/s of a streaming read with the CPU pool (benchmark denominator). */
  memBandwidth(options?: { megabytes?: number; passes?: number }): number;
  /** Starts (true) / stops (false) the range a waiting CUDA profiler records; false without CUDA. */
  cudaProfilerRange(start: boolean): boolean;
  /** One token per logits row (R, vocab), on the calling thread; `out` is written in place. */
  sample(logits: Float32Array, rows: NativeSampleRows, params: NativeSamplingParams, out: NativeSampleOut): void;
  /** The fused per-token policy loss: writes dLoss/dlogprob (T) and returns the loss and metrics. */
  policyLoss(inputs: NativePolicyLossInputs, options: NativePolicyLossOptions, dlogprob: Float32Array): NativePolicyLossMetrics;
  /** Copies a CPU model's AdamW moments (paramCount each) into m and v; returns its step count. */
  optimizerState(model: NativeQwen3, m: Float32Array, v: Float32Array): number;
  /** Restores AdamW moments and step count (trainer checkpoints). */
  setOptimizerState(model: NativeQwen3, m: Float32Array, v: Float32Array, step: number): void;
  NativeKv: new (model: NativeQwen3, options: NativeKvOptions) => NativeKv;
  /** OpenBLAS as a benchmark peer (dlopen'ed on first use; never required). */
  openblasInfo(): OpenBlasInfo;
  NativeQwen3: new (config: NativeQwen3Config, options?: NativeQwen3Options) => NativeQwen3;
  /** Plans and runs the fused attention (and backward when asked) on the calling thread. */
  parallelAttention(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    out: Float32Array,
    lse: Float32Array,
    options: ParallelAttentionOptions,
  ): ParallelAttentionInfo;
  /** Times the CUDA attention on the device (synchronous); throws code 'UNAVAILABLE' without CUDA. */
  attentionCudaTime(options: AttentionCudaTimeOptions): AttentionCudaTiming;
  openblasGemm(
    c: Float32Array,
    a: Float32Array,
    b: Float32Array,
    options: Omit<GemmOptions, 'backend' | 'impl'> & { threads?: number },
  ): void;
}

/** The abiVersion this TypeScript expects; a mismatch means a stale build. */
export const EXPECTED_ABI_VERSION = 6;
