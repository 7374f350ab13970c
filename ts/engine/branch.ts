/**
 * One branch of a request: the trunk, or one step of a fork. It owns a KV sequence, the tokens
 * it produced (and, in order among them, the forks it made), the tokens waiting to enter its KV
 * at the next decode call, the forced tokens still to emit, and its validator.
 *
 * States (transitions in request.ts):
 *   running       decodes its pending token each step, then emits a forced or chosen token
 *   fork-pending  produced `</guideline>` with a fork granted: the next decode gives the
 *                 anchor's logits, then it forks (or, refused by the KV pool, goes on running)
 *   forked        frozen in the KV cache until every child is done
 *   closing       a step branch that produced its `</step>`: one more decode puts it in the KV
 *   done          waiting for its siblings; its last logits predict the join's first token
 */
import type { PreBranchValidator } from '../parallel/validator.js';
import type { BlockRecord } from './types.js';

export type BranchState = 'running' | 'fork-pending' | 'forked' | 'closing' | 'done';

export interface TokenRecord {
  token: number;
  position: number;
  logprob: number;
  logprobSampling: number;
  forced: boolean;
}

export interface ForkRecord {
  /** Fork number within the request (0, 1, ...): part of the children's keys. */
  ordinal: number;
  labels: string[];
  children: Branch[];
  anchorPosition: number;
}

export type BranchItem =
  | { kind: 'token'; record: TokenRecord }
  | { kind: 'fork'; fork: ForkRecord }
  | { kind: 'refused'; reason: Extract<BlockRecord, { parallel: false }>['reason']; message: string };

/** A token to write into the KV cache at the next decode call. */
export interface PendingToken {
  token: number;
  position: number;
  /** Counted against the request's budget (false for prompt tokens). */
  generated: boolean;
}

export class Branch {
  state: BranchState = 'running';
  readonly items: BranchItem[] = [];
  pending: PendingToken[] = [];
  /** Forced tokens still to emit, in order. */
  forced: number[] = [];
  /** Plan labels of a granted fork (state fork-pending). */
  forkLabels: string[] | undefined;
  /** Tokens of the step this branch is inside now (repetition penalty), or undefined outside steps. */
  stepTokens: number[] | undefined;
  /** A step branch has seen its own `<step>` (it closes at the next `</step>` at its depth). */
  inOwnStep = false;
  /** The join's first token's logprob under its last decode's logits (kept while done). */
  joinLogprob: number | undefined;
  tokens = 0;
  forcedTokens = 0;
  /** Chosen (not forced) tokens so far: the index into a scripted stream. */
  choices = 0;
  readonly startPosition: number;

  constructor(
    /** 0 for the trunk; creation order within the request (the RNG branch key). */
    readonly id: number,
    readonly key: string,
    readonly parent: Branch | null,
    readonly label: string | null,
    /** KV sequence id. */
    readonly seq: number,
    readonly validator: PreBranchValidator,
    /** Position of the next token this branch produces. */
    public nextPosition: number,
    /** Blocks open at its fork (its block's depth); 0 for the trunk. */
    readonly forkDepth: number,
  ) {
    this.startPosition = nextPosition;
  }

  /** Tokens it decodes at the next step (none when waiting, frozen or done). */
  get wantsDecode(): boolean {
    return this.pending.length > 0 && (this.state === 'running' || this.state === 'fork-pending' || this.state === 'closing');
  }
}
