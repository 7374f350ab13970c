/**
 * `npr eval --model DIR --tasks NAME|FILE [--k 8] [--mode parallel|ar] [--json]`: avg@k,
 * pass@k (unbiased), format-valid rate, parallel-trigger rate, branch correctness, tokens/s and
 * wall-clock per problem of one model (ts/eval/evaluate.ts). NAME is a task family, a comma
 * list of them, or 'demo'; FILE is a JSONL of {question, answer}.
 */
import type { Command } from 'commander';
import { ConfigError } from '../bindings/errors.js';
import { evaluate } from '../eval/evaluate.js';
import { Model } from '../model/model.js';
import { resolveTasks } from '../tasks/sets.js';
import { integerFlag } from './flags.js';

interface EvalCliOptions {
  model: string;
  tasks: string;
  k: string;
  mode: string;
  problems: string;
  seed: string;
  instruction?: boolean;
  temperature: string;
  topP: string;
  maxNewTokens: string;
  latency: string;
  json?: boolean;
}

export function registerEvalCommand(program: Command): void {
  program
    .command('eval')
    .description('evaluate a model: avg@k, pass@k, format-valid and parallel rates, branch correctness, speed')
    .requiredOption('--model <dir>', 'model directory (Hugging Face Qwen3 with tokenizer.json)')
    .requiredOption('--tasks <name|file>', "task family, comma list, 'demo', or a JSONL file of {question, answer}")
    .option('--k <n>', 'samples per problem', '8')
    .option('--mode <mode>', 'parallel (the NPR engine) or ar (sequential)', 'parallel')
    .option('--problems <n>', 'held-out problems drawn from task families', '64')
    .option('--seed <n>', 'seed of the problems and the sampler', '0')
    .option('--no-instruction', 'leave the parallel-format instruction out of the prompt (default: in it for --mode parallel)')
    .option('--temperature <x>', 'sampling temperature', '1')
    .option('--top-p <x>', 'nucleus sampling', '0.7')
    .option('--max-new-tokens <n>', 'token budget per sample, all branches', '400')
    .option('--latency <n>', 'problems timed one at a time for s/problem and tok/s', '16')
    .option('--json', 'print the figures as one JSON object')
    .action(async (o: EvalCliOptions) => {
      if (o.mode !== 'parallel' && o.mode !== 'ar') throw new ConfigError(`--mode must be parallel or ar (got '${o.mode}')`);
      const temperature = Number(o.temperature);
      const topP = Number(o.topP);
      if (!(temperature >= 0)) throw new ConfigError(`--temperature must be a number >= 0 (got '${o.temperature}')`);
      if (!(topP > 0 && topP <= 1)) throw new ConfigError(`--top-p must be in (0, 1] (got '${o.topP}')`);
      const seed = integerFlag('--seed', o.seed, 0);
      const items = await resolveTasks(o.tasks, integerFlag('--problems', o.problems, 1), seed);
      const model = await Model.load(o.model);
      const r = await evaluate(model, items, {
        k: integerFlag('--k', o.k, 1),
        mode: o.mode,
        instruction: o.instruction !== false && o.mode === 'parallel',
        temperature,
        topP,
        seed,
        maxNewTokens: integerFlag('--max-new-tokens', o.maxNewTokens, 1),
        latencyProblems: integerFlag('--latency', o.latency, 0),
      });
      if (o.json) {
        console.log(JSON.stringify(r));
        return;
      }
      const pct = (v: number | null) => (v === null ? '-' : `${(100 * v).toFixed(1)}%`);
      console.log(`${items.length} problems, k = ${r.k}, mode ${r.mode}`);
      console.log(
        `avg@${r.k} ${pct(r.avg_at_k)}  pass@${r.k} ${pct(r.pass_at_k)}  format-valid ${pct(r.format_valid_rate)}  parallel ${pct(r.parallel_rate)}  branches ${pct(r.branch_correct_rate)}`,
      );
      console.log(`${r.tokens_per_s.toFixed(0)} tokens/s, ${r.wall_s_per_problem.toFixed(3)} s per problem (one at a time)`);
      for (const [f, x] of Object.entries(r.families))
        console.log(
          `  ${f}: avg@${r.k} ${pct(x.avg_at_k)} pass@${r.k} ${pct(x.pass_at_k)} format ${pct(x.format_valid_rate)} branches ${pct(x.branch_correct_rate)}`,
        );
    });
}
