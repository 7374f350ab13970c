/**
 * Seeded weights for the benchmarks' random-weight models: uniform in +-0.035 (the spread of a
 * 0.02-std init; speed does not depend on the values), norm vectors 1. One linear congruential
 * stream over the parameters in order: fast enough for 0.6B parameters in JavaScript.
 */
import type { NativeQwen3 } from '../ts/bindings/native.js';
import type { HostTensor } from '../ts/model/tensors.js';

/** Fills `data` (a parameter of `rank` dimensions) and returns the generator's next state. */
function fill(data: Float32Array, rank: number, state: number): number {
  if (rank === 1) {
    data.fill(1);
    return state;
  }
  let x = state;
  for (let i = 0; i < data.length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    data[i] = (x / 2 ** 32 - 0.5) * 0.07;
  }
  return x;
}

/** Host tensors for every parameter of `params`, in order. */
export function seededWeights(params: Iterable<{ name: string; shape: readonly number[] }>, seed: number): Map<string, HostTensor<'f32'>> {
  const out = new Map<string, HostTensor<'f32'>>();
  let x = seed;
  for (const p of params) {
    const data = new Float32Array(p.shape.reduce((a, b) => a * b, 1));
    x = fill(data, p.shape.length, x);
    out.set(p.name, { dtype: 'f32', shape: [...p.shape], data });
  }
  return out;
}

/** The same values written straight into a native model, one parameter at a time. */
export function seedNativeModel(m: NativeQwen3, seed: number): NativeQwen3 {
  let x = seed;
  for (const p of m.paramTable()) {
    const data = new Float32Array(p.numel);
    x = fill(data, p.shape.length, x);
    m.setParam(p.name, data);
  }
  return m;
}
