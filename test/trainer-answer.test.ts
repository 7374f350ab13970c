/**
 * The answer checker against a peer: the test suite of the Python math-verify library as data
 * (../shared/reference/math-verify-cases.json, 254 gold/prediction pairs with math-verify's
 * verdict and extraction targets). We require agreement >= 95% and list every disagreement, so
 * a change that moves one is visible in the log. Plus the normalisations the reward relies on.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkAnswer, extractAnswer, normalizeAnswer } from '../ts/trainer/rewards/answer.js';

const MATH_VERIFY_CASES = new URL('../../shared/reference/math-verify-cases.json', import.meta.url);

interface Case {
  gold: string;
  pred: string;
  expected: 0 | 1;
  match_types: string[];
  source: string;
}

describe('answer checking', () => {
  it.skipIf(!existsSync(MATH_VERIFY_CASES))('agrees with math-verify on >= 95% of its test suite', () => {
    const cases = (JSON.parse(readFileSync(MATH_VERIFY_CASES, 'utf8')) as { cases: Case[] }).cases;
    const disagreements: string[] = [];
    for (const [i, c] of cases.entries()) {
      const got = checkAnswer(c.pred, c.gold, { latex: c.match_types.includes('latex'), expr: c.match_types.includes('expr') });
      if (got !== (c.expected === 1))
        disagreements.push(
          `#${i} ${c.source.split('::')[1]} expected ${c.expected}: gold ${JSON.stringify(c.gold).slice(0, 80)} pred ${JSON.stringify(c.pred).slice(-80)}`,
        );
    }
    const agreement = 1 - disagreements.length / cases.length;
    console.log(
      `math-verify agreement ${(100 * agreement).toFixed(1)}% (${cases.length - disagreements.length}/${cases.length}); disagreements:\n${disagreements.join('\n')}`,
    );
    expect(cases.length).toBe(254);
    expect(agreement).toBeGreaterThanOrEqual(0.95);
  });

  it('extracts the last box, else the last number', () => {
    expect(extractAnswer('so \\boxed{3} then \\boxed{\\frac{1}{2}}.')).toBe('\\frac{1}{2}');
    expect(extractAnswer('we get 12 and then 1,234 apples')).toBe('1,234');
    expect(extractAnswer('no answer here')).toBeUndefined();
  });

  it('normalises fractions, \\left/\\right, percent, units and separators', () => {
    expect(normalizeAnswer('\\dfrac{1}{3}')).toBe('\\frac{1}{3}');
    expect(normalizeAnswer('\\left( \\frac13 \\right)')).toBe('( \\frac{1}{3} )');
    expect(normalizeAnswer('28\\%')).toBe('28');
    expect(normalizeAnswer('125\\text{ miles}')).toBe('125');
    expect(normalizeAnswer('7,425,000')).toBe('7425000');
    expect(checkAnswer('the answer is \\boxed{0.5}', '\\frac{1}{2}')).toBe(true);
    expect(checkAnswer('\\boxed{x^2+2x+1}', '(x+1)^2')).toBe(true);
    expect(checkAnswer('\\boxed{3}', '4')).toBe(false);
  });
});
