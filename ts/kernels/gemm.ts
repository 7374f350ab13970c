/**
 * GEMM for library users and tests: C (m, n) = alpha * op(A) * op(B) + beta * C, f32,
 * row-major, written into `c`. The addon checks every argument (types, sizes, leading
 * dimensions, lengths, aliasing) and throws TypeError / RangeError naming what is wrong.
 */
import { native } from '../bindings/loader.js';
import type { GemmOptions } from '../bindings/native.js';

export function gemm(c: Float32Array, a: Float32Array, b: Float32Array, options: GemmOptions): void {
  native().gemm(c, a, b, options);
}

/** Runs on a worker thread; the arrays must not be touched until the promise settles. */
export function gemmAsync(c: Float32Array, a: Float32Array, b: Float32Array, options: GemmOptions): Promise<void> {
  return native().gemmAsync(c, a, b, options);
}
