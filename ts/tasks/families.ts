/**
 * The demo's task families: seeded generators with exact verifiers, answers in \boxed{}, and
 * the two renderings of a solution - sequential (one line per part) and the NPR tag format
 * (a guideline of terse plans, one step per part, a short reduction in the takeaway).
 *
 *   question  `fib largest 1:37 2:52 3:18 4:90 5:44`    (or `fib choose 6 1:37 ...`)
 *   part      `1:37` + 30 chain digits + the label again + `=` + the last digit (`...1=3`)
 *   reduction the results gathered by label (`1=3 2=9 3=0 4=4 5=7`), then `largest 9` or
 *             `smallest 0`; for `choose`, a scan that gathers results, each beside the target,
 *             until one equals it (`choose 9: 1=7/9 2=1/9 3=9/9`): the answer is the label it
 *             stopped at
 *
 * Why the results are gathered by label before the reduction: a model of ~1M parameters
 * learns to copy by label (an induction pattern: `2=` -> the token after the earlier `2=`) and
 * local rules over a few adjacent tokens within minutes, but not a max over five results
 * scattered ~36 tokens apart (measured: after 8M tokens of pretraining, chains 100% right and
 * the reduction still at chance). Likewise `choose t at k` after a full gathered line stayed at
 * a constant answer after 13M tokens while `largest` reached 100%, and so did a scan that had
 * to fetch the target from the start of its line (10M tokens: it never stopped early); with
 * the target carried along, every decision is a comparison of nearby tokens at fixed offsets
 * and the answer the last label written.
 *
 * Collective parallelism: `largest`/`smallest` need every part's work. Selective: `choose`
 * explores five alternatives and keeps one. The answer is a reduction over the results and
 * never follows from the prompt without the chains; generators balance the answers (uniform
 * over 4..9, 0..5, or the five labels) so no constant answer scores above chance.
 *
 * The evaluated families (`fib-largest`, `fib-choose`) appear in the pretraining corpus only
 * sequentially; the tag grammar is taught by the other families (`fib-smallest`, `ramp-*`,
 * `hop-*`).
 */
import { type ChainRule, chainDigits } from './chains.js';

export interface Part {
  label: number;
  seed: string;
  digits: string;
  result: string;
}

export interface TaskProblem {
  family: string;
  question: string;
  answer: string;
  parts: Part[];
}

export type Reduction = 'largest' | 'smallest' | 'choose';

export interface TaskFamily {
  name: string;
  rule: ChainRule;
  reduction: Reduction;
  kind: 'collective' | 'selective';
  /** Evaluated by the demo (shown only sequentially in the pretraining corpus). */
  evaluated: boolean;
  /** Probability that a uniform guess over the answer range is right. */
  chance: number;
  generate(rand: () => number): TaskProblem;
}

export const PARTS = 5;
export const CHAIN_LENGTH = 30;

const seed2 = (rand: () => number) => String(Math.floor(rand() * 100)).padStart(2, '0');
const pick = <T>(rand: () => number, xs: readonly T[]) => xs[Math.floor(rand() * xs.length)] as T;

function makePart(rule: ChainRule, label: number, seed: string): Part {
  const digits = chainDigits(rule, seed, CHAIN_LENGTH);
  return { label, seed, digits, result: digits[digits.length - 1] as string };
}

function extremeFamily(rule: ChainRule, reduction: 'largest' | 'smallest', evaluated: boolean): TaskFamily {
  const answers = reduction === 'largest' ? [4, 5, 6, 7, 8, 9] : [0, 1, 2, 3, 4, 5];
  return {
    name: `${rule}-${reduction}`,
    rule,
    reduction,
    kind: 'collective',
    evaluated,
    chance: 1 / answers.length,
    generate(rand) {
      const want = pick(rand, answers);
      for (;;) {
        const parts = Array.from({ length: PARTS }, (_, i) => makePart(rule, i + 1, seed2(rand)));
        const results = parts.map((p) => Number(p.result));
        const got = reduction === 'largest' ? Math.max(...results) : Math.min(...results);
        if (got !== want) continue;
        const items = parts.map((p) => `${p.label}:${p.seed}`).join(' ');
        return { family: this.name, question: `${rule} ${reduction} ${items}`, answer: String(got), parts };
      }
    },
  };
}

function chooseFamily(rule: ChainRule, evaluated: boolean): TaskFamily {
  return {
    name: `${rule}-choose`,
    rule,
    reduction: 'choose',
    kind: 'selective',
    evaluated,
    chance: 1 / PARTS,
    generate(rand) {
      const winner = 1 + Math.floor(rand() * PARTS);
      const target = String(Math.floor(rand() * 10));
      const parts: Part[] = [];
      for (let label = 1; label <= PARTS; label++) {
        for (;;) {
          const p = makePart(rule, label, seed2(rand));
          if ((p.result === target) === (label === winner)) {
            parts.push(p);
            break;
          }
        }
      }
      const items = parts.map((p) => `${p.label}:${p.seed}`).join(' ');
      return { family: this.name, question: `${rule} choose ${target} ${items}`, answer: String(winner), parts };
    },
  };
}

export const FAMILIES: readonly TaskFamily[] = [
  extremeFamily('fib', 'largest', true),
  chooseFamily('fib', true),
  extremeFamily('fib', 'smallest', false),
  extremeFamily('ramp', 'largest', false),
  extremeFamily('ramp', 'smallest', false),
  chooseFamily('ramp', false),
  extremeFamily('hop', 'largest', false),
  extremeFamily('hop', 'smallest', false),
  chooseFamily('hop', false),
];

export function family(name: string): TaskFamily {
  const f = FAMILIES.find((x) => x.name === name);
  if (!f) throw new RangeError(`unknown task family '${name}' (known: ${FAMILIES.map((x) => x.name).join(', ')})`);
  return f;
}

const partLine = (p: Part) => `${p.label}:${p.seed}${p.digits}${p.label}=${p.result}`;

/** The results gathered by label, then the reduction (`largest 9`), or the scan of `choose` (`choose 7: 1=3/7 2=7/7`). */
function reductionText(p: TaskProblem): string {
  const [, word, target] = p.question.split(' ');
  if (word === 'choose')
    return `choose ${target}: ${p.parts
      .slice(0, Number(p.answer))
      .map((x) => `${x.label}=${x.result}/${target}`)
      .join(' ')}`;
  return `${p.parts.map((x) => `${x.label}=${x.result}`).join(' ')}\n${word} ${p.answer}`;
}

/** The sequential solution: one line per part, the reduction, the boxed answer. */
export function sequentialSolution(p: TaskProblem): string {
  return `${p.parts.map(partLine).join('\n')}\n${reductionText(p)}\n\\boxed{${p.answer}}`;
}

/**
 * The NPR-format solution, spelled exactly as the engine writes it: the guideline, then per
 * part the forced `\n<step>\n{label}:` and the step's work, then the forced `\n<takeaway>`.
 */
export function parallelSolution(p: TaskProblem): string {
  const plans = p.parts.map((x) => `<plan>${x.label}:${x.seed}</plan>`).join('');
  const steps = p.parts.map((x) => `\n<step>\n${partLine(x)}</step>`).join('');
  return `<guideline>${plans}</guideline>${steps}\n<takeaway>${reductionText(p)}</takeaway>\n\\boxed{${p.answer}}`;
}

/** Parts written out exactly right (label, seed, every chain digit and the result), in either rendering. */
export function branchCorrectness(p: TaskProblem, response: string): { correct: number; total: number } {
  const seen = new Map<number, string>();
  for (const m of response.matchAll(/([0-9]):([0-9]+)=([0-9])/g)) {
    const label = Number(m[1]);
    if (!seen.has(label)) seen.set(label, `${m[2]}=${m[3]}`);
  }
  let correct = 0;
  for (const part of p.parts) if (seen.get(part.label) === `${part.seed}${part.digits}${part.label}=${part.result}`) correct++;
  return { correct, total: p.parts.length };
}
