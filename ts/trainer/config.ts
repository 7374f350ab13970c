/**
 * The curriculum configuration: a JSON object naming the model, the data, the stages and every
 * setting. `resolveCurriculum` fills every default (documented here, with units) once, at the
 * edge; the resolved object is written beside each output checkpoint.
 *
 * Defaults follow the paper and its code where a tiny run can take them (clip 0.2/0.28, dual
 * clip 10, weight decay 0.1, grad clip 1.0, G = 16, K = 8, stage 2 from the ORIGINAL base,
 * one PAPO update per rollout batch, lr 1e-6 / 1e-6 -> 5e-7 / 1e-7); sizes (steps, prompts,
 * lengths) are the user's to set.
 */
import { ConfigError } from '../bindings/errors.js';
import type { ScheduleConfig } from './schedule.js';
import type { LossConfig, OptimizerConfig } from './update.js';

export interface PromptConfig {
  /** `{question}` and `{instruction}` are replaced. Default '{question}\n\n{instruction}' ('{question}' when instruction is ''). */
  template?: string;
  instruction?: string;
  /** Render through the tokenizer's chat template when it has one (default true). */
  chat?: boolean;
}

export interface SamplingConfig {
  temperature?: number;
  topP?: number;
  topK?: number;
  maxNewTokens?: number;
  /** Engine KV pool size in blocks (default 4096) and tokens per block (16). */
  kvBlocks?: number;
  blockTokens?: number;
  /** Requests the engine decodes together (default 64). */
  concurrency?: number;
}

interface StageBase {
  /** Output directory name under the run directory (default: the stage kind). */
  name?: string;
  sampling?: SamplingConfig;
  /** This stage's prompt, over the curriculum's (e.g. SR without the parallel-format instruction). */
  prompt?: PromptConfig;
}

export interface RlStageConfig extends StageBase {
  kind: 'format-rl' | 'papo' | 'sr';
  steps: number;
  /** Prompts per rollout batch (after dynamic sampling). Default 4. */
  prompts?: number;
  /** Samples per prompt (G). Default 16. */
  samples?: number;
  /** Policy updates (mini-batches) per rollout batch; default 1. */
  miniBatches?: number;
  loss?: Partial<LossConfig>;
  advantage?: 'grpo' | 'dapo' | 'papo';
  /** DAPO dynamic sampling: drop groups whose rewards agree; draw at most this many generation batches per step (0 = off). */
  dynamicSamplingBatches?: number;
  overlong?: { buffer: number; factor?: number };
  schedule?: Partial<ScheduleConfig>;
  optimizer?: OptimizerConfig;
  /** Tokens per micro-batch (gradient accumulation by token budget). Default 8192. */
  microTokens?: number;
  /** Checkpoint every N steps (0: only at the end). Default 0. */
  saveEvery?: number;
  /** Longest prompt in tokens; longer ones are skipped with a warning. Default 2048. */
  maxPromptTokens?: number;
  /** The model this stage starts from: 'previous' (default) or a stage name. */
  from?: string;
}

export interface RejectionStageConfig extends StageBase {
  kind: 'rejection';
  /** Samples tried per problem (K, default 8). */
  maxSamples?: number;
  /** Problems to sample (default all). */
  maxProblems?: number;
  from?: string;
}

export interface SftStageConfig extends StageBase {
  kind: 'sft';
  /** 'base' (the paper: the ORIGINAL model) or a stage name. Default 'base'. */
  from?: string;
  /** The rejection stage whose accepted set is trained on (default: the last one). */
  data?: string;
  epochs?: number;
  /** Sequences per optimizer step (default 8). */
  batch?: number;
  schedule?: Partial<ScheduleConfig>;
  optimizer?: OptimizerConfig;
  microTokens?: number;
  saveEvery?: number;
}

export type StageConfig = RlStageConfig | RejectionStageConfig | SftStageConfig;

export interface CurriculumConfig {
  /** Base model directory (Hugging Face Qwen3). */
  model: string;
  /** 'tokenizer' (the model's tokenizer.json, default) or 'char' (CharCodec: tags are ids 0..7; tests, synthetic tasks). */
  codec?: 'tokenizer' | 'char';
  backend?: 'cpu' | 'cuda' | 'auto';
  /**
   * Bit-identical reruns (default true). false lets the CUDA backend sum the attention backward's
   * dQ with atomics: a faster backward whose dq varies in its last bits from run to run. The CPU
   * is deterministic either way.
   */
  deterministic?: boolean;
  /**
   * The CUDA attention kernels (Model's attentionKernels): 'wgmma' (default; Hopper's warpgroup
   * MMA where the GPU has it, mma.sync elsewhere), 'wgmma-64' (its forward over 64 keys a step,
   * the default before), 'wgmma-k128' (its backward on two warpgroups over 128 keys / queries a
   * CTA, head dim 128), 'wgmma-cp' (cp.async loads in place of tensor-map copies) or 'mma'. The
   * CPU ignores it.
   */
  attentionKernels?: 'mma' | 'wgmma' | 'wgmma-64' | 'wgmma-cp' | 'wgmma-k128';
  /** JSONL file of {question, answer}. */
  data: string;
  /** Run directory: checkpoints, metrics.jsonl, datasets. */
  out: string;
  seed?: number;
  prompt?: PromptConfig;
  sampling?: SamplingConfig;
  stages: StageConfig[];
}

export type ResolvedSampling = Required<SamplingConfig>;
export type ResolvedRl = Required<Omit<RlStageConfig, 'overlong' | 'loss' | 'schedule' | 'optimizer' | 'sampling' | 'prompt'>> & {
  overlong: RlStageConfig['overlong'] | null;
  loss: LossConfig;
  schedule: Required<ScheduleConfig>;
  optimizer: Required<OptimizerConfig>;
  sampling: ResolvedSampling;
  prompt: Required<PromptConfig>;
};
export type ResolvedRejection = Required<Omit<RejectionStageConfig, 'sampling' | 'maxProblems' | 'prompt'>> & {
  maxProblems: number;
  sampling: ResolvedSampling;
  prompt: Required<PromptConfig>;
};
export type ResolvedSft = Required<Omit<SftStageConfig, 'schedule' | 'optimizer' | 'sampling' | 'data' | 'prompt'>> & {
  data: string;
  schedule: Required<ScheduleConfig>;
  optimizer: Required<OptimizerConfig>;
  sampling: ResolvedSampling;
  prompt: Required<PromptConfig>;
};
export type ResolvedStage = ResolvedRl | ResolvedRejection | ResolvedSft;

export interface ResolvedCurriculum {
  model: string;
  codec: 'tokenizer' | 'char';
  backend: 'cpu' | 'cuda' | 'auto';
  deterministic: boolean;
  attentionKernels: 'mma' | 'wgmma' | 'wgmma-64' | 'wgmma-cp' | 'wgmma-k128';
  data: string;
  out: string;
  seed: number;
  prompt: Required<PromptConfig>;
  stages: ResolvedStage[];
}

const positiveInt = (where: string, v: unknown, min = 1): number => {
  if (!Number.isInteger(v) || (v as number) < min)
    throw new ConfigError(`${where} must be an integer >= ${min} (got ${JSON.stringify(v)})`);
  return v as number;
};

function optimizerDefaults(o: OptimizerConfig | undefined): Required<OptimizerConfig> {
  return { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, clipNorm: 1.0, ...o };
}

function resolvePrompt(p: PromptConfig | undefined): Required<PromptConfig> {
  const instruction = p?.instruction ?? '';
  return {
    template: p?.template ?? (instruction ? '{question}\n\n{instruction}' : '{question}'),
    instruction,
    chat: p?.chat ?? true,
  };
}

export function resolveCurriculum(c: CurriculumConfig): ResolvedCurriculum {
  if (typeof c.model !== 'string' || !c.model) throw new ConfigError('curriculum.model must name a model directory');
  if (typeof c.data !== 'string' || !c.data) throw new ConfigError('curriculum.data must name a JSONL file of {question, answer}');
  if (typeof c.out !== 'string' || !c.out) throw new ConfigError('curriculum.out must name a run directory');
  if (!Array.isArray(c.stages) || c.stages.length === 0) throw new ConfigError('curriculum.stages must list at least one stage');
  if (c.deterministic !== undefined && typeof c.deterministic !== 'boolean')
    throw new ConfigError(`curriculum.deterministic must be true or false (got ${JSON.stringify(c.deterministic)})`);
  const kernels = ['mma', 'wgmma', 'wgmma-64', 'wgmma-cp', 'wgmma-k128'];
  if (c.attentionKernels !== undefined && !kernels.includes(c.attentionKernels))
    throw new ConfigError(`curriculum.attentionKernels must be ${kernels.join(', ')} (got ${JSON.stringify(c.attentionKernels)})`);
  const sampling: ResolvedSampling = {
    temperature: 1,
    topP: 1,
    topK: 0,
    maxNewTokens: 1024,
    kvBlocks: 4096,
    blockTokens: 16,
    concurrency: 64,
    ...c.sampling,
  };
  const names = new Set<string>();
  let lastRejection = '';
  const stages = c.stages.map((s, i): ResolvedStage => {
    const where = `curriculum.stages[${i}]`;
    const name = s.name ?? s.kind;
    if (names.has(name)) throw new ConfigError(`${where}: a second stage named '${name}'; give it a distinct "name"`);
    names.add(name);
    const st = { ...sampling, ...s.sampling };
    const prompt = resolvePrompt({ ...c.prompt, ...s.prompt });
    if (s.kind === 'format-rl' || s.kind === 'papo' || s.kind === 'sr') {
      const stage3 = s.kind !== 'format-rl';
      const lr = s.schedule?.lr ?? (stage3 ? 1e-7 : 1e-6);
      return {
        kind: s.kind,
        name,
        from: s.from ?? 'previous',
        steps: positiveInt(`${where}.steps`, s.steps),
        prompts: positiveInt(`${where}.prompts`, s.prompts ?? 4),
        samples: positiveInt(`${where}.samples`, s.samples ?? 16),
        miniBatches: positiveInt(`${where}.miniBatches`, s.miniBatches ?? 1),
        advantage: s.advantage ?? (stage3 ? 'papo' : 'dapo'),
        dynamicSamplingBatches: s.dynamicSamplingBatches ?? (stage3 ? 0 : 4),
        overlong: s.overlong ?? null,
        microTokens: positiveInt(`${where}.microTokens`, s.microTokens ?? 8192),
        saveEvery: positiveInt(`${where}.saveEvery`, s.saveEvery ?? 0, 0),
        maxPromptTokens: positiveInt(`${where}.maxPromptTokens`, s.maxPromptTokens ?? 2048),
        loss: {
          kind: stage3 ? 'papo' : 'ppo-clip',
          aggregation: 'token-mean',
          epsLow: 0.2,
          epsHigh: stage3 ? 0.2 : 0.28,
          clipC: 10,
          exemptSpecial: false,
          ...s.loss,
        },
        schedule: { kind: stage3 ? 'constant' : 'cosine', lr, warmupSteps: stage3 ? 0 : 10, minLrRatio: stage3 ? 0 : 1e-8, ...s.schedule },
        optimizer: optimizerDefaults(s.optimizer),
        sampling: st,
        prompt,
      };
    }
    if (s.kind === 'rejection') {
      lastRejection = name;
      return {
        kind: 'rejection',
        name,
        from: s.from ?? 'previous',
        maxSamples: positiveInt(`${where}.maxSamples`, s.maxSamples ?? 8),
        maxProblems: s.maxProblems === undefined ? Number.MAX_SAFE_INTEGER : positiveInt(`${where}.maxProblems`, s.maxProblems),
        sampling: st,
        prompt,
      };
    }
    if (s.kind === 'sft') {
      const data = s.data ?? lastRejection;
      if (!data) throw new ConfigError(`${where}: an sft stage needs a rejection stage before it (or "data" naming one)`);
      return {
        kind: 'sft',
        name,
        from: s.from ?? 'base',
        data,
        epochs: positiveInt(`${where}.epochs`, s.epochs ?? 1),
        batch: positiveInt(`${where}.batch`, s.batch ?? 8),
        microTokens: positiveInt(`${where}.microTokens`, s.microTokens ?? 8192),
        saveEvery: positiveInt(`${where}.saveEvery`, s.saveEvery ?? 0, 0),
        schedule: { kind: 'cosine', lr: 1e-6, warmupSteps: 0, minLrRatio: 0.5, ...s.schedule },
        optimizer: { ...optimizerDefaults(s.optimizer), beta2: s.optimizer?.beta2 ?? 0.95 },
        sampling: st,
        prompt,
      };
    }
    throw new ConfigError(
      `${where}.kind must be format-rl, rejection, sft, papo or sr (got ${JSON.stringify((s as { kind: unknown }).kind)})`,
    );
  });
  return {
    model: c.model,
    codec: c.codec ?? 'tokenizer',
    backend: c.backend ?? 'cpu',
    deterministic: c.deterministic ?? true,
    attentionKernels: c.attentionKernels ?? 'wgmma',
    data: c.data,
    out: c.out,
    seed: c.seed ?? 0,
    prompt: resolvePrompt(c.prompt),
    stages,
  };
}
