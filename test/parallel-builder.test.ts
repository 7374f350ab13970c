/**
 * The structure builder: the worked example of docs/structure.md written out by hand, every
 * rejection kind from a hand-written malformed response, ids mode = text mode when every tag
 * is its own token, thousands of seeded random tag soups (never a throw, always ok or a named
 * reason), and a property test on random valid responses (flat and nested) that checks the
 * convention's rules directly: siblings invisible, every step at p_anchor + 1, the text after
 * the steps at p_anchor + 1 + Lmax, every step's first token predicted from the anchor.
 */
import { describe, expect, it } from 'vitest';
import { type BuildOk, buildFromIds, buildFromText } from '../ts/parallel/builder.js';
import { REJECTION_KINDS, type RejectionKind } from '../ts/parallel/errors.js';
import { isVisible, packStructured } from '../ts/parallel/pack.js';
import { NPR_TAGS, type NprTag, type TagIds } from '../ts/parallel/tags.js';
import { rng } from './helpers.js';

const TAG_IDS = Object.fromEntries(NPR_TAGS.map((t, i) => [t, 100 + i])) as TagIds;
const isTag = (s: string): s is NprTag => (NPR_TAGS as readonly string[]).includes(s);

/** Tokens of a list of pieces: a tag piece gets its tag id, any other piece a fresh text id. */
function tokens(pieces: readonly string[]): { ids: number[]; pieces: string[] } {
  return { ids: pieces.map((p, i) => (isTag(p) ? TAG_IDS[p] : 1000 + i)), pieces: [...pieces] };
}

/** Splits text into tags and single characters (one token each). */
function charPieces(text: string): string[] {
  return text.split(/(<\/?(?:guideline|plan|step|takeaway)>)/).flatMap((part) => (isTag(part) ? [part] : [...part]));
}

function ok(r: ReturnType<typeof buildFromIds>): BuildOk {
  if (!r.ok) throw new Error(`rejected: ${r.reason} at ${r.at}: ${r.message}`);
  return r;
}

describe('the worked example (docs/structure.md)', () => {
  // biome-ignore format: laid out as the example's rows
  const pieces = [
    'Q',                                                         // 0 prompt
    '<guideline>', '<plan>', '1:', 'a', '</plan>',               // 1..5
    '<plan>', '2:', 'b', '</plan>', '</guideline>',              // 6..10 (10 = anchor)
    '\n', '<step>', '1:', 'x1', '</step>',                       // 11..15 step 1 (5 tokens)
    '\n', '<step>', '2:', 'y1', 'y2', 'y3', '</step>',           // 16..22 step 2 (7 tokens)
    '\n', '<takeaway>', 't1', '</takeaway>', '\\boxed{1}',       // 23..27
  ];
  const want = {
    positions: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22],
    prev: [-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 10, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26],
    block: [-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1, -1, -1, -1, -1],
    step: [-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1],
  };

  it('ids mode gives exactly the hand-written arrays', () => {
    const { ids } = tokens(pieces);
    const r = ok(buildFromIds(ids, TAG_IDS, { promptLength: 1, pieces }));
    expect(Array.from(r.positions)).toEqual(want.positions);
    expect(Array.from(r.prev)).toEqual(want.prev);
    expect(r.structure.depth).toBe(1);
    expect(Array.from(r.structure.block)).toEqual(want.block);
    expect(Array.from(r.structure.step)).toEqual(want.step);
    expect(r.blocks).toEqual([
      {
        id: 0,
        depth: 1,
        start: 1,
        anchor: 10,
        plans: ['1', '2'],
        steps: [
          [11, 16],
          [16, 23],
        ],
        stepIds: [0, 1],
        end: 27,
        anchorPosition: 10,
        longestStep: 7,
      },
    ]);
  });

  it('text mode over the same pieces gives the same result', () => {
    const t = ok(buildFromText(pieces, { promptLength: 1 }));
    const i = ok(buildFromIds(tokens(pieces).ids, TAG_IDS, { promptLength: 1, pieces }));
    expect({ ...t, mode: 'ids' }).toEqual(i);
  });

  it('scoreResponseOnly leaves the prompt unscored', () => {
    const pre = ['sys', 'Q'].concat(pieces.slice(1));
    const r = ok(buildFromText(pre, { promptLength: 2, scoreResponseOnly: true }));
    expect(Array.from(r.prev.slice(0, 4))).toEqual([-1, -1, 1, 2]);
  });

  it('a prompt with literal tags is never parsed', () => {
    const pre = ['<step>', '</takeaway>'].concat(pieces.slice(1));
    const r = ok(buildFromText(pre, { promptLength: 2 }));
    expect(r.blocks[0]?.anchor).toBe(11);
  });
});

describe('nesting (off by default)', () => {
  const text =
    '<guideline><plan>1:a</plan><plan>2:b</plan></guideline>' +
    '<step>1:<guideline><plan>1.1:c</plan><plan>1.2:d</plan></guideline><step>p</step><step>qq</step><takeaway>m</takeaway>z</step>' +
    '<step>2:w</step><takeaway>t</takeaway>';
  const pieces = charPieces(text);

  it('is rejected when off', () => {
    const r = buildFromText(pieces);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toBe('nested-guideline');
  });

  it('gives depth 2 and nested positions when on', () => {
    const r = ok(buildFromText(pieces, { nesting: true }));
    expect(r.structure.depth).toBe(2);
    const [outer, inner] = r.blocks as [BuildOk['blocks'][0], BuildOk['blocks'][0]];
    expect(inner.parent).toEqual({ block: 0, step: 0 });
    expect(inner.depth).toBe(2);
    // inner steps restart at the inner anchor + 1; the text after them at + 1 + Lmax
    for (const [s] of inner.steps) expect(r.positions[s]).toBe(inner.anchorPosition + 1);
    const innerAfter = inner.steps[1]?.[1] as number;
    expect(r.positions[innerAfter]).toBe(inner.anchorPosition + 1 + inner.longestStep);
    expect(inner.longestStep).toBe(4); // <step> q q </step>
    // the outer step's extent counts positions, not tokens
    const [s0, e0] = outer.steps[0] as [number, number];
    expect(outer.longestStep).toBe((r.positions[e0 - 1] as number) - outer.anchorPosition);
    expect(e0 - s0).toBeGreaterThan(outer.longestStep);
    // inner siblings invisible, outer sibling invisible to both
    const [p0] = inner.steps[0] as [number, number];
    const [q0] = inner.steps[1] as [number, number];
    expect(isVisible(r.structure, q0, p0)).toBe(false);
    const w = outer.steps[1]?.[0] as number;
    expect(isVisible(r.structure, w, p0)).toBe(false);
    expect(isVisible(r.structure, w, outer.anchor)).toBe(true);
  });

  it('respects maxDepth', () => {
    const r = buildFromText(pieces, { nesting: true, maxDepth: 1 });
    expect(r.ok ? 'ok' : r.reason).toBe('depth-limit');
  });
});

describe('every rejection kind', () => {
  const P = '<guideline><plan>1:a</plan></guideline>';
  const cases: [RejectionKind, string, string, { nesting?: boolean; maxDepth?: number }?][] = [
    ['unclosed-block', `${P}<step>x</step><takeaway>t`, '<guideline>'],
    ['unclosed-block', `${P}<step>x`, '<guideline>'],
    ['step-outside-guideline', 'x<step>y</step>', '<step>'],
    ['plan-outside-guideline', 'x<plan>1:a</plan>', '<plan>'],
    ['plan-outside-guideline', `${P}<plan>2:b</plan>`, '<plan>#2'],
    ['nested-step', `${P}<step>x<step>`, '<step>#2'],
    ['nested-guideline', `${P}<step>x<guideline>`, '<guideline>#2'],
    ['nested-guideline', '<guideline><guideline>', '<guideline>#2'],
    ['nested-guideline', `${P}<guideline>`, '<guideline>#2'],
    ['depth-limit', `${P}<step>x<guideline>`, '<guideline>#2', { nesting: true, maxDepth: 1 }],
    ['guideline-without-plans', '<guideline>x</guideline>', '</guideline>'],
    ['tag-in-guideline', '<guideline><plan>1:a</plan><step>', '<step>'],
    ['tag-in-plan', '<guideline><plan>1:a</guideline>', '</guideline>'],
    ['step-count-mismatch', `${P}<step>x</step><step>`, '<step>#2'],
    ['step-count-mismatch', '<guideline><plan>1:a</plan><plan>2:b</plan></guideline><step>x</step><takeaway>', '<takeaway>'],
    ['close-step-without-open', 'x</step>', '</step>'],
    ['close-step-without-open', `${P}</step>`, '</step>'],
    ['takeaway-in-step', `${P}<step>x<takeaway>`, '<takeaway>'],
    ['takeaway-before-step', `${P}<takeaway>`, '<takeaway>'],
    ['takeaway-before-step', 'x<takeaway>', '<takeaway>'],
    ['tag-in-takeaway', `${P}<step>x</step><takeaway><step>`, '<step>#2'],
    ['stray-close-tag', 'x</guideline>', '</guideline>'],
    ['stray-close-tag', `${P}<step>x</step><takeaway>t</takeaway></takeaway>`, '</takeaway>#2'],
    ['stray-close-tag', '<guideline></plan>', '</plan>'],
  ];

  it.each(cases)('%s: %s', (kind, text, atTag, opts) => {
    const pieces = charPieces(text);
    const [tag, nth] = atTag.split('#') as [string, string?];
    let seen = 0;
    const at = pieces.findIndex((p) => p === tag && ++seen === Number(nth ?? 1));
    for (const r of [buildFromText(pieces, opts), buildFromIds(tokens(pieces).ids, TAG_IDS, opts)]) {
      expect(r.ok).toBe(false);
      if (r.ok) continue;
      expect(r.reason).toBe(kind);
      expect(r.at).toBe(at);
      expect(r.message.length).toBeGreaterThan(10);
    }
  });

  it('covers every kind the grammar can produce (the other two are tested below)', () => {
    const covered = new Set(cases.map((c) => c[0]));
    const rest = Object.keys(REJECTION_KINDS).filter((k) => !covered.has(k as RejectionKind));
    expect(rest.sort()).toEqual(['bad-input', 'empty-region']);
  });

  it('empty-region: a text-mode step that no token starts in', () => {
    // one token spans '</step><step>y</step>': step 2 has no token of its own
    const pieces = [
      '<guideline>',
      '<plan>',
      '1:a',
      '</plan>',
      '<plan>',
      '2:b',
      '</plan>',
      '</guideline>',
      '<step>',
      'x',
      '</step><step>y</step>',
      '<takeaway>',
      't',
      '</takeaway>',
    ];
    const r = buildFromText(pieces);
    expect(r.ok ? 'ok' : r.reason).toBe('empty-region');
  });

  it('bad-input: unusable arguments are a rejection, not a throw', () => {
    const bad = [
      buildFromText(['a'], { promptLength: 2 }),
      buildFromIds([1, 2], TAG_IDS, { promptLength: -1 }),
      buildFromIds([1, 2], TAG_IDS, { pieces: ['a'] }),
      buildFromIds([1, 2], { ...TAG_IDS, '<step>': TAG_IDS['<plan>'] }),
    ];
    for (const r of bad) expect(r.ok ? 'ok' : r.reason).toBe('bad-input');
  });
});

/** A random valid response as pieces (tags as their own pieces), with 1..3 blocks of 1..8 steps. */
function randomResponse(next: () => number, nesting: boolean, maxDepth = 3): string[] {
  const int = (a: number, b: number) => a + Math.floor(next() * (b - a + 1));
  const words = (n: number) => Array.from({ length: n }, () => `w${int(0, 99)}`);
  const block = (depth: number): string[] => {
    const k = int(1, depth > 1 ? 3 : 8);
    const out = ['<guideline>'];
    for (let i = 1; i <= k; i++) out.push('<plan>', `${i}:`, ...words(int(0, 3)), '</plan>');
    out.push('</guideline>');
    for (let i = 1; i <= k; i++) {
      out.push(...words(int(0, 2)), '<step>', `${i}:`, ...words(int(0, 9)));
      if (nesting && depth < maxDepth && next() < 0.3) out.push(...block(depth + 1), ...words(int(0, 3)));
      out.push('</step>');
    }
    out.push(...words(int(0, 2)), '<takeaway>', ...words(int(0, 4)), '</takeaway>');
    return out;
  };
  const out = words(int(2, 5));
  const blocks = int(1, 3);
  for (let b = 0; b < blocks; b++) out.push(...block(1), ...words(int(0, 3)));
  return out;
}

function checkRules(r: BuildOk): void {
  const { positions, prev, structure } = r;
  const wrong: string[] = [];
  for (let t = 1; t < r.length; t++) {
    const starts = r.blocks.some((b) => b.steps.some(([s]) => s === t));
    if (!starts) expect(prev[t]).toBe(t - 1);
  }
  for (const b of r.blocks) {
    expect(b.anchor).toBe((b.steps[0] as [number, number])[0] - 1);
    let lmax = 0;
    for (const [s, e] of b.steps) {
      expect(positions[s]).toBe(b.anchorPosition + 1);
      expect(prev[s]).toBe(b.anchor);
      lmax = Math.max(lmax, (positions[e - 1] as number) - b.anchorPosition);
      if (!r.blocks.some((c) => c.parent?.block === b.id)) expect(positions[e - 1]).toBe(b.anchorPosition + e - s);
      for (let t = s + 1; t < e; t++) expect(positions[t] as number).toBeGreaterThan(b.anchorPosition);
      for (let t = s; t < e; t++) {
        if (!isVisible(structure, t, b.anchor)) wrong.push(`step token ${t} misses its anchor ${b.anchor}`);
        if (!isVisible(structure, t, s)) wrong.push(`step token ${t} misses its step's start ${s}`);
      }
    }
    expect(b.longestStep).toBe(lmax);
    const after = (b.steps[b.steps.length - 1] as [number, number])[1];
    expect(positions[after]).toBe(b.anchorPosition + 1 + lmax);
    // siblings never see each other; the text after the steps sees all of them
    for (let j = 0; j < b.steps.length; j++) {
      for (let k = j + 1; k < b.steps.length; k++) {
        const [js, je] = b.steps[j] as [number, number];
        const [ks, ke] = b.steps[k] as [number, number];
        for (let q = ks; q < ke; q++)
          for (let key = js; key < je; key++) if (isVisible(structure, q, key)) wrong.push(`sibling token ${q} sees ${key}`);
      }
      for (let key = (b.steps[j] as [number, number])[0]; key < (b.steps[j] as [number, number])[1]; key++) {
        if (!isVisible(structure, after, key)) wrong.push(`token ${after} after the steps misses ${key}`);
      }
    }
  }
  // One assertion for the visibility pairs (an expect per pair made this test ~30 s), naming each.
  expect(wrong).toEqual([]);
}

describe('random valid responses', () => {
  it.each([false, true])('obey the rules (nesting %s)', (nesting) => {
    const next = rng(nesting ? 11 : 7);
    for (let n = 0; n < 150; n++) {
      const pieces = randomResponse(next, nesting);
      const promptLength = Math.floor(next() * 3);
      const { ids } = tokens(pieces);
      const r = ok(buildFromIds(ids, TAG_IDS, { promptLength, nesting, pieces }));
      checkRules(r);
      const t = ok(buildFromText(pieces, { promptLength, nesting }));
      expect({ ...t, mode: 'ids' }).toEqual(r);
      expect(r.blocks.every((b) => b.plans.length === b.steps.length && b.plans.every((l, i) => l === String(i + 1)))).toBe(true);
    }
  });

  it('pack into one batch with unique ids and offset prev', () => {
    const next = rng(3);
    const seqs = [0, 1, 2].map(() => {
      const pieces = randomResponse(next, false);
      const { ids } = tokens(pieces);
      return { ids, built: ok(buildFromIds(ids, TAG_IDS, { pieces })) };
    });
    const batch = packStructured(seqs);
    expect(Array.from(batch.cuSeqlens)).toEqual([
      0,
      seqs[0]?.ids.length,
      (seqs[0]?.ids.length ?? 0) + (seqs[1]?.ids.length ?? 0),
      batch.ids.length,
    ]);
    const off = seqs[0]?.ids.length as number;
    const s1 = seqs[1]?.built as BuildOk;
    expect(batch.prev[off]).toBe(-1);
    expect(batch.prev[off + 5]).toBe(off + (s1.prev[5] as number));
    const firstBlocks = new Set(Array.from(batch.structure?.block.subarray(0, off) ?? []).filter((b) => b >= 0));
    const secondBlocks = Array.from(batch.structure?.block.subarray(off) ?? []).filter((b) => b >= 0);
    expect(secondBlocks.some((b) => firstBlocks.has(b))).toBe(false);
  });
});

describe('random tag soup', () => {
  it('never throws and always returns ok or a named reason', () => {
    const next = rng(2024);
    const alphabet = [...NPR_TAGS, 'x', '\n', '1:', ' '];
    const reasons = new Map<string, number>();
    let oks = 0;
    for (let n = 0; n < 4000; n++) {
      const len = Math.floor(next() * 30);
      // half pure soup, half a valid response with random pieces swapped in
      const pieces =
        n % 2 === 0
          ? Array.from({ length: len }, () => alphabet[Math.floor(next() * alphabet.length)] as string)
          : randomResponse(next, true).map((p) => (next() < 0.02 ? (alphabet[Math.floor(next() * alphabet.length)] as string) : p));
      const nesting = next() < 0.5;
      const { ids } = tokens(pieces);
      const a = buildFromIds(ids, TAG_IDS, { nesting, pieces });
      // text mode with random merges of neighbouring pieces (tags straddling tokens)
      const merged: string[] = [];
      for (const p of pieces) {
        if (merged.length > 0 && next() < 0.3) merged[merged.length - 1] += p;
        else merged.push(p);
      }
      const b = buildFromText(merged, { nesting });
      for (const r of [a, b]) {
        if (r.ok) {
          oks++;
          expect(r.positions.length).toBe(r.length);
          checkRules(r);
        } else {
          expect(Object.keys(REJECTION_KINDS)).toContain(r.reason);
          expect(r.at).toBeGreaterThanOrEqual(0);
          reasons.set(r.reason, (reasons.get(r.reason) ?? 0) + 1);
        }
      }
    }
    expect(reasons.size).toBeGreaterThanOrEqual(10);
    expect(oks).toBeGreaterThan(100);
  });
});
