/**
 * `npr generate --model DIR --prompt TEXT [--mode parallel|ar] [--max-new-tokens N] [--seed N]
 * [--temperature T] [--top-p P] [--raw] [--json]`: one request through the engine. On a terminal
 * every branch gets a lane that grows live (the trunk first, each step branch under it), then a
 * summary (tokens, branches, forks, wall time, tokens/s); piped, the text and the summary;
 * `--json` prints the Rollout (typed arrays as arrays). The prompt goes through the model's chat
 * template when it has one, unless --raw.
 */
import type { Command } from 'commander';
import { ConfigError } from '../bindings/errors.js';
import { codecFromTokenizer } from '../engine/codec.js';
import { Engine } from '../engine/engine.js';
import { rolloutToJson } from '../engine/rollout.js';
import type { EngineMode, Rollout } from '../engine/types.js';
import { Model } from '../model/model.js';
import { HfTokenizer } from '../model/tokenizer.js';
import { integerFlag, numberFlag } from './flags.js';

interface GenerateCliOptions {
  model: string;
  prompt: string;
  mode: string;
  maxNewTokens: string;
  seed: string;
  temperature: string;
  topP: string;
  raw?: boolean;
  json?: boolean;
  backend: string;
}

/** Live lanes: one line per branch, redrawn in place (at most every 50 ms). */
class Lanes {
  private readonly lanes = new Map<number, { name: string; text: string }>();
  private drawn = 0;
  private last = 0;

  constructor(private readonly out: NodeJS.WriteStream) {}

  add(branch: number, name: string, piece: string): void {
    const lane = this.lanes.get(branch) ?? { name, text: '' };
    lane.text += piece;
    this.lanes.set(branch, lane);
    const now = performance.now();
    if (now - this.last > 50) this.draw();
  }

  draw(): void {
    this.last = performance.now();
    const width = Math.max(20, (this.out.columns ?? 100) - 14);
    let s = this.drawn > 0 ? `\x1b[${this.drawn}A` : '';
    for (const { name, text } of this.lanes.values()) {
      const flat = text.replace(/\n/g, '⏎');
      s += `\x1b[2K${name.padEnd(10).slice(0, 10)} │ ${flat.length > width ? `…${flat.slice(-(width - 1))}` : flat}\n`;
    }
    this.drawn = this.lanes.size;
    this.out.write(s);
  }
}

function summary(r: Rollout, wallMs: number): string {
  const forks = r.blocks.filter((b) => b.parallel).length;
  const refused = r.blocks.length - forks;
  const tps = r.generatedTokens / (wallMs / 1000);
  return (
    `${r.generatedTokens} tokens, ${r.branches.length} branches, ${forks} forks` +
    `${refused ? ` (${refused} refused: ${r.blocks.flatMap((b) => (b.parallel ? [] : [b.reason])).join(', ')})` : ''}` +
    `, finish ${r.finishReason}${r.fault ? ` (${r.fault.message})` : ''}, ${(wallMs / 1000).toFixed(2)} s, ${tps.toFixed(1)} tokens/s`
  );
}

export async function generateCommand(opts: GenerateCliOptions): Promise<void> {
  const mode = opts.mode as EngineMode;
  if (mode !== 'parallel' && mode !== 'ar') throw new ConfigError(`--mode must be 'parallel' or 'ar' (got '${opts.mode}')`);
  const maxNewTokens = integerFlag('--max-new-tokens', opts.maxNewTokens, 1);
  const seed = integerFlag('--seed', opts.seed, 0);
  const temperature = numberFlag('--temperature', opts.temperature, 0, 100);
  const topP = numberFlag('--top-p', opts.topP, Number.MIN_VALUE, 1);
  const backend = opts.backend;
  if (backend !== 'cpu' && backend !== 'cuda' && backend !== 'auto')
    throw new ConfigError(`--backend must be 'cpu', 'cuda' or 'auto' (got '${backend}')`);
  const model = await Model.load(opts.model, { backend });
  if (!model.tokenizerFiles.tokenizer) throw new ConfigError(`${opts.model} has no tokenizer.json: npr generate needs one`);
  const tokenizer = HfTokenizer.fromFiles(model.tokenizerFiles);
  const codec = codecFromTokenizer(tokenizer);
  const prompt =
    tokenizer.hasChatTemplate && !opts.raw
      ? tokenizer.encodeChat([{ role: 'user', content: opts.prompt }], { addGenerationPrompt: true })
      : tokenizer.encode(opts.prompt, { addSpecialTokens: false });
  const blockTokens = 16;
  const engine = new Engine({
    model: model.nativeHandle,
    vocab: model.config.vocabSize,
    codec,
    blockTokens,
    kvBlocks: Math.ceil((prompt.length + maxNewTokens) / blockTokens) + 64,
  });
  const tty = process.stdout.isTTY && !opts.json;
  const lanes = tty ? new Lanes(process.stdout) : undefined;
  if (lanes) {
    const names = new Map<number, string>([[0, 'trunk']]);
    engine.on('fork', (e) => {
      for (const [i, c] of e.children.entries()) names.set(c, `  step ${e.labels[i]}`);
    });
    engine.on('token', (e) => lanes.add(e.branch, names.get(e.branch) ?? `b${e.branch}`, codec.piece(e.token)));
  }
  const t0 = performance.now();
  const [rollout] = (await engine.generate([prompt], { mode, maxNewTokens, seed, temperature, topP })) as [Rollout];
  const wallMs = performance.now() - t0;
  if (opts.json) {
    console.log(JSON.stringify(rolloutToJson(rollout)));
    return;
  }
  if (lanes) lanes.draw();
  else console.log(rollout.text ?? '');
  console.log(`\n${summary(rollout, wallMs)}`);
}

export function registerGenerateCommand(program: Command): void {
  program
    .command('generate')
    .description('generate with the NPR engine: fork at </guideline>, join before <takeaway> (or --mode ar)')
    .requiredOption('--model <dir>', 'Hugging Face Qwen3 directory (config.json, safetensors, tokenizer.json)')
    .requiredOption('--prompt <text>', 'the user message (through the chat template unless --raw)')
    .option('--mode <mode>', "'parallel' or 'ar' (no forks: the sequential baseline)", 'parallel')
    .option('--max-new-tokens <n>', 'bound on all branches’ new tokens together', '512')
    .option('--seed <n>', 'seed of the counter-based sampler', '0')
    .option('--temperature <t>', 'sampling temperature (0 = greedy)', '1')
    .option('--top-p <p>', 'nucleus sampling mass', '1')
    .option('--raw', 'encode the prompt as it is (no chat template)')
    .option('--json', 'print the Rollout as JSON')
    .option('--backend <backend>', "'cpu', 'cuda' (bf16 on the device) or 'auto' (cuda when a device answers)", 'cpu')
    .action(generateCommand);
}
