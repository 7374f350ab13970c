/**
 * One timed decode step for the decode benches (CPU and CUDA): every sequence brings one new
 * token (its id derived from `salt`), all at `position`, through the real KV cache.
 */
import type { NativeKv } from '../ts/bindings/native.js';

/** Seconds the decode call took (the KV append before it is not timed). */
export async function timedDecodeStep(
  kv: NativeKv,
  seqs: Int32Array,
  vocab: number,
  salt: number,
  position: number,
  cascade: boolean,
  logits: Float32Array,
): Promise<number> {
  for (const q of seqs) kv.append(q, 1, true);
  const t0 = performance.now();
  await kv.decode(
    {
      seqs,
      cuNew: Int32Array.from({ length: seqs.length + 1 }, (_, i) => i),
      ids: Int32Array.from(seqs, (_, i) => (salt * 31 + i) % vocab),
      positions: new Int32Array(seqs.length).fill(position),
      cascade,
    },
    logits,
  );
  return (performance.now() - t0) / 1000;
}
