/**
 * Model: a Qwen3 decoder in native memory with the calls training needs - forward (per-token
 * logprobs, optionally entropy), backward (gradients accumulate), zeroGrad, an AdamW step with
 * global-norm clipping - and Hugging Face directories in and out.
 *
 * Weights are fp32 master copies (bf16 files are converted on load). The backend is chosen once,
 * at creation: 'cpu', 'cuda' (the whole training path on the device; 'bf16' precision keeps a
 * bf16 compute copy and bf16 activations with fp32 accumulation, 'fp32' is the parity mode), or
 * 'auto' (CUDA when a device answers). Not here: generation with a KV cache (the engine; CPU
 * models only for now), tokenisation (HfTokenizer), the training loop (the trainer).
 */
import { native } from '../bindings/loader.js';
import type { NativeParamInfo, NativeQwen3, NativeQwen3Options } from '../bindings/native.js';
import type { PackedBatch } from './batch.js';
import { expectedParameters, type Qwen3Config } from './config.js';
import { ShapeMismatchError } from './errors.js';
import { loadHfDirectory, saveHfDirectory, type TokenizerFiles } from './hf_dir.js';
import type { HostTensor } from './tensors.js';

export interface ForwardResult {
  /** (tokens) log p(ids[t] | context) for scored tokens, 0 for the others. */
  logprob: Float32Array;
  /** (tokens) entropy of the predicting distribution (a metric: no gradient), when asked. */
  entropy?: Float32Array;
}

export interface AdamWOptions {
  lr: number;
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.999. */
  beta2?: number;
  /** Default 1e-8. */
  eps?: number;
  /** Decoupled weight decay; default 0. */
  weightDecay?: number;
  /** Global gradient-norm clip; default 0 = none. */
  clipNorm?: number;
}

export interface CreateOptions {
  /** Initial weights by Hugging Face name (f32); missing ones are initialised from `seed`. */
  weights?: Map<string, HostTensor<'f32'>>;
  /** Seed of the initialisation: normal(0, 0.02) matrices, norm weights 1. Default 0. */
  seed?: number;
  tokenizerFiles?: TokenizerFiles;
  /** Where the model lives: 'cpu' (default), 'cuda', or 'auto' (CUDA when a device answers). */
  backend?: 'cpu' | 'cuda' | 'auto';
  /** Compute precision on CUDA: 'bf16' (default there) or 'fp32'; the CPU computes in fp32. */
  precision?: 'fp32' | 'bf16';
  /**
   * Bit-identical backward passes (default true). false: on CUDA in bf16 the attention backward
   * sums dQ with atomics from the dK/dV kernel (5 GEMMs a tile pair instead of 7), so dq, and
   * the gradients after it, vary in their last bits from run to run. The CPU is deterministic
   * either way.
   */
  deterministic?: boolean;
  /**
   * CUDA attention kernels: 'wgmma' (default: Hopper's warpgroup MMA for the forward and the
   * backward's dK/dV and deterministic dQ where it can run, i.e. an sm_90 GPU, bf16, head dim 64
   * or 128; elsewhere the mma kernels) or 'mma' (mma.sync on every NVIDIA GPU from sm_80). On an
   * H100, the 0.6B train step ran 1.105x faster on 'wgmma' than on 'mma' (bench train-step).
   * 'wgmma-k128': 'wgmma' with the backward's kernels on two warpgroups over 128 keys / queries
   * (head dim 128; the same bits as 'wgmma', half its loads a FLOP); 0.97x 'wgmma' there.
   * 'wgmma' is warp-specialised: K/V, Q and dO come by tensor-map copies, from a producer warp
   * (group) into an mbarrier ring for the forward and the dQ kernel, and the forward takes 128
   * keys a step (an H200 ran it at 1.435x FlexAttention at 32k tokens; its own bits, still
   * deterministic). 'wgmma-64': that forward over 64 keys a step, the default before (1.197x
   * there). 'wgmma-cp': 'wgmma-64''s MMAs with cp.async loads and a CTA barrier a tile (the same
   * bits as 'wgmma-64'; also what 'wgmma' falls back to where the driver has no tensor-map
   * encoder).
   */
  attentionKernels?: 'mma' | 'wgmma' | 'wgmma-64' | 'wgmma-cp' | 'wgmma-k128';
}

/** The creation options the native model takes, resolved once at the edge. */
export type LoadOptions = Pick<CreateOptions, 'backend' | 'precision' | 'deterministic' | 'attentionKernels'>;

/** Resolves 'auto' and the precision default once, at the edge. */
export function resolveBackend(
  options: Pick<CreateOptions, 'backend' | 'precision'>,
): Required<Omit<NativeQwen3Options, 'deterministic' | 'attentionKernels'>> {
  let backend = options.backend ?? 'cpu';
  if (backend === 'auto') backend = native().backends().cuda.devices > 0 ? 'cuda' : 'cpu';
  const precision = options.precision ?? (backend === 'cuda' ? 'bf16' : 'fp32');
  return { backend, precision };
}

export class Model {
  private busy = false;
  /** The native parameter table, read once: it does not change for the model's lifetime. */
  private readonly table: NativeParamInfo[];

  private constructor(
    readonly config: Qwen3Config,
    readonly tokenizerFiles: TokenizerFiles,
    private readonly handle: NativeQwen3,
  ) {
    this.table = handle.paramTable();
  }

  /** Where this model lives and computes. */
  get backend(): 'cpu' | 'cuda' {
    return this.handle.backend;
  }
  get precision(): 'fp32' | 'bf16' {
    return this.handle.precision;
  }
  /** Whether backward passes are bit-identical run to run (CreateOptions.deterministic). */
  get deterministic(): boolean {
    return this.handle.deterministic;
  }

  /** A model with the given config; weights from `options.weights`, the rest initialised. */
  static create(config: Qwen3Config, options: CreateOptions = {}): Model {
    const handle = new (native().NativeQwen3)(
      {
        vocab: config.vocabSize,
        hidden: config.hiddenSize,
        intermediate: config.intermediateSize,
        layers: config.numHiddenLayers,
        heads: config.numAttentionHeads,
        kvHeads: config.numKeyValueHeads,
        headDim: config.headDim,
        rmsEps: config.rmsNormEps,
        ropeTheta: config.ropeTheta,
        tied: config.tieWordEmbeddings,
      },
      { ...resolveBackend(options), deterministic: options.deterministic ?? true, attentionKernels: options.attentionKernels ?? 'wgmma' },
    );
    const model = new Model(config, options.tokenizerFiles ?? {}, handle);
    const gaussian = normalSampler(options.seed ?? 0);
    for (const p of expectedParameters(config)) {
      const given = options.weights?.get(p.name);
      if (given) {
        if (given.shape.join() !== p.shape.join()) {
          throw new ShapeMismatchError(
            '(weights given to Model.create)',
            p.name,
            p.shape,
            given.shape,
            'pass weights shaped as the config says',
          );
        }
        handle.setParam(p.name, given.data);
        continue;
      }
      const n = p.shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(n);
      if (p.shape.length === 1) data.fill(1);
      else for (let i = 0; i < n; i++) data[i] = 0.02 * gaussian();
      handle.setParam(p.name, data);
    }
    return model;
  }

  /** Loads a Hugging Face Qwen3 directory (config.json, safetensors, tokenizer files). */
  static async load(dir: string, options: LoadOptions = {}): Promise<Model> {
    const hf = await loadHfDirectory(dir);
    return Model.create(hf.config, { weights: hf.weights, tokenizerFiles: hf.tokenizerFiles, ...options });
  }

  /** Writes a Hugging Face directory (atomically); loading it back gives identical weights. */
  async save(dir: string, options: { dtype?: 'f32' | 'bf16'; overwrite?: boolean; maxShardBytes?: number } = {}): Promise<void> {
    await saveHfDirectory(dir, { config: this.config, weights: this.weights(), tokenizerFiles: this.tokenizerFiles, ...options });
  }

  /** The native model, for the parts of the runtime that drive it directly (the engine's KV cache). */
  get nativeHandle(): NativeQwen3 {
    return this.handle;
  }

  get paramCount(): number {
    return this.handle.paramCount;
  }

  /** Bytes of native memory held: weights, gradients, optimizer state, saved activations. */
  memoryBytes(): number {
    return this.handle.memoryBytes();
  }

  paramNames(): string[] {
    return this.table.map((p) => p.name);
  }

  /** A copy of one parameter. */
  getParam(name: string): Float32Array {
    const out = new Float32Array(this.numel(name));
    this.handle.getParam(name, out);
    return out;
  }

  setParam(name: string, data: Float32Array): void {
    this.handle.setParam(name, data);
  }

  /** A copy of one parameter's accumulated gradient. */
  getGrad(name: string): Float32Array {
    const out = new Float32Array(this.numel(name));
    this.handle.getGrad(name, out);
    return out;
  }

  /** Copies of every parameter, by Hugging Face name. */
  weights(): Map<string, HostTensor<'f32'>> {
    const out = new Map<string, HostTensor<'f32'>>();
    for (const p of this.table) out.set(p.name, { dtype: 'f32', shape: p.shape, data: this.getParam(p.name) });
    return out;
  }

  /** Per-token logprobs of a packed batch; keeps the activations for one backward. */
  async forward(batch: PackedBatch, options: { entropy?: boolean } = {}): Promise<ForwardResult> {
    const tokens = batch.ids.length;
    const result: ForwardResult = { logprob: new Float32Array(tokens) };
    if (options.entropy) result.entropy = new Float32Array(tokens);
    const s = batch.structure;
    await this.exclusive(() =>
      this.handle.forward(
        {
          ids: batch.ids,
          positions: batch.positions,
          prev: batch.prev,
          cuSeqlens: batch.cuSeqlens,
          ...(s ? { depth: s.depth, block: s.block, step: s.step } : {}),
        },
        result,
      ),
    );
    return result;
  }

  /** Accumulates the gradient of sum_t dlogprob[t] * logprob[t] (of the last forward). */
  async backward(dlogprob: Float32Array): Promise<void> {
    await this.exclusive(() => this.handle.backward(dlogprob));
  }

  zeroGrad(): void {
    this.handle.zeroGrad();
  }

  /** One AdamW step (after clipping); returns the gradient norm before clipping. */
  step(options: AdamWOptions): { gradNorm: number; step: number } {
    return this.handle.optimizerStep(options);
  }

  private numel(name: string): number {
    const p = this.table.find((x) => x.name === name);
    if (!p) throw new RangeError(`no parameter named '${name}' in this model`);
    return p.numel;
  }

  private async exclusive(run: () => Promise<void>): Promise<void> {
    if (this.busy) throw new Error('the model is busy with another forward/backward; await it first');
    this.busy = true;
    try {
      await run();
    } finally {
      this.busy = false;
    }
  }
}

/** Standard normal samples from a seeded generator (mulberry32 + Box-Muller). */
function normalSampler(seed: number): () => number {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}
