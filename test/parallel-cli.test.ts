/**
 * `npr inspect` as a user runs it (the compiled dist/; `npx tsc -p tsconfig.json` first): on a
 * tiny Qwen3 directory with the stock tokenizer (text mode) and on one whose tokenizer has the
 * tags as single tokens (ids mode), JSON equal to the library's, the table, a rejection, and
 * an SVG picture that is well-formed XML with one hover row per token.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveHfDirectory } from '../ts/model/hf_dir.js';
import { addTagsToTokenizer } from '../ts/model/special_tokens.js';
import { HfTokenizer } from '../ts/model/tokenizer.js';
import { buildStructure } from '../ts/parallel/builder.js';
import { qwen3TokenizerFiles, randomWeights, tempDir, tinyQwen3Config } from './fixtures/model/tiny-qwen3.js';

const cli = join(import.meta.dirname, '..', 'dist', 'ts', 'cli', 'main.js');
const TEXT =
  '<guideline>\n<plan>1: tens</plan>\n<plan>2: ones</plan>\n</guideline>\n<step>\n1: 30\n</step>\n<step>\n2: 12 and more\n</step>\n' +
  '<takeaway>\n42\n</takeaway>\n\\boxed{42}';
let root = '';
let stockDir = '';
let taggedDir = '';

beforeAll(async () => {
  root = (await tempDir('npr-inspect-')).dir;
  stockDir = join(root, 'qwen3-tiny');
  const config = tinyQwen3Config({ numHiddenLayers: 1 });
  await saveHfDirectory(stockDir, {
    config,
    weights: randomWeights(config, 3),
    tokenizerFiles: await qwen3TokenizerFiles(),
    dtype: 'bf16',
  });
  taggedDir = join(root, 'tagged-tokenizer');
  await mkdir(taggedDir);
  const files = addTagsToTokenizer(await qwen3TokenizerFiles()).tokenizerFiles;
  await writeFile(join(taggedDir, 'tokenizer.json'), JSON.stringify(files.tokenizer));
  await writeFile(join(taggedDir, 'tokenizer_config.json'), JSON.stringify(files.tokenizerConfig));
});
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

const run = (...args: string[]) => execFileSync(process.execPath, [cli, 'inspect', ...args], { encoding: 'utf8' });

/** Every opening tag is closed in order (self-closing tags aside); text has no raw '<'. */
function wellFormed(xml: string): boolean {
  const stack: string[] = [];
  for (const m of xml.matchAll(/<(\/?)([a-zA-Z]+)([^<>]*?)(\/?)>/g)) {
    const [, close, name, , self] = m;
    if (self) continue;
    if (close) {
      if (stack.pop() !== name) return false;
    } else stack.push(name as string);
  }
  const stripped = xml.replace(/<[^<>]*>/g, '');
  return stack.length === 0 && !stripped.includes('<') && !stripped.includes('>');
}

describe('npr inspect', () => {
  it.each(['stock', 'tagged'])('--json equals the library (%s tokenizer)', async (which) => {
    const dir = which === 'stock' ? stockDir : taggedDir;
    const out = JSON.parse(run('--model', dir, '--text', TEXT, '--json'));
    const tok = await HfTokenizer.fromDirectory(dir);
    const ids = tok.encode(TEXT);
    const r = buildStructure(tok, ids);
    if (!r.ok) throw new Error(r.message);
    expect(out.mode).toBe(which === 'stock' ? 'text' : 'ids');
    expect(out.tokens).toEqual(ids);
    expect(out.positions).toEqual(Array.from(r.positions));
    expect(out.prev).toEqual(Array.from(r.prev));
    expect(out.block).toEqual(Array.from(r.structure.block));
    expect(out.step).toEqual(Array.from(r.structure.step));
    expect(out.depth).toBe(1);
    expect(out.blocks[0].plans).toEqual(['1', '2']);
    const byIds = JSON.parse(run('--model', dir, '--ids', ids.join(','), '--json'));
    expect(byIds.positions).toEqual(out.positions);
  });

  it('prints a table with positions and branch paths', () => {
    const out = run('--model', taggedDir, '--text', TEXT);
    expect(out).toMatch(/^ids mode, \d+ tokens, 1 block\(s\), depth 1/);
    expect(out).toContain('b0/s0');
    expect(out).toContain('b0/s1');
    expect(out).toMatch(/"<step>"/);
  });

  it('reports a rejection', () => {
    const out = JSON.parse(run('--model', taggedDir, '--text', '<guideline><plan>1: a</plan></guideline>\n</step>', '--json'));
    expect(out.rejection).toMatchObject({ reason: 'close-step-without-open' });
    expect(out.positions).toBeUndefined();
    expect(run('--model', taggedDir, '--text', '<step>')).toMatch(/rejected \(ids mode\): step-outside-guideline at token 0/);
  });

  it('--picture writes a well-formed SVG of the mask', async () => {
    const file = join(root, 'mask.svg');
    const out = JSON.parse(run('--model', stockDir, '--text', TEXT, '--json', '--picture', file));
    const svg = await readFile(file, 'utf8');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(wellFormed(svg)).toBe(true);
    expect(svg.match(/<title>/g)?.length).toBe(out.tokens.length);
    expect(svg).toContain('stroke-dasharray="3,2"');
    expect(svg).toContain(`>${Math.max(...out.positions)}</text>`);
  });

  it('names bad arguments', () => {
    expect(() => execFileSync(process.execPath, [cli, 'inspect', '--model', taggedDir], { encoding: 'utf8', stdio: 'pipe' })).toThrow(
      /exactly one of --text or --ids/,
    );
  });
});
