/**
 * `npr pretrain --out DIR [--seed N] [--steps N] [...]`: pretrains the demo's tiny base model
 * on the synthetic corpus (ts/trainer/pretrain.ts). Progress on stderr; interrupt and run the
 * same command again to resume from the last checkpoint.
 */
import type { Command } from 'commander';
import { ConfigError } from '../bindings/errors.js';
import { type PretrainConfig, pretrain } from '../trainer/pretrain.js';

const INT_FLAGS = [
  'seed',
  'steps',
  'batchTokens',
  'warmupSteps',
  'hidden',
  'layers',
  'heads',
  'kvHeads',
  'intermediate',
  'evalEvery',
  'evalProblems',
  'saveEvery',
] as const;

export function registerPretrainCommand(program: Command): void {
  program
    .command('pretrain')
    .description("pretrain the demo's tiny base model on the synthetic task corpus")
    .requiredOption('--out <dir>', 'output model directory')
    .option('--seed <n>', 'seed (default 0)')
    .option('--steps <n>', 'optimizer steps (default 2400)')
    .option('--batch-tokens <n>', 'tokens per step (default 8192)')
    .option('--lr <x>', 'peak learning rate (default 3e-3)')
    .option('--warmup-steps <n>', 'linear warmup (default 100)')
    .option('--hidden <n>', 'hidden size (default 128)')
    .option('--layers <n>', 'layers (default 6)')
    .option('--heads <n>', 'attention heads (default 4)')
    .option('--kv-heads <n>', 'KV heads (default 2)')
    .option('--intermediate <n>', 'MLP size (default 384)')
    .option('--eval-every <n>', 'held-out greedy accuracy every N steps (default 200)')
    .option('--eval-problems <n>', 'held-out problems per family (default 32)')
    .option('--save-every <n>', 'checkpoint every N steps (default 100)')
    .action(async (o: Record<string, string>) => {
      const config: PretrainConfig = { out: o.out as string };
      for (const k of INT_FLAGS) {
        if (o[k] === undefined) continue;
        const v = Number(o[k]);
        if (!Number.isInteger(v))
          throw new ConfigError(`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} must be an integer (got '${o[k]}')`);
        config[k] = v;
      }
      if (o.lr !== undefined) config.lr = Number(o.lr);
      const controller = new AbortController();
      process.once('SIGINT', () => controller.abort());
      const { dir, wallS } = await pretrain(config, {
        signal: controller.signal,
        onStep: (l) => {
          if ((l.step as number) % 20 === 0)
            process.stderr.write(
              `pretrain ${l.step}/${l.steps} loss ${(l.loss as number).toFixed(4)} lr ${(l.lr as number).toExponential(2)} ${(l.tokens_per_s as number).toFixed(0)} tok/s ${(l.wall_s as number).toFixed(0)} s\n`,
            );
        },
        onEval: (e) => process.stderr.write(`eval ${JSON.stringify(e)}\n`),
      });
      process.stderr.write(`npr pretrain: wrote ${dir} in ${wallS.toFixed(0)} s\n`);
    });
}
