/**
 * The tag grammar of parallel blocks as a small state machine over tag events: a stack whose
 * root is sequential text, a block frame per open `<guideline>` (phases guideline, plan, steps,
 * takeaway) and a step frame per open `<step>`. `feed(tag)` either applies the tag and names
 * the action, or names the fault and leaves the state exactly as it was, so a caller may stop
 * (the builder) or record the fault and go on (the streaming validator). Text between tags is
 * never seen here: any text is allowed anywhere.
 *
 * Deliberately not here: where tags are (scan.ts), token positions (builder.ts), plan labels
 * and branch limits (validator.ts), and style (format_score.ts).
 */
import type { RejectionKind } from './errors.js';
import type { NprTag } from './tags.js';

export type GrammarAction =
  | 'open-block'
  | 'open-plan'
  | 'close-plan'
  | 'close-guideline'
  | 'open-step'
  | 'close-step'
  | 'open-takeaway'
  | 'close-block';

export type Transition = { ok: true; action: GrammarAction } | { ok: false; reason: RejectionKind; message: string };

export interface GrammarOptions {
  /** Allow a whole block inside a step (default false: flat NPR). */
  nesting?: boolean;
  /** Most blocks open at once when nesting (default 5, the NPR engine's limit); 1 when nesting is off. */
  maxDepth?: number;
}

type Phase = 'guideline' | 'plan' | 'steps' | 'takeaway';
interface BlockFrame {
  kind: 'block';
  phase: Phase;
  plans: number;
  steps: number;
}
type Frame = { kind: 'root' } | BlockFrame | { kind: 'step' };

const fail = (reason: RejectionKind, message: string): Transition => ({ ok: false, reason, message });
const ok = (action: GrammarAction): Transition => ({ ok: true, action });

export class TagGrammar {
  readonly nesting: boolean;
  readonly maxDepth: number;
  private readonly stack: Frame[] = [{ kind: 'root' }];
  private blocksOpen = 0;

  constructor(options: GrammarOptions = {}) {
    this.nesting = options.nesting ?? false;
    this.maxDepth = this.nesting ? (options.maxDepth ?? 5) : 1;
    if (!Number.isInteger(this.maxDepth) || this.maxDepth < 1)
      throw new RangeError(`maxDepth must be an integer >= 1 (got ${this.maxDepth})`);
  }

  /** Blocks open now (0 = sequential text at the top level). */
  get depth(): number {
    return this.blocksOpen;
  }

  /** True when nothing is open: the response may end here. */
  get atRest(): boolean {
    return this.stack.length === 1;
  }

  /** Where the innermost frame is: 'root', 'step', or the phase of the innermost block. */
  get where(): 'root' | 'step' | Phase {
    const top = this.top();
    return top.kind === 'block' ? top.phase : top.kind;
  }

  /** Plans closed so far in the innermost block (0 outside a block). */
  get plansInBlock(): number {
    return this.innermostBlock()?.plans ?? 0;
  }

  /** A copy with the same state (the validator clones at a fork). */
  clone(): TagGrammar {
    const g = new TagGrammar({ nesting: this.nesting, maxDepth: this.maxDepth });
    g.stack.length = 0;
    for (const f of this.stack) g.stack.push({ ...f });
    g.blocksOpen = this.blocksOpen;
    return g;
  }

  /** After a join: the innermost block, waiting for its steps, counts them all as done. */
  markStepsDone(): boolean {
    const top = this.top();
    if (top.kind !== 'block' || top.phase !== 'steps') return false;
    top.steps = top.plans;
    return true;
  }

  /** What is still open, for an 'unclosed-block' message; undefined at rest. */
  describeOpen(): string | undefined {
    if (this.atRest) return undefined;
    const where = this.where;
    const what = where === 'step' ? 'a <step>' : where === 'plan' ? 'a <plan>' : where === 'takeaway' ? 'a <takeaway>' : 'a block';
    return `${what} is still open (${this.blocksOpen} block${this.blocksOpen === 1 ? '' : 's'} open)`;
  }

  feed(tag: NprTag): Transition {
    const top = this.top();
    if (top.kind === 'block') return this.inBlock(top, tag);
    const inStep = top.kind === 'step';
    switch (tag) {
      case '<guideline>':
        if (inStep && !this.nesting) return fail('nested-guideline', '<guideline> inside a step, and nesting is off');
        if (this.blocksOpen + 1 > this.maxDepth)
          return fail('depth-limit', `<guideline> would open block depth ${this.blocksOpen + 1}, above maxDepth ${this.maxDepth}`);
        this.stack.push({ kind: 'block', phase: 'guideline', plans: 0, steps: 0 });
        this.blocksOpen++;
        return ok('open-block');
      case '<plan>':
        return fail('plan-outside-guideline', '<plan> outside a guideline');
      case '<step>':
        return inStep
          ? fail('nested-step', '<step> while a step is open')
          : fail('step-outside-guideline', '<step> with no guideline before it');
      case '</step>':
        if (!inStep) return fail('close-step-without-open', '</step> with no open step');
        this.stack.pop();
        (this.top() as BlockFrame).steps++;
        return ok('close-step');
      case '<takeaway>':
        return inStep
          ? fail('takeaway-in-step', '<takeaway> while a step is open')
          : fail('takeaway-before-step', '<takeaway> outside any block');
      default:
        return fail('stray-close-tag', `${tag} with nothing of its kind open`);
    }
  }

  private inBlock(b: BlockFrame, tag: NprTag): Transition {
    switch (b.phase) {
      case 'guideline':
        if (tag === '<plan>') {
          b.phase = 'plan';
          return ok('open-plan');
        }
        if (tag === '</guideline>') {
          if (b.plans === 0) return fail('guideline-without-plans', '</guideline> closes a guideline with no <plan>');
          b.phase = 'steps';
          return ok('close-guideline');
        }
        if (tag === '<guideline>') return fail('nested-guideline', '<guideline> inside a guideline');
        if (tag === '</plan>') return fail('stray-close-tag', '</plan> with no open plan');
        return fail('tag-in-guideline', `${tag} inside a guideline (only <plan> ... </plan> belongs there)`);
      case 'plan':
        if (tag !== '</plan>') return fail('tag-in-plan', `${tag} inside a plan`);
        b.phase = 'guideline';
        b.plans++;
        return ok('close-plan');
      case 'steps':
        switch (tag) {
          case '<step>':
            if (b.steps >= b.plans) return fail('step-count-mismatch', `step ${b.steps + 1} of a block with ${b.plans} plan(s)`);
            this.stack.push({ kind: 'step' });
            return ok('open-step');
          case '<takeaway>':
            if (b.steps === 0) return fail('takeaway-before-step', '<takeaway> before any step of its block');
            if (b.steps !== b.plans)
              return fail('step-count-mismatch', `<takeaway> after ${b.steps} step(s) of a block with ${b.plans} plan(s)`);
            b.phase = 'takeaway';
            return ok('open-takeaway');
          case '</step>':
            return fail('close-step-without-open', '</step> with no open step');
          case '<plan>':
            return fail('plan-outside-guideline', '<plan> after </guideline>');
          case '<guideline>':
            return fail('nested-guideline', '<guideline> between the steps of an open block');
          default:
            return fail('stray-close-tag', `${tag} between steps, with nothing of its kind open`);
        }
      case 'takeaway':
        if (tag !== '</takeaway>') return fail('tag-in-takeaway', `${tag} inside a takeaway`);
        this.stack.pop();
        this.blocksOpen--;
        return ok('close-block');
    }
  }

  private top(): Frame {
    return this.stack[this.stack.length - 1] as Frame;
  }

  private innermostBlock(): BlockFrame | undefined {
    for (let i = this.stack.length - 1; i >= 0; i--) {
      const f = this.stack[i] as Frame;
      if (f.kind === 'block') return f;
    }
    return undefined;
  }
}
