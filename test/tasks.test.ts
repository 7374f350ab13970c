/**
 * The demo's task families: the chain rules against a hand-checked chain, the hash split, the
 * generators (deterministic, balanced answers, the answer really is the reduction over the
 * parts), both renderings (format score 0 / builder-valid for the tag form, verifiable answer),
 * branch correctness catching a single wrong digit, the tokenizer's round trip, avg@k/pass@k.
 */
import { describe, expect, it } from 'vitest';
import { passAtK } from '../ts/eval/pass_at_k.js';
import { HfTokenizer } from '../ts/model/tokenizer.js';
import { buildFromIds } from '../ts/parallel/builder.js';
import { formatScore } from '../ts/parallel/format_score.js';
import { tagIdsFromTokenizer } from '../ts/parallel/tags.js';
import {
  branchCorrectness,
  CHAIN_LENGTH,
  chainDigits,
  corpusExample,
  DEMO_FAMILIES,
  FAMILIES,
  generateProblems,
  parallelSolution,
  questionHash,
  resolveTasks,
  sequentialSolution,
  splitOf,
  tinyTokenizerFiles,
} from '../ts/tasks/index.js';
import { seededRandom } from '../ts/trainer/data.js';
import { corpusSequence } from '../ts/trainer/pretrain.js';
import { checkAnswer } from '../ts/trainer/rewards/answer.js';

describe('chains and split', () => {
  it('fib and ramp follow their rules', () => {
    expect(chainDigits('fib', '11', 8)).toBe('23583145');
    expect(chainDigits('ramp', '00', 6)).toBe('124720');
    expect(() => chainDigits('fib', '7', 3)).toThrow(/two digits/);
  });

  it('the split is a pure function of the question, about 10% held out', () => {
    const qs = generateProblems(['fib-largest'], 'train', 500, 3).map((p) => p.question);
    expect(qs.every((q) => splitOf(q) === 'train')).toBe(true);
    const test = generateProblems(['fib-largest'], 'test', 50, 3);
    expect(test.every((p) => splitOf(p.question) === 'test' && questionHash(p.question) % 10 === 0)).toBe(true);
    const rand = seededRandom(5);
    let held = 0;
    for (let i = 0; i < 4000; i++) if (splitOf(FAMILIES[0]?.generate(rand).question as string) === 'test') held++;
    expect(held / 4000).toBeGreaterThan(0.07);
    expect(held / 4000).toBeLessThan(0.13);
  });
});

describe('families', () => {
  for (const fam of FAMILIES) {
    it(`${fam.name}: the answer is the reduction over the parts, renderings verify`, () => {
      const rand = seededRandom(11);
      const answers = new Map<string, number>();
      for (let i = 0; i < 300; i++) {
        const p = fam.generate(rand);
        answers.set(p.answer, (answers.get(p.answer) ?? 0) + 1);
        const results = p.parts.map((x) => Number(x.result));
        for (const part of p.parts) {
          expect(part.digits).toBe(chainDigits(fam.rule, part.seed, CHAIN_LENGTH));
          expect(p.question).toContain(`${part.label}:${part.seed}`);
        }
        if (fam.reduction === 'largest') expect(Number(p.answer)).toBe(Math.max(...results));
        if (fam.reduction === 'smallest') expect(Number(p.answer)).toBe(Math.min(...results));
        if (fam.reduction === 'choose') {
          const target = p.question.split(' ')[2] as string;
          expect(p.parts.filter((x) => x.result === target).map((x) => String(x.label))).toEqual([p.answer]);
        }
        const seq = sequentialSolution(p);
        const par = parallelSolution(p);
        expect(formatScore(par).score).toBe(0);
        expect(formatScore(seq).valid).toBe(false);
        expect(checkAnswer(seq, p.answer, { tailChars: 300 })).toBe(true);
        expect(checkAnswer(par, p.answer, { tailChars: 300 })).toBe(true);
        expect(branchCorrectness(p, seq)).toEqual({ correct: 5, total: 5 });
        expect(branchCorrectness(p, par)).toEqual({ correct: 5, total: 5 });
      }
      // Balanced: every answer of the range appears, none dominates (no constant guess beats chance by much).
      expect(answers.size).toBe(Math.round(1 / fam.chance));
      for (const n of answers.values()) expect(n / 300).toBeLessThan(fam.chance * 1.6);
    });
  }

  it('branch correctness counts a part with one wrong digit as wrong', () => {
    const [p] = generateProblems(['fib-largest'], 'test', 1, 0);
    if (!p) throw new Error('no problem');
    const text = sequentialSolution(p);
    const second = p.parts[1];
    if (!second) throw new Error('no part');
    const at = text.indexOf(`${second.label}:${second.seed}`) + 6;
    const broken = text.slice(0, at) + String((Number(text[at]) + 1) % 10) + text.slice(at + 1);
    expect(branchCorrectness(p, broken)).toEqual({ correct: 4, total: 5 });
    expect(branchCorrectness(p, 'nothing here')).toEqual({ correct: 0, total: 5 });
  });

  it('generateProblems is deterministic and distinct', () => {
    const a = generateProblems(DEMO_FAMILIES, 'test', 40, 9);
    const b = generateProblems(DEMO_FAMILIES, 'test', 40, 9);
    expect(a).toEqual(b);
    expect(new Set(a.map((p) => p.question)).size).toBe(40);
    expect(a.filter((p) => p.family === 'fib-choose').length).toBe(20);
  });

  it('resolveTasks names unknown families and reads family lists', async () => {
    await expect(resolveTasks('fib-nope', 4, 0)).rejects.toThrow(/neither a file nor a task family/);
    const items = await resolveTasks('demo', 4, 0);
    expect(items).toHaveLength(4);
    expect(items.every((i) => i.task)).toBe(true);
  });
});

describe('tokenizer and corpus', () => {
  const files = tinyTokenizerFiles();
  const tok = HfTokenizer.fromFiles(files);

  it('round-trips both renderings; tags and words are single tokens', () => {
    const [p] = generateProblems(['fib-choose'], 'train', 1, 1);
    if (!p) throw new Error('no problem');
    for (const text of [sequentialSolution(p), parallelSolution(p)])
      expect(tok.decode(tok.encode(text, { addSpecialTokens: false }))).toBe(text);
    for (const w of ['<guideline>', '</takeaway>', 'largest', '\\boxed{', '<|im_end|>'])
      expect(tok.encode(w, { addSpecialTokens: false })).toHaveLength(1);
    expect(tagIdsFromTokenizer(tok)).toBeDefined();
    expect(tok.vocabSize).toBe(files.size);
  });

  it('the parallel rendering is accepted by the structure builder with 5 steps', () => {
    const [p] = generateProblems(['fib-largest'], 'train', 1, 2);
    if (!p) throw new Error('no problem');
    const prompt = tok.encodeChat([{ role: 'user', content: p.question }], { addGenerationPrompt: true });
    const ids = [...prompt, ...tok.encode(`${parallelSolution(p)}<|im_end|>`, { addSpecialTokens: false })];
    const built = buildFromIds(ids, tagIdsFromTokenizer(tok) as NonNullable<ReturnType<typeof tagIdsFromTokenizer>>, {
      promptLength: prompt.length,
      scoreResponseOnly: true,
    });
    expect(built.ok).toBe(true);
    if (built.ok) expect(new Set(Array.from(built.structure.step).filter((s) => s >= 0)).size).toBe(5);
  });

  it('tag-format corpus examples train half in the parallel layout, the rest causal', () => {
    const rand = seededRandom(8);
    const tagIds = tagIdsFromTokenizer(tok) as NonNullable<ReturnType<typeof tagIdsFromTokenizer>>;
    let layouts = 0;
    let tagged = 0;
    for (let i = 0; i < 300; i++) {
      const ex = corpusExample(rand, tok);
      const seq = corpusSequence(ex, tagIds);
      expect(seq.ids.length).toBe(ex.ids.length);
      expect(Array.from(seq.lossMask.subarray(0, ex.promptLength)).every((m) => m === 0)).toBe(true);
      if (!ex.parallel) expect(ex.parallelLayout).toBe(false);
      if (ex.parallel) tagged++;
      if (ex.parallelLayout) {
        layouts++;
        const steps = new Set(Array.from(seq.structure?.step ?? []).filter((s) => s >= 0));
        expect(steps.size).toBe(5);
        // Every step restarts at the same position: siblings share positions.
        const starts = new Set<number>();
        for (let t = 1; t < seq.ids.length; t++)
          if ((seq.structure?.step[t] as number) >= 0 && seq.structure?.step[t] !== seq.structure?.step[t - 1])
            starts.add(seq.positions[t] as number);
        expect(starts.size).toBe(1);
      } else {
        expect(seq.structure).toBeUndefined();
        expect(Array.from(seq.positions)).toEqual(Array.from({ length: seq.ids.length }, (_, i) => i));
      }
    }
    expect(layouts / tagged).toBeGreaterThan(0.35);
    expect(layouts / tagged).toBeLessThan(0.65);
  });

  it('the corpus shows evaluated families only sequentially and never a held-out problem', () => {
    const rand = seededRandom(3);
    let parallelGrammar = 0;
    let seenEvaluated = 0;
    for (let i = 0; i < 400; i++) {
      const ex = corpusExample(rand, tok);
      const text = tok.decode(ex.ids);
      const question = (text.split('\n')[1] as string).replace('<|im_end|>', '').trim();
      expect(splitOf(question)).toBe('train');
      if (DEMO_FAMILIES.includes(ex.family)) {
        expect(ex.parallel).toBe(false);
        expect(text).not.toContain('<guideline>');
        expect(text).not.toContain('parallel');
        seenEvaluated++;
      } else if (ex.parallel) {
        parallelGrammar++;
        expect(text).toContain('\n\nparallel<|im_end|>');
        expect(text).toContain('<guideline>');
      }
    }
    expect(parallelGrammar).toBeGreaterThan(50);
    expect(seenEvaluated).toBeGreaterThan(100);
  });
});

describe('pass@k', () => {
  const choose = (n: number, k: number): number => {
    let r = 1;
    for (let i = 0; i < k; i++) r = (r * (n - i)) / (i + 1);
    return r;
  };
  it('matches 1 - C(n-c,k)/C(n,k) and its edge cases', () => {
    for (const [n, c, k] of [
      [8, 0, 8],
      [8, 1, 8],
      [10, 3, 4],
      [17, 5, 2],
      [13, 13, 7],
      [9, 2, 1],
    ] as const)
      expect(passAtK(n, c, k)).toBeCloseTo(1 - (n - c >= k ? choose(n - c, k) / choose(n, k) : 0), 12);
    expect(passAtK(9, 2, 1)).toBeCloseTo(2 / 9, 12);
    expect(() => passAtK(4, 5, 2)).toThrow(RangeError);
  });
});
