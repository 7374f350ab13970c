import { describe, expect, it } from 'vitest';
import { resolveRuntimeConfig } from '../ts/bindings/config.js';
import { ConfigError } from '../ts/bindings/errors.js';
import { backends, buildInfo, configure } from '../ts/index.js';

describe('backends()', () => {
  it('reports the CPU pool and the CUDA state with the documented shape', () => {
    const b = backends();
    expect(b.cpu.threads).toBeGreaterThanOrEqual(1);
    expect(['scalar', 'avx2', 'avx512']).toContain(b.cpu.simd);
    expect(typeof b.cuda.compiled).toBe('boolean');
    expect(b.cuda.devices).toBeGreaterThanOrEqual(0);
    if (b.cuda.devices === 0) {
      // The reason names why: a CUDA error name when compiled, "not compiled: ..." otherwise.
      expect(b.cuda.reason).toMatch(b.cuda.compiled ? /^cuda[A-Za-z]+$/ : /^not compiled/);
    } else {
      expect(b.cuda.reason).toBeNull();
    }
    expect(typeof buildInfo().compiler).toBe('string');
  });

  it('resizes the pool and forces a lower SIMD level, and refuses what the CPU lacks', () => {
    const before = backends();
    try {
      expect(configure({ threads: 3 }).cpu.threads).toBe(3);
      expect(configure({ simd: 'scalar' }).cpu.simd).toBe('scalar');
      if (before.cpu.simdBest !== 'avx512') {
        expect(() => configure({ simd: 'avx512' })).toThrow(/not supported by this CPU/);
      }
      expect(() => configure({ threads: 0 })).toThrow(RangeError);
      expect(() => configure({ simd: 'sse9' as never })).toThrow(/options.simd must be/);
    } finally {
      configure({ threads: before.cpu.threads, simd: before.cpu.simd });
    }
  });
});

describe('runtime config from the environment', () => {
  it('reads NPR_THREADS and NPR_SIMD and names the variable when it is wrong', () => {
    expect(resolveRuntimeConfig({})).toEqual({});
    expect(resolveRuntimeConfig({ NPR_THREADS: '4', NPR_SIMD: 'AVX2' })).toEqual({ threads: 4, simd: 'avx2' });
    expect(() => resolveRuntimeConfig({ NPR_THREADS: 'many' })).toThrow(ConfigError);
    expect(() => resolveRuntimeConfig({ NPR_THREADS: '0' })).toThrow(/NPR_THREADS/);
    expect(() => resolveRuntimeConfig({ NPR_SIMD: 'neon' })).toThrow(/NPR_SIMD/);
  });
});
