/**
 * The stage-1 format score: 0 for a clean response, and one hand-written response per penalty
 * of the rule list (facts 1.3) with the exact score it must get; the total clamps at -2, and
 * random text never throws or leaves [-2, 0].
 */
import { describe, expect, it } from 'vitest';
import { FORMAT_PENALTIES, type FormatFaultKind, formatScore, lastBoxed } from '../ts/parallel/format_score.js';
import { rng } from './helpers.js';

const G = '<guideline>\n<plan>1: add the tens</plan>\n<plan>2: count up</plan>\n</guideline>\n';
const S = '<step>\n1: 10+20=30, 7+5=12, 42\n</step>\n<step>\n2: 17+3=20, 20+22=42\n</step>\n';
const T = '<takeaway>\nboth give 42\n</takeaway>\n';
const CLEAN = `${G}${S}${T}The answer is \\boxed{42}.`;

describe('format score', () => {
  it('is 0 for a clean response, with several blocks too', () => {
    expect(formatScore(CLEAN)).toEqual({ score: 0, valid: true, blocks: 1, faults: [] });
    const two = `${G}${S}${T}\nthen\n${G}${S}${T}\\boxed{42}`;
    expect(formatScore(two).score).toBe(0);
    expect(formatScore(two).blocks).toBe(2);
  });

  const cases: [FormatFaultKind[], string][] = [
    [['empty-response'], ' \n '],
    [['no-blocks'], 'just thinking, \\boxed{42}'],
    [['no-blocks', 'missing-boxed'], 'just thinking'],
    [['tags-between-blocks'], `${G}${S}${T}<step>x</step>${G}${S}${T}\\boxed{42}`],
    [['guideline-without-plans', 'non-plan-content', 'step-count-mismatch'], `<guideline>think</guideline>${S}${T}\\boxed{4}`],
    [['non-plan-content'], `<guideline>intro<plan>1: add the tens</plan><plan>2: count up</plan></guideline>${S}${T}\\boxed{4}`],
    [
      ['non-plan-content', 'plans-not-adjacent'],
      `<guideline><plan>1: add the tens</plan>and<plan>2: count up</plan></guideline>${S}${T}\\boxed{4}`,
    ],
    [['step-count-mismatch'], `${G}<step>1: only one step</step>${T}\\boxed{4}`],
    [['content-between-steps'], `${G}<step>1: first step</step>so<step>2: second step</step>${T}\\boxed{4}`],
    [['short-plan'], `<guideline><plan>1:</plan><plan>2: count up</plan></guideline>${S}${T}\\boxed{4}`],
    [['short-plan'], `<guideline><plan>1: <step></plan><plan>2: count up</plan></guideline>${S}${T}\\boxed{4}`],
    [['short-step', 'short-step'], `${G}<step>1:x</step><step>2:y</step>${T}\\boxed{4}`],
    [['short-takeaway'], `${G}${S}<takeaway>ok</takeaway>\\boxed{4}`],
    [['tags-after-last-block'], `${G}${S}${T}<step>\\boxed{4}`],
    [['missing-boxed'], `${G}${S}${T}The answer is 42.`],
    [['missing-boxed'], `${G}${S}${T}The answer is \\boxed{ }.`],
  ];

  it.each(cases)('%j: penalties add up exactly', (kinds, text) => {
    const r = formatScore(text);
    expect(r.faults.map((f) => f.kind).sort()).toEqual([...kinds].sort());
    const want = Math.max(
      -2,
      kinds.reduce((a, k) => a + FORMAT_PENALTIES[k], 0),
    );
    expect(r.score).toBeCloseTo(want, 9);
    expect(r.valid).toBe(false);
  });

  it('clamps the total to -2', () => {
    const r = formatScore(`<guideline>x</guideline><step>a</step><takeaway>b</takeaway><plan>`);
    expect(r.faults.reduce((a, f) => a + f.penalty, 0)).toBeLessThan(-2);
    expect(r.score).toBe(-2);
  });

  it('reads the last \\boxed{} with nested braces', () => {
    expect(lastBoxed('\\boxed{1} then \\boxed{\\frac{1}{2}}')).toBe('\\frac{1}{2}');
    expect(lastBoxed('\\boxed{unclosed')).toBeUndefined();
  });

  it('random text never throws and stays in [-2, 0]', () => {
    const next = rng(5);
    const bits = [
      '<guideline>',
      '</guideline>',
      '<plan>',
      '</plan>',
      '<step>',
      '</step>',
      '<takeaway>',
      '</takeaway>',
      '1: abc',
      'x',
      ' ',
      '\\boxed{',
      '}',
    ];
    for (let n = 0; n < 3000; n++) {
      const s = Array.from({ length: Math.floor(next() * 25) }, () => bits[Math.floor(next() * bits.length)]).join('');
      const r = formatScore(s);
      expect(r.score).toBeGreaterThanOrEqual(-2);
      expect(r.score).toBeLessThanOrEqual(0);
      expect(r.valid).toBe(r.score === 0);
    }
  });
});
