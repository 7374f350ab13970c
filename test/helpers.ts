/** Shared helpers for the vitest suites: a seeded RNG and poisoned buffers. */

/** Mulberry32: tiny, seedable, deterministic. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomF32(n: number, next: () => number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = next() * 2 - 1;
  return out;
}

/** Every element NaN: anything a kernel forgets to write stays NaN. */
export function poisonedF32(n: number): Float32Array {
  return new Float32Array(n).fill(Number.NaN);
}
