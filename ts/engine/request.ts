/**
 * One request's state machine: its branches, its token ledger, and every transition - a token
 * produced (forced or chosen), a fork granted, performed or refused, a step closed, a join, a
 * finish. The scheduler owns decode calls and the KV pool's admission; this module decides
 * what each logits row means for its branch.
 *
 * Rules (docs/structure.md, reference facts 5.1-5.2):
 *  - the validator judges every `</guideline>`; in parallel mode a granted guideline forks if the
 *    ledger can pay the fork's reserve, else it is refused ('budget') and decoding goes on
 *    sequentially; the KV pool may still refuse the fork itself ('no-blocks');
 *  - each child starts with forced `\n<step>\n{label}:` at position anchor + 1, the first token
 *    scored from the anchor's logits (shared by all siblings); a child closes at its own
 *    `</step>`; when all are done they join and `\n<takeaway>` is forced at anchor + 1 + Lmax,
 *    its first token scored from the last step's final logits (prev = t - 1 in flattened order);
 *  - every token, forced or chosen, passes the ledger before it enters the rollout;
 *  - end-of-sequence from the trunk finishes the request ('stop'); from a step it is malformed.
 */
import type { NativeKv } from '../bindings/native.js';
import type { StructureFault } from '../parallel/errors.js';
import type { PreBranchValidator } from '../parallel/validator.js';
import { Branch, type BranchItem } from './branch.js';
import { DEFAULT_FORK_RESERVE, type ForkReserve, forkCost, TokenLedger } from './budget.js';
import { JOIN_TEXT, stepPrefixText, type TokenCodec } from './codec.js';
import type { StepLogits } from './step-logits.js';
import type { EngineFault, EngineMode, FinishReason } from './types.js';

export interface RequestSettings {
  mode: EngineMode;
  maxNewTokens: number;
  stepRepetitionPenalty: number;
  reserve: ForkReserve;
  vocab: number;
}

/** Where a request reports what happens (the engine forwards these as events). */
export interface RequestSink {
  token(r: Request, b: Branch, token: number, position: number, logprob: number, forced: boolean): void;
  fork(r: Request, parent: Branch, children: Branch[], labels: string[]): void;
  forkRefused(r: Request, b: Branch, reason: string, message: string): void;
  join(r: Request, parent: Branch, children: Branch[]): void;
}

export class Request {
  readonly ledger: TokenLedger;
  readonly branches: Branch[] = [];
  readonly trunk: Branch;
  finishReason: FinishReason | undefined;
  fault: EngineFault | undefined;
  private forks = 0;
  readonly startedAt = performance.now();

  constructor(
    /** Engine-wide request number (events). */
    readonly number: number,
    /** Index of the prompt in its generate call. */
    readonly index: number,
    /** RNG request key. */
    readonly rngKey: number,
    readonly prompt: readonly number[],
    readonly kvRequest: number,
    trunkSeq: number,
    validator: PreBranchValidator,
    readonly settings: RequestSettings,
    private readonly codec: TokenCodec,
    private readonly kv: Pick<NativeKv, 'fork' | 'join'>,
    private readonly sink: RequestSink,
  ) {
    this.ledger = new TokenLedger(settings.maxNewTokens);
    this.trunk = new Branch(0, '', null, null, trunkSeq, validator, prompt.length, 0);
    this.trunk.pending = prompt.map((token, position) => ({ token, position, generated: false }));
    this.branches.push(this.trunk);
    if (settings.maxNewTokens === 0) this.finish('budget');
  }

  get finished(): boolean {
    return this.finishReason !== undefined;
  }

  finish(reason: FinishReason, fault?: EngineFault): void {
    if (this.finishReason !== undefined) return;
    this.finishReason = reason;
    if (fault) this.fault = fault;
  }

  /** Every fault the validators recorded, trunk first. */
  structureFaults(): StructureFault[] {
    const seen = new Set<string>();
    const out: StructureFault[] = [];
    for (const b of this.branches)
      for (const f of b.validator.faults) {
        const k = `${f.reason}@${f.at}:${f.message}`;
        if (!seen.has(k)) {
          seen.add(k);
          out.push(f);
        }
      }
    return out;
  }

  /** The first token of the join text (scored from the last step's final logits). */
  private get joinFirst(): number {
    this.joinToken ??= this.codec.encode(JOIN_TEXT)[0] as number;
    return this.joinToken;
  }
  private joinToken: number | undefined;

  /**
   * Tokens whose logprob under this branch's next logits row `afterDecode` may ask for (the
   * scheduler fetches them for the whole step in one call): the join's first token for a
   * closing step, each child's first token for a pending fork, the next forced token.
   */
  logprobsWanted(b: Branch): number[] {
    if (this.finished) return [];
    if (b.state === 'closing') return [this.joinFirst];
    const out = b.state === 'fork-pending' ? (b.forkLabels ?? []).map((l) => this.codec.encode(stepPrefixText(l))[0] as number) : [];
    if (b.forced.length > 0) out.push(b.forced[0] as number);
    return out;
  }

  /**
   * The branch's pending tokens were decoded and row `row` of the step's logits predicts its
   * next token. Returns true when the branch needs a chosen token (the scheduler batches those).
   */
  afterDecode(b: Branch, logits: StepLogits, row: number): boolean {
    if (this.finished) return false;
    if (b.state === 'closing') {
      b.state = 'done';
      b.joinLogprob = logits.logprobAt(row, this.joinFirst);
      if (b.parent) this.tryJoin(b.parent);
      return false;
    }
    if (b.state === 'fork-pending') {
      if (this.fork(b, logits, row)) return false;
    }
    const next = b.forced.shift();
    if (next !== undefined) {
      this.produce(b, next, logits.logprobAt(row, next), 0, true);
      return false;
    }
    return true;
  }

  /** A chosen token for a branch that asked for one. */
  accept(b: Branch, token: number, logprob: number, logprobSampling: number): void {
    b.choices++;
    this.produce(b, token, logprob, logprobSampling, false);
  }

  /** Repetition penalty of a branch's next token: over its current step's tokens, inside steps only. */
  penalty(b: Branch): { tokens: readonly number[]; value: number } {
    return b.stepTokens && this.settings.stepRepetitionPenalty !== 1
      ? { tokens: b.stepTokens, value: this.settings.stepRepetitionPenalty }
      : { tokens: [], value: 1 };
  }

  private produce(b: Branch, token: number, logprob: number, logprobSampling: number, forced: boolean): void {
    if (this.finished) return;
    if (!this.ledger.take(1)) {
      this.finish('budget');
      return;
    }
    const position = b.nextPosition++;
    b.items.push({ kind: 'token', record: { token, position, logprob, logprobSampling, forced } });
    b.pending.push({ token, position, generated: true });
    b.tokens++;
    if (forced) b.forcedTokens++;
    this.sink.token(this, b, token, position, logprob, forced);

    const v = b.validator;
    const events = this.codec.tagIds ? v.pushToken(token, this.codec.piece(token)) : v.push(this.codec.piece(token));
    // Step tracking (repetition penalty, a step branch's close) follows the validator's grammar.
    if (v.where === 'step') {
      if (b.stepTokens) b.stepTokens.push(token);
      else b.stepTokens = [];
      if (b.parent && v.depth === b.forkDepth) b.inOwnStep = true;
    } else {
      b.stepTokens = undefined;
    }
    for (const e of events) {
      if (e.event !== 'guideline-closed') continue;
      const d = e.decision;
      if (!d.fork) this.refuse(b, d.reason, d.message);
      else if (this.settings.mode === 'ar') this.refuse(b, 'mode-ar', 'AR mode never forks');
      else {
        const cost = forkCost(
          d.labels.map((l) => this.codec.encode(stepPrefixText(l)).length),
          this.codec.encode(JOIN_TEXT).length,
          this.settings.reserve,
        );
        if (cost > this.ledger.remaining)
          this.refuse(b, 'budget', `the fork needs ${cost} tokens in reserve, ${this.ledger.remaining} are left`);
        else {
          b.state = 'fork-pending';
          b.forkLabels = d.labels;
        }
      }
    }
    if (this.codec.eos.has(token)) {
      if (b.parent === null) this.finish('stop');
      else
        this.finish('malformed', {
          reason: 'stop-in-step',
          branch: b.id,
          message: `branch ${b.key} produced end-of-sequence inside its step`,
        });
      return;
    }
    if (b.parent && b.inOwnStep && v.depth === b.forkDepth && v.where === 'steps') b.state = 'closing';
  }

  private refuse(b: Branch, reason: Extract<BranchItem, { kind: 'refused' }>['reason'], message: string): void {
    b.items.push({ kind: 'refused', reason, message });
    this.sink.forkRefused(this, b, reason, message);
  }

  /** Forks `b` after its anchor was decoded; false when the KV pool refused (b runs on). */
  private fork(b: Branch, logits: StepLogits, row: number): boolean {
    const labels = b.forkLabels as string[];
    b.forkLabels = undefined;
    b.state = 'running';
    const { answer, children } = this.kv.fork(b.seq, labels.length);
    if (answer !== 'ok') {
      this.refuse(b, 'no-blocks', `the KV pool refused ${labels.length} branches (${answer})`);
      return false;
    }
    const ordinal = this.forks++;
    const anchorPosition = b.nextPosition - 1;
    const kids = labels.map((label, i) => {
      const child = new Branch(
        this.branches.length,
        `${b.key ? `${b.key}/` : ''}${ordinal}:${label}`,
        b,
        label,
        children[i] as number,
        b.validator.clone(),
        anchorPosition + 1,
        b.validator.depth,
      );
      child.forced = this.codec.encode(stepPrefixText(label));
      this.branches.push(child);
      return child;
    });
    b.items.push({ kind: 'fork', fork: { ordinal, labels, children: kids, anchorPosition } });
    b.state = 'forked';
    this.sink.fork(this, b, kids, labels);
    const firsts = kids.map((child) => child.forced.shift() as number);
    const lp = logits.logprobs(
      firsts.map(() => row),
      firsts,
    );
    kids.forEach((child, i) => {
      this.produce(child, firsts[i] as number, lp[i] as number, 0, true);
    });
    return true;
  }

  private tryJoin(parent: Branch): void {
    const fork = parent.items.at(-1);
    if (parent.state !== 'forked' || fork?.kind !== 'fork') return;
    const kids = fork.fork.children;
    if (!kids.every((c) => c.state === 'done')) return;
    this.kv.join(parent.seq);
    parent.nextPosition = Math.max(...kids.map((c) => c.nextPosition));
    parent.validator.joined();
    parent.state = 'running';
    const last = kids[kids.length - 1] as Branch;
    const logprob = last.joinLogprob as number;
    for (const c of kids) c.joinLogprob = undefined;
    this.sink.join(this, parent, kids);
    parent.forced = this.codec.encode(JOIN_TEXT);
    const first = parent.forced.shift() as number;
    this.produce(parent, first, logprob, 0, true);
  }

  /** Settings default for a request; `reserve` from budget.ts. */
  static defaults(vocab: number): RequestSettings {
    return { mode: 'parallel', maxNewTokens: 1024, stepRepetitionPenalty: 1.02, reserve: DEFAULT_FORK_RESERVE, vocab };
  }
}
