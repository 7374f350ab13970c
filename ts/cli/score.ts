/**
 * `npr score --model DIR (--text TEXT | --ids 1,2,3) [--json]`: per-token logprobs of one
 * sequence under a model, for perplexity and for checking a model against another
 * implementation. The first token has no logprob (nothing predicts it). Plain causal
 * attention for now; the parallel Structure is taken from the tags once the structure
 * builder exists.
 */
import type { Command } from 'commander';
import { ConfigError } from '../bindings/errors.js';
import { causalBatch } from '../model/batch.js';
import { Model } from '../model/model.js';
import { HfTokenizer } from '../model/tokenizer.js';

interface ScoreOptions {
  model: string;
  text?: string;
  ids?: string;
  json?: boolean;
}

function parseIds(text: string, vocab: number): number[] {
  const ids = text.split(',').map((s) => s.trim());
  return ids.map((s, i) => {
    const n = Number(s);
    if (s === '' || !Number.isInteger(n) || n < 0 || n >= vocab) {
      throw new ConfigError(`--ids: entry ${i} ('${s}') must be an integer token id in [0, ${vocab})`);
    }
    return n;
  });
}

export async function scoreCommand(opts: ScoreOptions): Promise<void> {
  if ((opts.text === undefined) === (opts.ids === undefined)) throw new ConfigError('give exactly one of --text or --ids');
  const model = await Model.load(opts.model);
  const tokenizer = model.tokenizerFiles.tokenizer ? HfTokenizer.fromFiles(model.tokenizerFiles) : undefined;
  let ids: number[];
  if (opts.text !== undefined) {
    if (!tokenizer) throw new ConfigError(`${opts.model} has no tokenizer.json: score token ids with --ids instead`);
    ids = tokenizer.encode(opts.text);
  } else {
    ids = parseIds(opts.ids as string, model.config.vocabSize);
  }
  if (ids.length === 0) throw new ConfigError('nothing to score: the input has no tokens');
  const { logprob, entropy } = await model.forward(causalBatch([ids]), { entropy: true });
  const lps = Array.from(logprob, (v, t) => (t === 0 ? null : v));
  const scored = lps.filter((v): v is number => v !== null);
  const nll = scored.length ? -scored.reduce((a, b) => a + b, 0) / scored.length : null;
  const perplexity = nll === null ? null : Math.exp(nll);
  if (opts.json) {
    console.log(JSON.stringify({ tokens: ids, logprobs: lps, meanNll: nll, perplexity }));
    return;
  }
  for (let t = 0; t < ids.length; t++) {
    const piece = tokenizer?.idToToken(ids[t] as number) ?? '';
    const lp = lps[t];
    console.log(
      `${String(t).padStart(5)}  ${String(ids[t]).padStart(7)}  ${JSON.stringify(piece).padEnd(18)}  ${
        lp === null || lp === undefined ? '      -' : lp.toFixed(4).padStart(9)
      }  entropy ${(entropy?.[t] ?? 0).toFixed(3)}`,
    );
  }
  console.log(`tokens ${ids.length}, mean NLL ${nll?.toFixed(4) ?? '-'}, perplexity ${perplexity?.toFixed(3) ?? '-'}`);
}

export function registerScoreCommand(program: Command): void {
  program
    .command('score')
    .description('per-token logprobs of a sequence under a Hugging Face Qwen3 model directory')
    .requiredOption('--model <dir>', 'Hugging Face model directory (config.json, model.safetensors, tokenizer.json)')
    .option('--text <text>', 'text to tokenise and score')
    .option('--ids <ids>', 'comma-separated token ids to score')
    .option('--json', 'print {"tokens": [...], "logprobs": [null, ...], ...}')
    .action(scoreCommand);
}
