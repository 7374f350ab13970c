/** GEMM on the CUDA backend against the CPU reference; skips cleanly where no device answers. */
import { describe, expect, it } from 'vitest';
import { backends, gemm } from '../ts/index.js';
import { poisonedF32, randomF32, rng } from './helpers.js';

const cuda = backends().cuda;

describe.skipIf(cuda.devices === 0)(`gemm on CUDA (${cuda.devices > 0 ? cuda.deviceName : `skipped: ${cuda.reason}`})`, () => {
  it('matches the CPU reference on odd shapes and every layout', () => {
    const next = rng(17);
    for (const [m, n, k] of [
      [1, 97, 513],
      [97, 17, 129],
      [130, 70, 260],
    ] as const) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          const a = randomF32(m * k, next);
          const b = randomF32(k * n, next);
          const c = poisonedF32(m * n);
          const ref = poisonedF32(m * n);
          gemm(c, a, b, { m, n, k, transA, transB, backend: 'cuda' });
          gemm(ref, a, b, { m, n, k, transA, transB, impl: 'reference' });
          for (let i = 0; i < c.length; i++) expect(Math.abs((c[i] as number) - (ref[i] as number))).toBeLessThan(1e-4);
        }
      }
    }
  });
});
