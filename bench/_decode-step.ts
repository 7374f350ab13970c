/**
 * One timed decode step for the decode benches (CPU and CUDA): every sequence brings one new
 * token (its id derived from `salt`), all at `position`, through the real KV cache. The next
 * tokens are then taken as the engine takes them: `logits` given, every row is copied to it;
 * null, every row is sampled where the logits are (temperature 1; on the device for a CUDA
 * model, so only tokens and logprobs cross to the host).
 *
 * How the step is decoded: `worker` awaits kv.decode (a worker thread), `sync` calls
 * kv.decodeSync (the JS thread waits for the step), `launch` calls kv.decodeLaunch (the step is
 * enqueued and its sampling call waits for it, so the sampler's host work overlaps the step: the
 * engine's default on CUDA).
 *
 * What is read after it (logits null): `sample` draws every row's next token (the engine's
 * sampler), `logprobs` asks each row's log-probability of a given token instead (the engine's
 * scripted chooser, and a fork's forced tokens).
 */
import type { NativeKv } from '../ts/bindings/native.js';

export type DecodeMode = 'worker' | 'sync' | 'launch';
export type StepRead = 'sample' | 'logprobs';

/** Seconds the last timedDecodeStep spent in the decode call alone (the rest of its time is the copy or sampling). */
export const lastSplit = { decodeS: 0 };

/** Seconds the decode call and the copy or sampling took (the KV append before it is not timed). */
export async function timedDecodeStep(
  kv: NativeKv,
  seqs: Int32Array,
  vocab: number,
  salt: number,
  position: number,
  cascade: boolean,
  logits: Float32Array | null,
  mode: DecodeMode = 'worker',
  read: StepRead = 'sample',
): Promise<number> {
  for (const q of seqs) kv.append(q, 1, true);
  const S = seqs.length;
  const t0 = performance.now();
  const batch = {
    seqs,
    cuNew: Int32Array.from({ length: S + 1 }, (_, i) => i),
    ids: Int32Array.from(seqs, (_, i) => (salt * 31 + i) % vocab),
    positions: new Int32Array(S).fill(position),
    cascade,
  };
  if (mode === 'launch' && !logits) kv.decodeLaunch(batch);
  else if (mode === 'sync' || mode === 'launch') kv.decodeSync(batch, logits);
  else await kv.decode(batch, logits);
  lastSplit.decodeS = (performance.now() - t0) / 1000;
  if (!logits && read === 'logprobs') {
    const rows = Int32Array.from({ length: S }, (_, i) => i);
    kv.logprobs(
      rows,
      Int32Array.from(rows, (i) => (salt * 7 + i) % vocab),
      new Float32Array(S),
    );
  } else if (!logits) {
    const rows = Int32Array.from({ length: S }, (_, i) => i);
    const out = { tokens: new Int32Array(S), logprob: new Float32Array(S), logprobSampling: new Float32Array(S) };
    kv.sample(rows, { request: new Int32Array(S), branch: rows, index: new Int32Array(S).fill(salt) }, { seed: 1 }, out);
  }
  return (performance.now() - t0) / 1000;
}

/**
 * The benches' shared prefix: a sequence of `prefix` tokens (ids (i * 7919) % vocab at positions
 * 0 .. prefix - 1) decoded into a fresh request of kv, then forked into `branches` sequences
 * sharing its pages (1: the sequence itself). `logits` given: the prefill's last row is copied to
 * it. Returns the sequences the steps decode.
 */
export async function prefillAndFork(
  kv: NativeKv,
  prefix: number,
  vocab: number,
  branches: number,
  logits?: Float32Array,
): Promise<Int32Array> {
  const root = kv.createSequence(kv.openRequest(1 << 20));
  kv.append(root, prefix, false);
  const batch = {
    seqs: Int32Array.of(root),
    cuNew: Int32Array.of(0, prefix),
    ids: Int32Array.from({ length: prefix }, (_, i) => (i * 7919) % vocab),
    positions: Int32Array.from({ length: prefix }, (_, i) => i),
  };
  if (logits) await kv.decode(batch, logits);
  else await kv.decode(batch);
  return branches === 1 ? Int32Array.of(root) : kv.fork(root, branches).children;
}
