import { describe, expect, it } from 'vitest';
import { backends, configure, type GemmOptions, gemm, gemmAsync } from '../ts/index.js';
import { poisonedF32, randomF32, rng } from './helpers.js';

/** Runs the fast path and the reference on the same inputs; returns the max abs difference. */
function compare(opts: GemmOptions, seed: number): number {
  const next = rng(seed);
  const aRows = opts.transA ? opts.k : opts.m;
  const aCols = opts.transA ? opts.m : opts.k;
  const bRows = opts.transB ? opts.n : opts.k;
  const bCols = opts.transB ? opts.k : opts.n;
  const a = randomF32(aRows * aCols, next);
  const b = randomF32(bRows * bCols, next);
  const c = poisonedF32(opts.m * opts.n);
  const ref = poisonedF32(opts.m * opts.n);
  gemm(c, a, b, opts);
  gemm(ref, a, b, { ...opts, impl: 'reference' });
  let max = 0;
  for (let i = 0; i < c.length; i++) {
    const d = Math.abs((c[i] as number) - (ref[i] as number));
    max = Number.isNaN(d) ? Number.POSITIVE_INFINITY : Math.max(max, d);
  }
  return max;
}

const SHAPES: Array<[number, number, number]> = [
  [1, 1, 1],
  [1, 97, 513],
  [7, 17, 97],
  [16, 513, 17],
  [97, 7, 129],
  [200, 130, 65],
];

describe('gemm from TypeScript', () => {
  it('matches the reference on odd shapes, every layout, on every SIMD level this CPU runs', () => {
    const before = backends().cpu;
    const levels = (['scalar', 'avx2', 'avx512'] as const).filter((l) => {
      if (l === 'avx512') return before.simdBest === 'avx512';
      if (l === 'avx2') return before.simdBest !== 'scalar';
      return true;
    });
    try {
      let seed = 1;
      for (const simd of levels) {
        configure({ simd });
        for (const [m, n, k] of SHAPES) {
          for (const transA of [false, true]) {
            for (const transB of [false, true]) {
              const err = compare({ m, n, k, transA, transB }, seed++);
              expect(err, `${simd} m=${m} n=${n} k=${k} tA=${transA} tB=${transB}`).toBeLessThan(1e-5 * Math.sqrt(k) * 8);
            }
          }
        }
      }
    } finally {
      configure({ simd: before.simd });
    }
  });

  it('honours alpha, beta and leading dimensions', () => {
    const next = rng(42);
    const m = 5;
    const n = 9;
    const k = 7;
    const lda = k + 3;
    const ldc = n + 2;
    const a = randomF32(m * lda, next);
    const b = randomF32(k * n, next);
    const c0 = randomF32(m * ldc, next);
    const c = c0.slice();
    const ref = c0.slice();
    const opts: GemmOptions = { m, n, k, lda, ldc, alpha: -0.5, beta: 2 };
    gemm(c, a, b, opts);
    gemm(ref, a, b, { ...opts, impl: 'reference' });
    for (let i = 0; i < c.length; i++) expect(c[i]).toBeCloseTo(ref[i] as number, 5);
    // the padding between rows of C is untouched
    for (let r = 0; r < m; r++) for (let j = n; j < ldc; j++) expect(c[r * ldc + j]).toBe(c0[r * ldc + j]);
  });

  it('runs asynchronously and rejects with the same errors', async () => {
    const next = rng(3);
    const a = randomF32(64 * 64, next);
    const b = randomF32(64 * 64, next);
    const c = poisonedF32(64 * 64);
    const ref = poisonedF32(64 * 64);
    await gemmAsync(c, a, b, { m: 64, n: 64, k: 64 });
    gemm(ref, a, b, { m: 64, n: 64, k: 64, impl: 'reference' });
    for (let i = 0; i < c.length; i++) expect(c[i]).toBeCloseTo(ref[i] as number, 4);
    expect(() => gemmAsync(c, a, b, { m: 65, n: 64, k: 64 })).toThrow(RangeError);
  });
});
