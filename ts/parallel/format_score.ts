/**
 * The stage-1 format score (facts 1.3): 0 for a response in the NPR format, otherwise a
 * penalty in [-2, 0) graded by the kind of fault, on the response TEXT with all whitespace
 * removed (as NPR's rule list is applied). Rules, per fault found:
 *
 *   no block at all -1.5 | any tag outside blocks before the last one -1.5 (once) |
 *   guideline with no plan -1.0 | non-plan content in a guideline -0.4 | plans not adjacent -0.2 |
 *   steps != plans -1.0 | content between steps -0.2 | each plan < 3 chars or holding a tag -0.4 |
 *   each step < 6 chars -0.4 | takeaway < 6 chars -0.4 | tags after the last block -1.0 |
 *   \boxed{} missing or empty after the last block -1.0 | empty response -2.
 *
 * The total is clamped to -2. With no block the trailing text is the whole response, so the
 * \boxed{} rule still applies there. A block is found greedily left to right as
 * `<guideline>`...`</guideline>`...`<takeaway>`...`</takeaway>` (each the next occurrence).
 *
 * Deliberately not here: structure (a response can score 0 and still be rejected by the
 * builder, e.g. a stray tag inside a step: the builder is the final judge, as in NPR stage 3),
 * and answer correctness.
 */

export const FORMAT_PENALTIES = {
  'empty-response': -2,
  'no-blocks': -1.5,
  'tags-between-blocks': -1.5,
  'guideline-without-plans': -1.0,
  'non-plan-content': -0.4,
  'plans-not-adjacent': -0.2,
  'step-count-mismatch': -1.0,
  'content-between-steps': -0.2,
  'short-plan': -0.4,
  'short-step': -0.4,
  'short-takeaway': -0.4,
  'tags-after-last-block': -1.0,
  'missing-boxed': -1.0,
} as const;

export type FormatFaultKind = keyof typeof FORMAT_PENALTIES;

export interface FormatFault {
  kind: FormatFaultKind;
  penalty: number;
  /** Block index (0-based) the fault is in, when it is in one. */
  block?: number;
  message: string;
}

export interface FormatReport {
  /** 0 when valid, else the sum of the penalties clamped to -2. */
  score: number;
  valid: boolean;
  /** Blocks found. */
  blocks: number;
  faults: FormatFault[];
}

const MIN_PLAN = 3;
const MIN_STEP = 6;
const MIN_TAKEAWAY = 6;
const ANY_TAG = /<\/?(?:guideline|plan|step|takeaway)>/;

/** Non-greedy `<open>...</close>` spans of `s`, and what lies outside them. */
function spans(s: string, open: string, close: string): { contents: string[]; gaps: string[] } {
  const contents: string[] = [];
  const gaps: string[] = [];
  let cur = 0;
  for (;;) {
    const a = s.indexOf(open, cur);
    const b = a < 0 ? -1 : s.indexOf(close, a + open.length);
    if (b < 0) break;
    gaps.push(s.slice(cur, a));
    contents.push(s.slice(a + open.length, b));
    cur = b + close.length;
  }
  gaps.push(s.slice(cur));
  return { contents, gaps };
}

/** Content of the last `\boxed{...}` of `s` (braces balanced), or undefined when there is none. */
export function lastBoxed(s: string): string | undefined {
  const i = s.lastIndexOf('\\boxed{');
  if (i < 0) return undefined;
  let depth = 0;
  for (let j = i + 6; j < s.length; j++) {
    if (s[j] === '{') depth++;
    else if (s[j] === '}' && --depth === 0) return s.slice(i + 7, j);
  }
  return undefined;
}

export function formatScore(response: string): FormatReport {
  const s = response.replace(/\s+/g, '');
  const faults: FormatFault[] = [];
  const add = (kind: FormatFaultKind, message: string, block?: number) =>
    faults.push({ kind, penalty: FORMAT_PENALTIES[kind], message, ...(block === undefined ? {} : { block }) });
  if (s.length === 0) {
    add('empty-response', 'the response is empty');
    return finish(faults, 0);
  }
  const gaps: string[] = [];
  let cur = 0;
  let blocks = 0;
  for (;;) {
    const g0 = s.indexOf('<guideline>', cur);
    const g1 = g0 < 0 ? -1 : s.indexOf('</guideline>', g0 + 11);
    const t0 = g1 < 0 ? -1 : s.indexOf('<takeaway>', g1 + 12);
    const t1 = t0 < 0 ? -1 : s.indexOf('</takeaway>', t0 + 10);
    if (t1 < 0) break;
    gaps.push(s.slice(cur, g0));
    checkBlock(blocks++, s.slice(g0 + 11, g1), s.slice(g1 + 12, t0), s.slice(t0 + 10, t1), add);
    cur = t1 + 11;
  }
  const trailing = s.slice(cur);
  if (blocks === 0) add('no-blocks', 'no <guideline>...</guideline> ... <takeaway>...</takeaway> block');
  if (gaps.some((g) => ANY_TAG.test(g))) add('tags-between-blocks', 'a tag outside the blocks, before the last block');
  if (ANY_TAG.test(trailing)) add('tags-after-last-block', 'a tag after the last block (the final answer follows the last </takeaway>)');
  const boxed = lastBoxed(trailing);
  if (!boxed) add('missing-boxed', `${boxed === '' ? 'an empty' : 'no'} \\boxed{} after the last block`);
  return finish(faults, blocks);
}

function checkBlock(
  b: number,
  guideline: string,
  region: string,
  takeaway: string,
  add: (kind: FormatFaultKind, message: string, block?: number) => void,
): void {
  const plans = spans(guideline, '<plan>', '</plan>');
  if (plans.contents.length === 0) add('guideline-without-plans', `block ${b}: the guideline has no <plan>`, b);
  if (plans.gaps.some((g) => g.length > 0)) add('non-plan-content', `block ${b}: the guideline holds text outside its plans`, b);
  if (plans.gaps.slice(1, -1).some((g) => g.length > 0)) add('plans-not-adjacent', `block ${b}: text between plans`, b);
  plans.contents.forEach((p, i) => {
    if (p.length < MIN_PLAN || ANY_TAG.test(p))
      add('short-plan', `block ${b}: plan ${i + 1} is shorter than ${MIN_PLAN} characters or holds a tag`, b);
  });
  const steps = spans(region, '<step>', '</step>');
  if (steps.contents.length !== plans.contents.length)
    add('step-count-mismatch', `block ${b}: ${steps.contents.length} step(s) for ${plans.contents.length} plan(s)`, b);
  if (steps.gaps.some((g) => g.length > 0))
    add('content-between-steps', `block ${b}: text between </guideline>, the steps and <takeaway>`, b);
  steps.contents.forEach((p, i) => {
    if (p.length < MIN_STEP) add('short-step', `block ${b}: step ${i + 1} is shorter than ${MIN_STEP} characters`, b);
  });
  if (takeaway.length < MIN_TAKEAWAY) add('short-takeaway', `block ${b}: the takeaway is shorter than ${MIN_TAKEAWAY} characters`, b);
}

function finish(faults: FormatFault[], blocks: number): FormatReport {
  const total = faults.reduce((a, f) => a + f.penalty, 0);
  const score = faults.length === 0 ? 0 : Math.max(-2, Math.round(total * 1e9) / 1e9);
  return { score, valid: faults.length === 0, blocks, faults };
}
