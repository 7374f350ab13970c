/**
 * The engine's public types: generation options, the Rollout a request produces, and the events
 * it emits while decoding. Everything that crosses from the engine to a caller is declared here.
 *
 * Token indices in a Rollout are indices of the FLATTENED sequence (prompt, then the response
 * with every block's steps laid out in plan order), the order the structure builder and
 * `Model.forward` read; positions are the ones decoding actually used (docs/structure.md).
 */
import type { Structure } from '../model/batch.js';
import type { StructureFault } from '../parallel/errors.js';
import type { ForkRefusal } from '../parallel/validator.js';

export type EngineMode = 'parallel' | 'ar';

/** Sampling parameters; the RNG is keyed by (seed, request, branch, token index). */
export interface SamplingOptions {
  /** 0: greedy. Default 1. */
  temperature?: number;
  /** 0: off (default). */
  topK?: number;
  /** 1: off (default). */
  topP?: number;
  /** 0: off (default). */
  minP?: number;
  /** Repetition penalty inside `<step>`, over the current step's tokens (default 1.02; 1 elsewhere). */
  stepRepetitionPenalty?: number;
}

export interface GenerateOptions extends SamplingOptions {
  /** 'parallel' forks at `</guideline>`; 'ar' never forks (the sequential baseline). Default 'parallel'. */
  mode?: EngineMode;
  /** Bound on the sum of ALL branches' new tokens (forced ones included). Default 1024. */
  maxNewTokens?: number;
  /** Seed of the counter RNG. Default 0. */
  seed?: number;
  /**
   * RNG request key of the first prompt (prompt i uses requestKey + i). Default 0: the same
   * prompts give the same rollouts whatever else the engine is running.
   */
  requestKey?: number;
  /** Aborting finishes every request of this call with reason 'abort' (their KV is freed). */
  signal?: AbortSignal;
}

/** Why a request stopped. */
export type FinishReason =
  /** the trunk produced an end-of-sequence token */
  | 'stop'
  /** maxNewTokens reached (all branches counted) */
  | 'budget'
  /** the caller's AbortSignal */
  | 'abort'
  /** output the state machine cannot continue (e.g. end-of-sequence inside a step): see `fault` */
  | 'malformed'
  /** the KV pool could not hold the request even after admission */
  | 'kv-exhausted';

/** A block as decoding saw it. Indices are flattened token indices. */
export type BlockRecord =
  | {
      parallel: true;
      /** Block id in the recorded Structure. */
      id: number;
      depth: number;
      /** The `</guideline>` token: every step's first token is predicted from it. */
      anchor: number;
      anchorPosition: number;
      labels: string[];
      /** [start, end) of each step, separator included. */
      steps: [number, number][];
      stepIds: number[];
      /** Branch id of each step. */
      branches: number[];
      /** Lmax: the longest step in tokens; the join continues at anchorPosition + 1 + longestStep. */
      longestStep: number;
    }
  | {
      parallel: false;
      /** The `</guideline>` token whose fork was refused (decoding went on sequentially). */
      anchor: number;
      reason: ForkRefusal | 'mode-ar' | 'budget' | 'no-blocks';
      message: string;
    };

export interface BranchStats {
  /** 0 = the trunk; children numbered in creation order within the request (the RNG branch key). */
  id: number;
  parent: number | null;
  /** Plan label of a step branch; null for the trunk. */
  label: string | null;
  /** Stable name: '' for the trunk, 'fork:label' for a child (nested: 'parentKey/fork:label'). */
  key: string;
  /** Tokens this branch generated (forced ones included). */
  tokens: number;
  forced: number;
  /** First position it decoded at and one past its last. */
  startPosition: number;
  endPosition: number;
}

export interface EngineFault {
  reason: 'stop-in-step' | 'kv-refused' | 'validator';
  branch: number;
  message: string;
}

export interface Rollout {
  /** Index of the prompt in the generate call. */
  index: number;
  mode: EngineMode;
  promptLength: number;
  /** (T) prompt + flattened response. */
  tokens: Int32Array;
  /** (T) position ids used while decoding. */
  positions: Int32Array;
  /** (T) index whose hidden state predicted each token; -1 for prompt tokens. */
  prev: Int32Array;
  /** What decoding actually did: every forked step's tokens carry its block and step id. */
  structure: Structure;
  /** (T) log p(token) under the raw model distribution as decoded; 0 for prompt tokens. */
  logprobs: Float32Array;
  /** (T) log p(token) under the sampling distribution; 0 for prompt and forced tokens. */
  samplingLogprobs: Float32Array;
  /** (T) 1 where the engine forced the token (fork prefix, join `<takeaway>`). */
  forced: Uint8Array;
  /** (T) branch id that generated each token; -1 for prompt tokens. */
  branchOf: Int32Array;
  /** New tokens over all branches (T - promptLength). */
  generatedTokens: number;
  finishReason: FinishReason;
  /** True when at least one fork ran. */
  parallel: boolean;
  blocks: BlockRecord[];
  branches: BranchStats[];
  /** Structural faults the validator recorded (the offending tags were ignored). */
  structureFaults: StructureFault[];
  fault?: EngineFault;
  /** Response text, when the engine has a decoder. */
  text?: string;
  /** Wall time from admission to finish, ms. */
  wallMs: number;
}

export interface TokenEvent {
  request: number;
  branch: number;
  key: string;
  token: number;
  position: number;
  logprob: number;
  forced: boolean;
}
export interface ForkEvent {
  request: number;
  branch: number;
  children: number[];
  labels: string[];
  anchorPosition: number;
}
export interface ForkRefusedEvent {
  request: number;
  branch: number;
  reason: string;
  message: string;
}
export interface JoinEvent {
  request: number;
  branch: number;
  children: number[];
  /** Position the joined sequence continues at. */
  position: number;
}
export interface FinishEvent {
  request: number;
  rollout: Rollout;
}
export interface StepEvent {
  /** Sequences and tokens in the step's decode call. */
  sequences: number;
  tokens: number;
  /** The step's wall time: its decode call, then reading its logprobs and choosing its tokens. */
  ms: number;
  /**
   * The decode call's wall time alone: the step on the device with syncDecode or a worker;
   * with overlapDecode only its launch (the device's time then shows in `ms`).
   */
  decodeMs: number;
}

/** typed-emitter event map of the Engine. `request` is the engine-wide request number. */
export type EngineEvents = {
  token: (e: TokenEvent) => void;
  fork: (e: ForkEvent) => void;
  'fork-refused': (e: ForkRefusedEvent) => void;
  join: (e: JoinEvent) => void;
  finish: (e: FinishEvent) => void;
  step: (e: StepEvent) => void;
};

/** One item of the streaming form. */
export type StreamEvent =
  | ({ type: 'token' } & TokenEvent)
  | ({ type: 'fork' } & ForkEvent)
  | ({ type: 'fork-refused' } & ForkRefusedEvent)
  | ({ type: 'join' } & JoinEvent)
  | ({ type: 'finish' } & FinishEvent);
