/**
 * Problem sets from the task families: deterministic (family list, split, count, seed) ->
 * problems, only from the requested side of the hash split and without repeats; the JSONL form
 * `{question, answer}` the trainer and `npr eval` read (users' own data uses the same format);
 * and `resolveTasks` for the CLI's `--tasks NAME|FILE`.
 */
import { existsSync } from 'node:fs';
import { ConfigError } from '../bindings/errors.js';
import { loadProblems, seededRandom } from '../trainer/data.js';
import { FAMILIES, family, type TaskProblem } from './families.js';
import { type Split, splitOf } from './split.js';

/** The families the demo evaluates. */
export const DEMO_FAMILIES = FAMILIES.filter((f) => f.evaluated).map((f) => f.name);

/** An evaluation item: the question and answer, and the generated problem when it came from a family. */
export interface TaskItem {
  question: string;
  answer: string;
  task?: TaskProblem;
}

/** `count` distinct problems of `split`, families taken round-robin, from `seed`. */
export function generateProblems(families: readonly string[], split: Split, count: number, seed: number): TaskProblem[] {
  const fams = families.map(family);
  const rand = seededRandom(seed * 2654435761 + (split === 'test' ? 17 : 3));
  const seen = new Set<string>();
  const out: TaskProblem[] = [];
  for (let i = 0, tries = 0; out.length < count; tries++) {
    if (tries > count * 1000) throw new Error(`could not draw ${count} distinct ${split} problems of ${families.join(',')}`);
    const p = (fams[i % fams.length] as (typeof fams)[number]).generate(rand);
    if (splitOf(p.question) !== split || seen.has(p.question)) continue;
    seen.add(p.question);
    out.push(p);
    i++;
  }
  return out;
}

export function toJsonl(problems: readonly { question: string; answer: string }[]): string {
  return problems.map((p) => JSON.stringify({ question: p.question, answer: p.answer })).join('\n') + (problems.length ? '\n' : '');
}

/**
 * `--tasks` for evaluation: a JSONL file of {question, answer}, or family names separated by
 * commas ('demo' = the evaluated families), drawn from the held-out split.
 */
export async function resolveTasks(spec: string, count: number, seed: number): Promise<TaskItem[]> {
  if (existsSync(spec)) return (await loadProblems(spec)).problems.map((p) => ({ question: p.question, answer: p.answer }));
  const names = spec === 'demo' ? DEMO_FAMILIES : spec.split(',').map((s) => s.trim());
  for (const n of names)
    if (!FAMILIES.some((f) => f.name === n))
      throw new ConfigError(
        `--tasks '${spec}': '${n}' is neither a file nor a task family (${FAMILIES.map((f) => f.name).join(', ')}, demo)`,
      );
  return generateProblems(names, 'test', count, seed).map((task) => ({ question: task.question, answer: task.answer, task }));
}
