/**
 * `npm run bench -- answer-check`: the answer checker against math-verify's own test suite
 * (../shared/reference/math-verify-cases.json): agreement with its verdicts, and checks per
 * second over the whole suite (extraction + normalisation + equivalence; the compute engine is
 * warmed up by one pass first).
 */
import { readFileSync } from 'node:fs';
import { Bench } from 'tinybench';
import { checkAnswer } from '../ts/trainer/rewards/answer.js';
import { printJson, printTable, round } from './_report.js';

interface Case {
  gold: string;
  pred: string;
  expected: 0 | 1;
  match_types: string[];
}
const cases = (
  JSON.parse(readFileSync(new URL('../../../shared/reference/math-verify-cases.json', import.meta.url), 'utf8')) as { cases: Case[] }
).cases;
const run = () => {
  let agree = 0;
  for (const c of cases)
    if (
      checkAnswer(c.pred, c.gold, { latex: c.match_types.includes('latex'), expr: c.match_types.includes('expr') }) ===
      (c.expected === 1)
    )
      agree++;
  return agree;
};
const agree = run();
const bench = new Bench({ time: 2000 });
bench.add('math-verify suite', run);
await bench.run();
const task = bench.tasks[0];
const ms = task?.result && 'latency' in task.result ? task.result.latency.p50 : Number.NaN;
const checksPerS = (cases.length / (ms ?? Number.NaN)) * 1000;
printTable([
  {
    cases: cases.length,
    agree,
    agreement: round(agree / cases.length, 4),
    suite_ms_median: round(ms ?? null, 2),
    checks_per_s: round(checksPerS, 0),
  },
]);
printJson('answer-check', {
  cases: cases.length,
  agreement: round(agree / cases.length, 4),
  checks_per_s: round(checksPerS, 0),
  suite_ms_median: round(ms ?? null, 2),
});
