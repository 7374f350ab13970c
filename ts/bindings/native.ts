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

/** One Qwen3 model in native memory (fp32 weights, grads, AdamW moments). */
export interface NativeQwen3 {
  readonly paramCount: number;
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
  /** OpenBLAS as a benchmark peer (dlopen'ed on first use; never required). */
  openblasInfo(): OpenBlasInfo;
  NativeQwen3: new (config: NativeQwen3Config) => NativeQwen3;
  openblasGemm(
    c: Float32Array,
    a: Float32Array,
    b: Float32Array,
    options: Omit<GemmOptions, 'backend' | 'impl'> & { threads?: number },
  ): void;
}

/** The abiVersion this TypeScript expects; a mismatch means a stale build. */
export const EXPECTED_ABI_VERSION = 2;
