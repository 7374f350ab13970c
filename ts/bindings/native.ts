/**
 * The whole surface of the native addon, typed here and in native-kv.ts (the KV cache and
 * decode surface, re-exported below). Nothing else in the package declares what the addon
 * exports; every call into C++ goes through these signatures.
 *
 * Conventions: bulk data crosses as typed arrays written in place where the caller knows the
 * size; option objects are validated by the addon, which throws TypeError (wrong type) or
 * RangeError (bad size or value) naming the argument.
 */

import type { NativeKv, NativeKvOptions, NativeSampleOut, NativeSampleRows, NativeSamplingParams } from './native-kv.js';

export * from './native-kv.js';

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
