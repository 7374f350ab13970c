/**
 * `npm run bench -- gemm [--quick]`: f32 GEMM GFLOP/s on the model's shapes, 1 and 2 threads,
 * beside OpenBLAS in the same run on the same inputs.
 *
 * Shapes: square 256..2048 (NN and NT), and M in {1, 4, 16, 64, 512} with K, N in
 * {512, 1024, 3072}: NN and NT for the skinny decode shapes (M <= 16), NT (x W^T, the linear
 * forward) for M = 64 and 512. The FP32 FMA peak of one core is measured first (12
 * independent FMA chains) so that figures are fractions of this machine's peak.
 *
 * Each side's figure is its best sample over two interleaved rounds (see the loop below).
 *
 * The peer: OpenBLAS (Debian libopenblas-dev), dlopen'ed when present. OpenBLAS 0.3.21 does
 * not recognise recent CPUs and then falls back to generic SSE kernels, which would make a
 * strawman peer; unless OPENBLAS_CORETYPE is already set, the bench sets it to the best
 * kernel set for this CPU's SIMD level (SkylakeX for AVX-512, Haswell for AVX2) and prints
 * which core OpenBLAS ran. Its results are checked against ours before timing.
 */
import { Bench } from 'tinybench';
import { native } from '../ts/bindings/loader.js';
import type { GemmOptions } from '../ts/bindings/native.js';
import { argFlag, printJson, printTable, round } from './_report.js';

const quick = argFlag('quick');
const addon = native();
const simd = addon.backends().cpu.simdBest;
if (process.env.OPENBLAS_CORETYPE === undefined && simd !== 'scalar') {
  process.env.OPENBLAS_CORETYPE = simd === 'avx512' ? 'SkylakeX' : 'Haswell';
}
const blas = addon.openblasInfo();

interface Shape {
  m: number;
  n: number;
  k: number;
  transB: boolean;
  kind: 'square' | 'skinny' | 'tall';
}

const shapes: Shape[] = [];
for (const s of quick ? [256, 1024] : [256, 512, 1024, 2048]) {
  for (const transB of [false, true]) shapes.push({ m: s, n: s, k: s, transB, kind: 'square' });
}
const kn = quick ? [512, 3072] : [512, 1024, 3072];
for (const m of quick ? [1, 16, 64] : [1, 4, 16, 64, 512]) {
  for (const k of kn) {
    for (const n of kn) {
      for (const transB of m <= 16 ? [false, true] : [true]) shapes.push({ m, n, k, transB, kind: m <= 16 ? 'skinny' : 'tall' });
    }
  }
}

function fill(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1664525 + 1013904223) >>> 0;
    a[i] = x / 2 ** 31 - 1;
  }
  return a;
}

// The peak of one core, best of two probes (the machines are noisy).
const peak = Math.max(addon.fmaPeak({ seconds: 0.5 }), addon.fmaPeak({ seconds: 0.5 }));

interface Row {
  shape: Shape;
  threads: number;
  ours: number;
  openblas: number | null;
}
const rows: Row[] = [];
const threadCounts = [1, 2];
const initialThreads = addon.backends().cpu.threads;

for (const shape of shapes) {
  const { m, n, k, transB } = shape;
  const a = fill(m * k, 1);
  const b = fill(k * n, 2);
  const c = new Float32Array(m * n);
  const opts: GemmOptions = { m, n, k, transB };
  const flops = 2 * m * n * k;
  if (blas.available) {
    // The peer must compute the same thing before its time means anything.
    const ref = new Float32Array(m * n);
    addon.gemm(c, a, b, opts);
    addon.openblasGemm(ref, a, b, { ...opts, threads: 1 });
    let maxErr = 0;
    for (let i = 0; i < c.length; i++) maxErr = Math.max(maxErr, Math.abs((c[i] as number) - (ref[i] as number)));
    if (!(maxErr <= 1e-3 * Math.sqrt(k))) throw new Error(`OpenBLAS and npr disagree on ${m}x${n}x${k}: max error ${maxErr}`);
  }
  const time = flops > 2e9 ? 400 : 150;
  for (const threads of threadCounts) {
    // Two interleaved rounds of (ours, OpenBLAS); each side keeps its best sample. The VM is
    // noisy (a neighbour can halve one measurement), and best-of-N treats both sides alike.
    let ours = Number.POSITIVE_INFINITY;
    let peer = Number.POSITIVE_INFINITY;
    for (let round = 0; round < 2; round++) {
      // OpenBLAS worker threads keep spinning for a while after a call and would steal a core
      // from the next measurement: let them go to sleep first.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const bench = new Bench({ time, warmupTime: 50, iterations: 5, throws: true });
      bench.add('ours', () => addon.gemm(c, a, b, opts), { beforeAll: () => void addon.configure({ threads }) });
      if (blas.available) bench.add('openblas', () => addon.openblasGemm(c, a, b, { ...opts, threads }));
      await bench.run();
      const best = (i: number) => {
        const r = bench.tasks[i]?.result;
        return r && 'latency' in r ? r.latency.min : Number.POSITIVE_INFINITY;
      };
      ours = Math.min(ours, best(0));
      peer = Math.min(peer, best(1));
    }
    rows.push({ shape, threads, ours: flops / (ours * 1e6), openblas: blas.available ? flops / (peer * 1e6) : null });
  }
}
addon.configure({ threads: initialThreads });

const ratio = (r: Row) => (r.openblas ? r.ours / r.openblas : null);
printTable(
  rows.map((r) => ({
    m: r.shape.m,
    n: r.shape.n,
    k: r.shape.k,
    layout: r.shape.transB ? 'NT' : 'NN',
    threads: r.threads,
    ours_gflops: round(r.ours, 1),
    openblas_gflops: r.openblas === null ? null : round(r.openblas, 1),
    ratio: round(ratio(r), 2),
  })),
);
const minRatio = (kind: Shape['kind']) => {
  const rs = rows.filter((r) => r.shape.kind === kind).map(ratio);
  return rs.length && rs.every((x) => x !== null) ? Math.min(...(rs as number[])) : null;
};
const at1024 = (transB: boolean, threads: number) =>
  rows.find((r) => r.shape.m === 1024 && r.shape.kind === 'square' && r.shape.transB === transB && r.threads === threads)?.ours ?? null;
console.log(
  `\nFMA peak of one core: ${peak.toFixed(1)} GFLOP/s (${simd}); OpenBLAS: ${
    blas.available
      ? `${blas.library}, core ${blas.coreName}${process.env.OPENBLAS_CORETYPE ? ` (OPENBLAS_CORETYPE=${process.env.OPENBLAS_CORETYPE})` : ''}`
      : `absent (${blas.reason})`
  }`,
);
const nn1 = at1024(false, 1);
printJson('gemm', {
  simd,
  peak_gflops_per_core: round(peak, 1),
  gflops_1024_t1_nn: round(nn1, 1),
  gflops_1024_t1_nt: round(at1024(true, 1), 1),
  gflops_1024_t2_nn: round(at1024(false, 2), 1),
  fraction_of_peak_1024_t1: nn1 === null ? null : round(nn1 / peak),
  ratio_vs_openblas_square_min: round(minRatio('square')),
  ratio_vs_openblas_skinny_min: round(minRatio('skinny')),
  ratio_vs_openblas_tall_min: round(minRatio('tall')),
  openblas_core: blas.available ? blas.coreName : null,
});
