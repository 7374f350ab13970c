/**
 * Property: over random schemas (random blocks, plan counts beyond the limit, unnumbered plans,
 * stray tags, end-of-sequence inside steps, short budgets, a small KV pool, several requests at
 * once, aborts at random moments) the sum of all branches' tokens never passes maxNewTokens,
 * the KV invariants hold after every decode call, and every block is back in the pool when the
 * requests finish or are aborted. The budget faults NPR fixed (longest-branch accounting) and
 * the Multiverse engine's double-recycled KV are what this guards against.
 */
import { describe, expect, it } from 'vitest';
import { type Script, scriptedEngine, scriptedModel } from './fixtures/engine/scripted.js';
import { rng } from './helpers.js';

const WORDS = ['a', 'bb', 'x+1', '2=2', 'maybe', 'so', 'ok then'];

function randomScript(next: () => number): Script {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T;
  const text = (max: number) => Array.from({ length: 1 + Math.floor(next() * max) }, () => pick(WORDS)).join(' ');
  const script: Script = {};
  let trunk = next() < 0.3 ? `${text(3)} ` : '';
  const blocks = Math.floor(next() * 4);
  for (let b = 0; b < blocks; b++) {
    const plans = 1 + Math.floor(next() * 5);
    const unnumbered = next() < 0.1;
    trunk += '<guideline>';
    for (let p = 1; p <= plans; p++) trunk += `<plan>${unnumbered && p === plans ? '' : `${p}: `}${text(2)}</plan>`;
    trunk += '</guideline>';
    for (let p = 1; p <= plans; p++) {
      const roll = next();
      script[`${b}:${p}`] =
        roll < 0.08
          ? text(2) // no </step>: runs out into end-of-sequence inside the step
          : roll < 0.14
            ? `${text(3)}</guideline> ${text(2)}</step>` // a stray tag inside a step
            : `${text(8)}</step>`;
    }
    trunk += ` ${text(3)}</takeaway>${next() < 0.1 ? '</step>' : ''}`;
  }
  script[''] = `${trunk} \\boxed{${Math.floor(next() * 10)}}`;
  return script;
}

describe('engine budget and KV property', () => {
  it('never passes maxNewTokens and returns every KV block, on finish and on abort', async () => {
    const model = scriptedModel({ hidden: 16, layers: 1, scale: 3 });
    const next = rng(2024);
    const reasons = new Map<string, number>();
    let forks = 0;
    for (let trial = 0; trial < 40; trial++) {
      const n = 1 + Math.floor(next() * 4);
      const scripts = Array.from({ length: n }, () => randomScript(next));
      const engine = scriptedEngine(model, scripts, {
        kvBlocks: next() < 0.3 ? 40 : 400,
        blockTokens: [1, 4, 16][Math.floor(next() * 3)] as number,
        maxBranches: 1 + Math.floor(next() * 5),
        maxActiveRequests: 1 + Math.floor(next() * 4),
      });
      const maxNewTokens = [5, 30, 80, 200, 400][Math.floor(next() * 5)] as number;
      const counted = new Map<number, number>();
      engine.on('token', (e) => {
        counted.set(e.request, (counted.get(e.request) ?? 0) + 1);
        expect(counted.get(e.request)).toBeLessThanOrEqual(maxNewTokens);
      });
      engine.on('fork', () => forks++);
      const ac = new AbortController();
      const abortAt = next() < 0.3 ? 1 + Math.floor(next() * 60) : -1;
      let steps = 0;
      engine.on('step', () => {
        engine.kv.checkInvariants();
        if (++steps === abortAt) ac.abort();
      });
      const rollouts = await engine.generate(
        scripts.map((_, i) => `q${i}`),
        { maxNewTokens, signal: ac.signal, mode: next() < 0.2 ? 'ar' : 'parallel' },
      );
      for (const r of rollouts) {
        reasons.set(r.finishReason, (reasons.get(r.finishReason) ?? 0) + 1);
        expect(r.generatedTokens).toBeLessThanOrEqual(maxNewTokens);
        expect(r.branches.reduce((a, b) => a + b.tokens, 0)).toBe(r.generatedTokens);
        expect(r.tokens.length).toBe(r.positions.length);
      }
      engine.kv.checkInvariants();
      expect(engine.kv.freeBlocks).toBe(engine.kv.numBlocks);
    }
    console.log(`finish reasons ${JSON.stringify(Object.fromEntries(reasons))}, forks ${forks}`);
    // The random schemas reached every way of finishing that matters here.
    for (const reason of ['stop', 'budget', 'abort', 'malformed']) expect(reasons.get(reason) ?? 0, reason).toBeGreaterThan(0);
    expect(forks).toBeGreaterThan(10);
  });
});
