/**
 * The streaming pre-branch validator: fed the pieces of ONE response as they are generated
 * (text pieces, or token ids with their pieces when the tags are single tokens), it reports
 * at every `</guideline>` whether the engine may fork there, and records every structural
 * fault on the way without ever leaving a defined state: a tag that does not fit is recorded
 * and ignored, and decoding just goes on sequentially.
 *
 * Fork rules at `</guideline>`: the guideline is well formed (no stray tag inside it), has
 * 1..maxBranches plans, every plan is numbered (`N:` or dotted `N.M:`), labels are unique,
 * and its depth (blocks open, itself included) is at most maxDepth (1 = not inside a step).
 * The budget reserve is the engine's business, not this module's.
 *
 * The engine may `clone()` the validator at a fork (one per branch, each fed its branch) and
 * call `joined()` on the parent when the branches join, before it feeds `<takeaway>`.
 *
 * Deliberately not here: building positions (builder.ts) and style (format_score.ts).
 */
import type { StructureFault } from './errors.js';
import { TagGrammar } from './grammar.js';
import { MAX_TAG_LENGTH, NPR_TAGS, type NprTag, planLabel, type TagIds, tagOfId } from './tags.js';

export type ForkRefusal =
  | 'no-plans'
  | 'too-many-plans'
  | 'unnumbered-plan'
  | 'duplicate-labels'
  | 'inside-step'
  | 'depth-limit'
  | 'malformed-guideline'
  | 'unclosed-plan'
  | 'nested-guideline'
  | 'not-in-guideline';

export type ForkDecision = { fork: true; labels: string[] } | { fork: false; reason: ForkRefusal; message: string };

export type ValidatorEvent =
  | { event: 'guideline-closed'; at: number; depth: number; decision: ForkDecision }
  | { event: 'fault'; fault: StructureFault };

export interface ValidatorOptions {
  /** Most plans a forking guideline may have (default 8). */
  maxBranches?: number;
  /** Most blocks open at a fork, the forking one included (default 1: no fork inside a step). */
  maxDepth?: number;
  /** Tag ids: needed for pushToken (ids mode). */
  tagIds?: TagIds;
}

interface GuidelineRecord {
  labels: (string | undefined)[];
  plan: string | undefined;
  faulty: boolean;
}

/** Blocks deeper than this are refused by the grammar itself (a bound on memory, not a policy). */
const GRAMMAR_DEPTH = 64;

export class PreBranchValidator {
  readonly maxBranches: number;
  readonly maxDepth: number;
  private readonly tagOf: Map<number, NprTag> | undefined;
  private grammar = new TagGrammar({ nesting: true, maxDepth: GRAMMAR_DEPTH });
  private guidelines: GuidelineRecord[] = [];
  private rejectedGuideline: StructureFault | undefined;
  private carry = '';
  private consumed = 0;
  private recorded: StructureFault[] = [];
  private options: ValidatorOptions;

  constructor(options: ValidatorOptions = {}) {
    this.options = options;
    this.maxBranches = options.maxBranches ?? 8;
    this.maxDepth = options.maxDepth ?? 1;
    if (!Number.isInteger(this.maxBranches) || this.maxBranches < 1)
      throw new RangeError(`maxBranches must be an integer >= 1 (got ${this.maxBranches})`);
    if (!Number.isInteger(this.maxDepth) || this.maxDepth < 1)
      throw new RangeError(`maxDepth must be an integer >= 1 (got ${this.maxDepth})`);
    this.tagOf = options.tagIds ? tagOfId(options.tagIds) : undefined;
  }

  /** Every fault recorded so far. */
  get faults(): readonly StructureFault[] {
    return this.recorded;
  }

  /** Blocks open now. */
  get depth(): number {
    return this.grammar.depth;
  }

  /** Where the stream is now: 'root', 'step', or the phase of the innermost block (the engine's step tracking). */
  get where(): 'root' | 'step' | 'guideline' | 'plan' | 'steps' | 'takeaway' {
    return this.grammar.where;
  }

  /** Units consumed: characters (push) or tokens (pushToken). */
  get offset(): number {
    return this.consumed;
  }

  /** text mode: the next piece of the response. A tag split across pieces is held back until complete. */
  push(piece: string): ValidatorEvent[] {
    if (this.tagOf) throw new TypeError('this validator was given tagIds: feed it with pushToken(id, piece)');
    const events: ValidatorEvent[] = [];
    const buf = this.carry + piece;
    const base = this.consumed - this.carry.length;
    const hold = holdBack(buf);
    const re = /<\/?(?:guideline|plan|step|takeaway)>/g;
    let cur = 0;
    for (let m = re.exec(buf); m !== null && m.index < hold; m = re.exec(buf)) {
      this.text(buf.slice(cur, m.index));
      this.tag(m[0] as NprTag, base + m.index, events);
      cur = m.index + m[0].length;
    }
    this.text(buf.slice(cur, hold));
    this.carry = buf.slice(hold);
    this.consumed = base + buf.length;
    return events;
  }

  /** ids mode: the next token and its text piece (the piece is read only inside plans, for labels). */
  pushToken(id: number, piece = ''): ValidatorEvent[] {
    if (!this.tagOf) throw new TypeError('pushToken needs tagIds in the options (ids mode); use push(piece) in text mode');
    const events: ValidatorEvent[] = [];
    const tag = this.tagOf.get(id);
    if (tag) this.tag(tag, this.consumed, events);
    else this.text(piece);
    this.consumed++;
    return events;
  }

  /** The response is over: flushes held-back text and records an unclosed block. */
  end(): ValidatorEvent[] {
    this.text(this.carry);
    this.carry = '';
    const events: ValidatorEvent[] = [];
    const open = this.grammar.describeOpen();
    if (open) this.fault({ reason: 'unclosed-block', at: this.consumed, message: `the response ends while ${open}` }, events);
    return events;
  }

  /** An independent copy (the engine gives one to each branch at a fork). */
  clone(): PreBranchValidator {
    const v = new PreBranchValidator(this.options);
    v.grammar = this.grammar.clone();
    v.guidelines = this.guidelines.map((g) => ({ ...g, labels: [...g.labels] }));
    v.rejectedGuideline = this.rejectedGuideline;
    v.carry = this.carry;
    v.consumed = this.consumed;
    v.recorded = [...this.recorded];
    return v;
  }

  /** The branches of the innermost block joined: its steps count as done. False when no block waits for steps. */
  joined(): boolean {
    return this.grammar.markStepsDone();
  }

  private text(s: string): void {
    if (s.length === 0) return;
    const g = this.guidelines[this.guidelines.length - 1];
    if (g && this.grammar.where === 'plan') g.plan = (g.plan ?? '') + s;
  }

  private tag(tag: NprTag, at: number, events: ValidatorEvent[]): void {
    const where = this.grammar.where;
    const g = this.guidelines[this.guidelines.length - 1];
    const tr = this.grammar.feed(tag);
    if (!tr.ok) {
      const fault = { reason: tr.reason, at, message: tr.message };
      this.fault(fault, events);
      if (g && (where === 'guideline' || where === 'plan')) g.faulty = true;
      if (tag === '<guideline>') this.rejectedGuideline = fault;
      if (tag === '</guideline>') {
        const decision: ForkDecision =
          where === 'plan'
            ? refuse('unclosed-plan', '</guideline> inside an open plan')
            : where === 'guideline'
              ? refuse('no-plans', 'the guideline has no plan')
              : this.rejectedGuideline
                ? refuse('nested-guideline', `its <guideline> was out of place: ${this.rejectedGuideline.message}`)
                : refuse('not-in-guideline', '</guideline> with no open guideline');
        this.rejectedGuideline = undefined;
        events.push({ event: 'guideline-closed', at, depth: this.grammar.depth, decision });
      }
      return;
    }
    switch (tr.action) {
      case 'open-block':
        this.guidelines.push({ labels: [], plan: undefined, faulty: false });
        break;
      case 'open-plan':
        if (g) g.plan = '';
        break;
      case 'close-plan':
        if (g) g.labels.push(planLabel(g.plan ?? ''));
        break;
      case 'close-guideline':
        this.rejectedGuideline = undefined;
        events.push({ event: 'guideline-closed', at, depth: this.grammar.depth, decision: this.decide(g as GuidelineRecord) });
        break;
      case 'close-block':
        this.guidelines.pop();
        break;
      default:
        break;
    }
  }

  private decide(g: GuidelineRecord): ForkDecision {
    const depth = this.grammar.depth;
    if (g.faulty) return refuse('malformed-guideline', 'a tag out of place inside the guideline');
    if (depth > this.maxDepth)
      return this.maxDepth === 1
        ? refuse('inside-step', 'the guideline is inside a step (nesting is off)')
        : refuse('depth-limit', `the guideline is at depth ${depth}, above maxDepth ${this.maxDepth}`);
    if (g.labels.length > this.maxBranches)
      return refuse('too-many-plans', `${g.labels.length} plans, above maxBranches ${this.maxBranches}`);
    const missing = g.labels.indexOf(undefined);
    if (missing >= 0) return refuse('unnumbered-plan', `plan ${missing + 1} has no 'N:' label`);
    const labels = g.labels as string[];
    if (new Set(labels).size !== labels.length) return refuse('duplicate-labels', `labels repeat: ${labels.join(', ')}`);
    return { fork: true, labels };
  }

  private fault(fault: StructureFault, events: ValidatorEvent[]): void {
    this.recorded.push(fault);
    events.push({ event: 'fault', fault });
  }
}

function refuse(reason: ForkRefusal, message: string): ForkDecision {
  return { fork: false, reason, message };
}

/** Index from which `buf` may be the start of a tag still being written (buf.length when none). */
function holdBack(buf: string): number {
  for (let i = Math.max(0, buf.length - MAX_TAG_LENGTH + 1); i < buf.length; i++) {
    if (buf[i] !== '<') continue;
    const rest = buf.slice(i);
    if (NPR_TAGS.some((t) => t.length > rest.length && t.startsWith(rest))) return i;
  }
  return buf.length;
}
