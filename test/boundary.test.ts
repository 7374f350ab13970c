/**
 * Garbage at every export of the addon: wrong types, short arrays, NaN sizes, negative and
 * huge dimensions, aliasing outputs. Every call must throw a TypeError or RangeError whose
 * message names the function and the argument; none may crash the process (a crash would
 * take this test worker down and fail the suite).
 */
import { describe, expect, it } from 'vitest';
import { native } from '../ts/bindings/loader.js';

const addon = native();
const f32 = (n: number) => new Float32Array(n);
const garbage: unknown[] = [
  undefined,
  null,
  0,
  -1,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  'text',
  {},
  [],
  [1, 2, 3],
  new Int32Array(16),
  new Float64Array(16),
  new Uint16Array(16),
  () => 1,
  Symbol('s'),
  10n,
];

function expectNamedError(call: () => unknown, pattern: RegExp): void {
  let thrown: unknown;
  try {
    call();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, `expected a throw matching ${pattern}`).toBeInstanceOf(Error);
  const err = thrown as Error;
  expect(err instanceof TypeError || err instanceof RangeError, `${err.name}: ${err.message}`).toBe(true);
  expect(err.message).toMatch(pattern);
}

describe('native boundary', () => {
  const gemmLike = [['gemm', addon.gemm] as const, ['openblasGemm', addon.openblasGemm] as const];

  for (const [name, fn] of gemmLike) {
    describe(name, () => {
      const call = (...args: unknown[]) => (fn as (...a: unknown[]) => unknown)(...args);
      const ok = { m: 4, n: 4, k: 4 };

      it('rejects garbage in every position', () => {
        for (const g of garbage) {
          if (g instanceof Float32Array) continue;
          expectNamedError(() => call(g, f32(16), f32(16), ok), new RegExp(`${name}: argument 'c'`));
          expectNamedError(() => call(f32(16), g, f32(16), ok), new RegExp(`${name}: argument 'a'`));
          expectNamedError(() => call(f32(16), f32(16), g, ok), new RegExp(`${name}: argument 'b'`));
          // an empty object is an object: it fails on its first missing field instead
          expectNamedError(() => call(f32(16), f32(16), f32(16), g), new RegExp(`${name}: (argument 'options'|options\\.m must be)`));
        }
        expectNamedError(() => call(), new RegExp(`${name}: expected \\(c, a, b, options\\)`));
      });

      it('rejects bad sizes naming the option', () => {
        const bad: Array<[Record<string, unknown>, RegExp]> = [
          [{ n: 4, k: 4 }, /options\.m must be an integer/],
          [{ ...ok, m: Number.NaN }, /options\.m must be an integer \(got NaN\)/],
          [{ ...ok, n: -3 }, /options\.n must be in \[0, /],
          [{ ...ok, k: 2.5 }, /options\.k must be an integer/],
          [{ ...ok, m: 2 ** 40 }, /options\.m must be in/],
          [{ ...ok, m: 1e6, n: 1e6, k: 1e6 }, /'a' has 16 elements/],
          [{ ...ok, lda: 2 }, /lda must be >= 4/],
          [{ ...ok, ldc: 0 }, /options\.ldc must be in/],
          [{ ...ok, alpha: Number.NaN }, /options\.alpha must be finite \(got NaN\)/],
          [{ ...ok, beta: 'one' }, /options\.beta must be a number/],
          [{ ...ok, transA: 1 }, /options\.transA must be a boolean/],
          [{ ...ok, m: 5 }, /'a' has 16 elements .* need at least 20/],
          [{ ...ok, n: 5 }, /'b' has 16 elements/],
        ];
        for (const [opts, pattern] of bad) expectNamedError(() => call(f32(16), f32(16), f32(16), opts), pattern);
      });

      it('rejects an output that overlaps an input', () => {
        const buf = f32(64);
        const c = buf.subarray(0, 16);
        const a = buf.subarray(8, 24);
        expectNamedError(() => call(c, a, f32(16), ok), /output 'c' must not share memory with 'a'/);
        expectNamedError(() => call(c, f32(16), c, ok), /output 'c' must not share memory with 'b'/);
      });
    });
  }

  it('gemm rejects unknown backends and impls, and options it does not take', () => {
    const ok = { m: 2, n: 2, k: 2 };
    expectNamedError(
      () => addon.gemm(f32(4), f32(4), f32(4), { ...ok, backend: 'tpu' as never }),
      /options\.backend must be 'cpu' \| 'cuda'/,
    );
    expectNamedError(() => addon.gemm(f32(4), f32(4), f32(4), { ...ok, impl: 7 as never }), /options\.impl must be/);
    expectNamedError(() => addon.gemm(f32(4), f32(4), f32(4), { ...ok, threads: 2 } as never), /options\.threads is not accepted/);
  });

  it('gemm on an absent CUDA device is a clear error, not a crash', () => {
    if (addon.backends().cuda.devices > 0) return;
    let err: (Error & { code?: string }) | undefined;
    try {
      addon.gemm(f32(4), f32(4), f32(4), { m: 2, n: 2, k: 2, backend: 'cuda' });
    } catch (e) {
      err = e as Error & { code?: string };
    }
    expect(err?.message).toMatch(/cuda/i);
    expect(err?.code).toBe('UNAVAILABLE');
  });

  it('configure and fmaPeak reject garbage', () => {
    for (const g of garbage) {
      if (g === undefined || (typeof g === 'object' && g !== null && !Array.isArray(g) && !ArrayBuffer.isView(g))) continue;
      expectNamedError(() => addon.configure(g as never), /configure: argument 'options'/);
      expectNamedError(() => addon.fmaPeak(g as never), /fmaPeak: argument 'options'/);
    }
    expectNamedError(() => addon.configure({ threads: -1 }), /configure: options\.threads/);
    expectNamedError(() => addon.configure({ threads: 1e9 }), /configure: options\.threads/);
    expectNamedError(() => addon.fmaPeak({ seconds: 0 }), /fmaPeak: options\.seconds/);
    expectNamedError(() => addon.fmaPeak({ seconds: Number.NaN }), /fmaPeak: options\.seconds/);
    expectNamedError(() => addon.fmaPeak({ simd: 'mmx' as never }), /fmaPeak: options\.simd/);
  });

  it('the argument-free exports answer', () => {
    expect(addon.backends().cpu.threads).toBeGreaterThan(0);
    expect(typeof addon.buildInfo().native).toBe('boolean');
    expect(typeof addon.openblasInfo().available).toBe('boolean');
  });
});
