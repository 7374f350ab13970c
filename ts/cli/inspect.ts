/**
 * `npr inspect --model DIR (--text TEXT | --ids 1,2,3) [--prompt-length N] [--nesting]
 * [--json] [--picture FILE]`: how the structure builder reads one sequence. Loads only the
 * tokenizer of DIR (no weights), builds the structure (ids mode when the eight tags are single
 * tokens in that tokenizer, text mode otherwise) and prints each token with its position id,
 * prev and branch path; --json prints the arrays; --picture writes the visibility mask as SVG.
 * A rejected response is reported (reason, token, message), not an error: exit status 0.
 */
import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { ConfigError } from '../bindings/errors.js';
import { HfTokenizer } from '../model/tokenizer.js';
import { buildStructure } from '../parallel/builder.js';
import { branchPath } from '../parallel/pack.js';
import { tokenPieces } from '../parallel/scan.js';
import { visibilitySvg } from '../parallel/svg.js';
import { integerFlag } from './flags.js';

interface InspectOptions {
  model: string;
  text?: string;
  ids?: string;
  promptLength?: string;
  nesting?: boolean;
  maxDepth?: string;
  json?: boolean;
  picture?: string;
}

function parseIds(text: string, vocab: number): number[] {
  return text.split(',').map((raw, i) => {
    const s = raw.trim();
    const n = Number(s);
    if (s === '' || !Number.isInteger(n) || n < 0 || n >= vocab) {
      throw new ConfigError(`--ids: entry ${i} ('${s}') must be an integer token id in [0, ${vocab})`);
    }
    return n;
  });
}

function parseCount(name: string, text: string | undefined, fallback: number, min: number): number {
  return text === undefined ? fallback : integerFlag(name, text, min);
}

export async function inspectCommand(opts: InspectOptions): Promise<void> {
  if ((opts.text === undefined) === (opts.ids === undefined)) throw new ConfigError('give exactly one of --text or --ids');
  const tokenizer = await HfTokenizer.fromDirectory(opts.model);
  const ids = opts.text !== undefined ? tokenizer.encode(opts.text) : parseIds(opts.ids as string, tokenizer.vocabSize);
  const promptLength = parseCount('--prompt-length', opts.promptLength, 0, 0);
  if (promptLength > ids.length) throw new ConfigError(`--prompt-length ${promptLength} is longer than the ${ids.length} tokens`);
  const maxDepth = parseCount('--max-depth', opts.maxDepth, 5, 1);
  const pieces = tokenPieces(tokenizer, ids);
  const built = buildStructure(tokenizer, ids, { promptLength, nesting: opts.nesting ?? false, maxDepth });
  if (opts.json) {
    if (!built.ok) {
      console.log(
        JSON.stringify({ tokens: ids, mode: built.mode, rejection: { reason: built.reason, at: built.at, message: built.message } }),
      );
    } else {
      const { positions, prev, structure, blocks, mode } = built;
      console.log(
        JSON.stringify({
          tokens: ids,
          mode,
          positions: Array.from(positions),
          prev: Array.from(prev),
          block: Array.from(structure.block),
          step: Array.from(structure.step),
          depth: structure.depth,
          blocks,
        }),
      );
    }
  } else if (!built.ok) {
    console.log(`rejected (${built.mode} mode): ${built.reason} at token ${built.at}: ${built.message}`);
  } else {
    console.log(`${built.mode} mode, ${ids.length} tokens, ${built.blocks.length} block(s), depth ${built.structure.depth}`);
    console.log('index       id  piece               pos   prev  branch');
    for (let t = 0; t < ids.length; t++) {
      const piece = JSON.stringify(pieces[t] ?? '');
      const path = branchPath(built.structure, t) || '-';
      console.log(
        `${String(t).padStart(5)}  ${String(ids[t]).padStart(7)}  ${piece.padEnd(18)}  ${String(built.positions[t]).padStart(4)}  ${String(built.prev[t]).padStart(5)}  ${path}`,
      );
    }
  }
  if (opts.picture) {
    if (!built.ok) throw new ConfigError(`no picture: the response was rejected (${built.reason} at token ${built.at})`);
    await writeFile(opts.picture, visibilitySvg(built, { pieces }));
    if (!opts.json) console.log(`wrote ${opts.picture}`);
  }
}

export function registerInspectCommand(program: Command): void {
  program
    .command('inspect')
    .description('show how the structure builder reads a sequence: position ids, prev and branch path per token')
    .requiredOption('--model <dir>', 'model directory (only tokenizer.json and tokenizer_config.json are read)')
    .option('--text <text>', 'text to tokenise and inspect')
    .option('--ids <ids>', 'comma-separated token ids to inspect')
    .option('--prompt-length <n>', 'tokens of prompt at the front: kept sequential, never parsed (default 0)')
    .option('--nesting', 'allow a whole block inside a step')
    .option('--max-depth <n>', 'deepest nesting with --nesting (default 5)')
    .option('--json', 'print {"tokens", "positions", "prev", "block", "step", "depth", ...} (or the rejection)')
    .option('--picture <file>', 'write the visibility mask as an SVG file')
    .action(inspectCommand);
}
