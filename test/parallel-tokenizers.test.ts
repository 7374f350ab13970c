/**
 * ids mode (the tags are single special tokens) and text mode (the stock Qwen3 tokenizer,
 * where `<step>` is three tokens and `><` merges two tags) read the same response the same
 * way: same blocks, labels and steps, and every character that begins a token in both
 * tokenisations sits in the same block and step. Also pins the first-character rule on a
 * `><` token that straddles `</step><step>`, and that the prompt's literal tags are ignored.
 */
import { describe, expect, it } from 'vitest';
import { addTagsToTokenizer } from '../ts/model/special_tokens.js';
import { HfTokenizer } from '../ts/model/tokenizer.js';
import { type BuildOk, buildStructure } from '../ts/parallel/builder.js';
import { tokenPieces } from '../ts/parallel/scan.js';
import { tagIdsFromTokenizer } from '../ts/parallel/tags.js';
import { qwen3TokenizerFiles } from './fixtures/model/tiny-qwen3.js';

const RESPONSE =
  '<guideline>\n<plan>1: Add the tens first.</plan>\n<plan>2: Count up from 17.</plan>\n</guideline>\n' +
  '<step>\n1: 17 + 25: 10 + 20 = 30, 7 + 5 = 12, so 42.\n</step>\n' +
  '<step>\n2: 17 + 3 = 20, 20 + 22 = 42.\n</step>\n' +
  '<takeaway>\nBoth give 42.\n</takeaway>\n' +
  '<guideline>\n<plan>1: Check by subtraction.</plan>\n</guideline>\n<step>\n1: 42 - 25 = 17.\n</step>\n' +
  '<takeaway>\nConfirmed.\n</takeaway>\nThe answer is \\boxed{42}.';

async function tokenizers() {
  const files = await qwen3TokenizerFiles();
  const stock = HfTokenizer.fromFiles(files);
  const tagged = HfTokenizer.fromFiles(addTagsToTokenizer(files).tokenizerFiles);
  return { stock, tagged };
}

function ok(r: ReturnType<typeof buildStructure>): BuildOk {
  if (!r.ok) throw new Error(`rejected: ${r.reason} at ${r.at}: ${r.message}`);
  return r;
}

/** Character offset (in the response) where each response token starts, and its (block, step). */
function charLabels(r: BuildOk, pieces: string[], promptLength: number): Map<number, string> {
  const out = new Map<number, string>();
  let c = 0;
  for (let t = promptLength; t < r.length; t++) {
    out.set(c, `${r.structure.block[t]}/${r.structure.step[t]}`);
    c += (pieces[t] as string).length;
  }
  return out;
}

describe('ids mode and text mode agree on a real Qwen3 tokenisation', () => {
  it('same blocks, labels, steps, and the same region for every shared token start', async () => {
    const { stock, tagged } = await tokenizers();
    expect(tagIdsFromTokenizer(stock)).toBeUndefined();
    expect(tagIdsFromTokenizer(tagged)).toBeDefined();
    const messages = [
      { role: 'user', content: 'What is 17 + 25?\nAnswer in <guideline> <plan> </plan> </guideline> <step> </step> <takeaway> blocks.' },
    ];
    const results = [stock, tagged].map((tok) => {
      const prompt = tok.encodeChat(messages, { addGenerationPrompt: true });
      const ids = [...prompt, ...tok.encode(RESPONSE)];
      const r = ok(buildStructure(tok, ids, { promptLength: prompt.length }));
      return { r, pieces: tokenPieces(tok, ids), promptLength: prompt.length, ids };
    });
    const [text, idm] = results as [(typeof results)[0], (typeof results)[0]];
    expect(text.r.mode).toBe('text');
    expect(idm.r.mode).toBe('ids');
    expect(text.ids.length).toBeGreaterThan(idm.ids.length);
    const summary = (r: BuildOk) => r.blocks.map((b) => ({ plans: b.plans, steps: b.steps.length, ids: b.stepIds }));
    expect(summary(text.r)).toEqual([
      { plans: ['1', '2'], steps: 2, ids: [0, 1] },
      { plans: ['1'], steps: 1, ids: [2] },
    ]);
    expect(summary(idm.r)).toEqual(summary(text.r));
    expect(text.pieces.slice(text.promptLength).join('')).toBe(RESPONSE);
    expect(idm.pieces.slice(idm.promptLength).join('')).toBe(RESPONSE);
    const a = charLabels(text.r, text.pieces, text.promptLength);
    const b = charLabels(idm.r, idm.pieces, idm.promptLength);
    let shared = 0;
    for (const [c, label] of a) {
      if (!b.has(c)) continue;
      shared++;
      expect(label, `character ${c} ${JSON.stringify(RESPONSE.slice(c, c + 12))}`).toBe(b.get(c));
    }
    expect(shared).toBeGreaterThan(40);
    // ids mode: the separator "\n" is the first token of each step, predicted from </guideline>
    for (const blk of idm.r.blocks) {
      for (const [s] of blk.steps) {
        expect(idm.pieces[s]).toBe('\n');
        expect(idm.pieces[s + 1]).toBe('<step>');
        expect(idm.r.prev[s]).toBe(blk.anchor);
      }
      expect(idm.pieces[blk.anchor]).toBe('</guideline>');
    }
    // text mode: ">\n" after </guideline> starts with '>', so it stays before the step
    const first = text.r.blocks[0] as BuildOk['blocks'][0];
    expect(text.pieces[first.anchor]).toBe('>\n');
    expect(text.pieces[(first.steps[0] as [number, number])[0]]).toBe('<');
  });

  it('a "><" token straddling </step><step> belongs to the step it starts in', async () => {
    const { stock } = await tokenizers();
    const response = '<guideline><plan>1: a</plan><plan>2: b</plan></guideline><step>1: x</step><step>2: y</step><takeaway>t</takeaway>';
    const ids = stock.encode(response);
    const pieces = tokenPieces(stock, ids);
    const r = ok(buildStructure(stock, ids));
    const [s1, s2] = (r.blocks[0] as BuildOk['blocks'][0]).steps as [[number, number], [number, number]];
    expect(pieces[s1[1] - 1]).toBe('><'); // the last token of step 1 holds the '<' of step 2's tag
    expect(pieces[s2[0]]).toBe('step');
    expect(r.positions[s2[0]]).toBe(r.positions[s1[0]]);
  });
});
