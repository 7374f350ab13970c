/**
 * `npm run bench -- attention [--quick]`: the fused block-sparse attention (parallelAttention)
 * on rollout-shaped structures, forward and forward + backward, 16 query / 8 KV heads, head
 * dim 128, float32, all of the runtime's threads, one sequence of T tokens:
 *   T = 1024: prefix 256, one block of 4 branches x 192;
 *   T = 4096: prefix 1024, block of 4 branches x 512, 256 shared tokens, block of 2 x 384;
 *   T = 8192: prefix 1024, block of 8 branches x 512, 512 shared tokens, block of 4 x 640.
 * Beside it, in the same run on the same inputs: (a) the same kernel with skipping disabled
 * (the plan treats every causal tile as visible: dense causal) and (b) the dense-masked PyTorch
 * attention NPR's trainer uses (bench/peers/attention.py: matmul + additive mask + softmax +
 * matmul per kv-head group, float32, same threads; skipped with a note when torch is absent;
 * forward + backward only up to 4k, where its (G, T, T) autograd buffers still fit).
 *
 * GFLOP/s count only visible pairs: forward 4 * pairs * D per head, forward + backward 3.5x
 * that (the FlashAttention convention: backward recomputes S once and runs four more products).
 * The same count is used for (a), so its figure is "useful" GFLOP/s. Each figure is the best
 * sample of two interleaved rounds (the VM is noisy). Memory is what the kernel itself allocates
 * (plan + workspace, exact); it grows linearly with T (no T x T buffer).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bench } from 'tinybench';
import { native } from '../ts/bindings/loader.js';
import type { ParallelAttentionInfo, ParallelAttentionOptions } from '../ts/bindings/native.js';
import { argFlag, argValue, printJson, printTable, round } from './_report.js';

// `--backend cuda`: the GPU benchmark lives in its own file (bench/attention-cuda.ts).
if (argValue('backend') === 'cuda') {
  await import('./attention-cuda.js');
  process.exit();
}

const HEADS = 16;
const KV_HEADS = 8;
const D = 128;
const quick = argFlag('quick');
const addon = native();
const threads = addon.backends().cpu.threads;
const simd = addon.backends().cpu.simd;

/** [tokens, block, step] runs of one sequence; block = step = -1 outside blocks. */
type Segment = [number, number, number];

function rollout(prefix: number, parts: Array<{ branches: number; len: number; after: number }>): Segment[] {
  const segs: Segment[] = [[prefix, -1, -1]];
  let step = 0;
  parts.forEach((p, block) => {
    for (let i = 0; i < p.branches; i++) segs.push([p.len, block, step++]);
    if (p.after > 0) segs.push([p.after, -1, -1]);
  });
  return segs;
}

const SHAPES: Array<{ T: number; segments: Segment[]; iters: [number, number] }> = [
  { T: 1024, segments: rollout(256, [{ branches: 4, len: 192, after: 0 }]), iters: [8, 3] },
  {
    T: 4096,
    segments: rollout(1024, [
      { branches: 4, len: 512, after: 256 },
      { branches: 2, len: 384, after: 0 },
    ]),
    iters: [3, 2],
  },
  {
    T: 8192,
    segments: rollout(1024, [
      { branches: 8, len: 512, after: 512 },
      { branches: 4, len: 640, after: 0 },
    ]),
    iters: [2, 1],
  },
];

function fill(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    a[i] = x / 2 ** 31 - 1;
  }
  return a;
}

function torchPython(): string | null {
  for (const py of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(py, ['-c', 'import torch'], { encoding: 'utf8' });
    if (r.status === 0) return py;
  }
  return null;
}

// Debian's torch does its matmuls through OpenBLAS 0.3.21, which falls back to generic SSE
// kernels on recent CPUs: give the peer its best kernels (as the gemm bench does).
const torchEnv = { ...process.env };
if (torchEnv.OPENBLAS_CORETYPE === undefined && simd !== 'scalar') torchEnv.OPENBLAS_CORETYPE = simd === 'avx512' ? 'SkylakeX' : 'Haswell';
const py = torchPython();
const peerScript = join(import.meta.dirname, '..', '..', 'bench', 'peers', 'attention.py');
const haveTorch = py !== null && existsSync(peerScript);

interface TorchResult {
  fwd_s: number;
  fwd_bwd_s: number | null;
  torch_version: string;
  max_abs_diff_out: number | null;
}

/** Best latency (ms) of each task over two interleaved rounds. */
async function best(tasks: Array<[string, () => void]>, iterations: number): Promise<number[]> {
  const out = tasks.map(() => Number.POSITIVE_INFINITY);
  for (let round = 0; round < 2; round++) {
    const bench = new Bench({ iterations, time: 0, warmupIterations: 1, warmupTime: 0, throws: true });
    for (const [name, fn] of tasks) bench.add(name, fn);
    await bench.run();
    bench.tasks.forEach((t, i) => {
      const r = t.result;
      if (r && 'latency' in r) out[i] = Math.min(out[i] as number, r.latency.min);
    });
  }
  return out;
}

const rows: Array<Record<string, string | number | null>> = [];
const figures: Record<string, number | string | null> = { threads, simd, heads: HEADS, kv_heads: KV_HEADS, head_dim: D };
let torchVersion: string | null = null;

for (const shape of SHAPES) {
  const { T, segments } = shape;
  const block = new Int32Array(T);
  const step = new Int32Array(T);
  let t = 0;
  for (const [n, b, s] of segments) {
    block.fill(b, t, t + n);
    step.fill(s, t, t + n);
    t += n;
  }
  if (t !== T) throw new Error(`structure of ${T} tokens sums to ${t}`);
  const q = fill(T * HEADS * D, 1);
  const k = fill(T * KV_HEADS * D, 2);
  const v = fill(T * KV_HEADS * D, 3);
  const dout = fill(T * HEADS * D, 4);
  const out = new Float32Array(T * HEADS * D);
  const lse = new Float32Array(T * HEADS);
  const bwd = {
    dout,
    dq: new Float32Array(T * HEADS * D),
    dk: new Float32Array(T * KV_HEADS * D),
    dv: new Float32Array(T * KV_HEADS * D),
  };
  const base: ParallelAttentionOptions = {
    heads: HEADS,
    kvHeads: KV_HEADS,
    headDim: D,
    cuSeqlens: Int32Array.of(0, T),
    depth: 1,
    block,
    step,
  };
  const infos: Record<string, ParallelAttentionInfo> = {};
  const run = (name: string, opts: ParallelAttentionOptions) => () => {
    infos[name] = addon.parallelAttention(q, k, v, out, lse, opts);
  };
  const [itF, itB] = quick ? [1, 1] : shape.iters;
  const [fwd, fwdDense] = await best(
    [
      ['fwd', run('fwd', base)],
      ['fwd_dense', run('fwd_dense', { ...base, dense: true })],
    ],
    itF,
  );
  const [fb, fbDense] = await best(
    [
      ['fb', run('fb', { ...base, backward: bwd })],
      ['fb_dense', run('fb_dense', { ...base, dense: true, backward: bwd })],
    ],
    itB,
  );
  run('fwd', base)(); // leaves the structured output in `out` for the peer's check
  const info = infos.fwd as ParallelAttentionInfo;

  let torch: TorchResult | null = null;
  const torchBackward = T <= 4096;
  if (haveTorch && !(quick && T > 4096)) {
    const dir = mkdtempSync(join(tmpdir(), 'npr-attn-'));
    try {
      for (const [name, a] of Object.entries({ q, k, v, dout, out }))
        writeFileSync(join(dir, `${name}.bin`), Buffer.from(a.buffer, a.byteOffset, a.byteLength));
      const spec = {
        dir,
        T,
        heads: HEADS,
        kv_heads: KV_HEADS,
        head_dim: D,
        segments,
        threads,
        reps: quick ? 1 : 2,
        backward: torchBackward,
        write_out: true,
      };
      const r = spawnSync(py as string, [peerScript, JSON.stringify(spec)], { encoding: 'utf8', env: torchEnv, maxBuffer: 1 << 24 });
      const last = r.stdout.trim().split('\n').pop() ?? '';
      if (r.status !== 0 || !last.startsWith('{'))
        throw new Error(`torch peer failed at T=${T} (exit ${r.status}): ${r.stderr.slice(-2000)}`);
      torch = JSON.parse(last) as TorchResult;
      torchVersion = torch.torch_version;
      if (!(torch.max_abs_diff_out !== null && torch.max_abs_diff_out < 1e-3))
        throw new Error(`torch and npr disagree at T=${T}: max |out diff| ${torch.max_abs_diff_out}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  const flops = 4 * info.visiblePairs * D * HEADS;
  const ideal = info.causalPairs / info.visiblePairs;
  const mem = (i: ParallelAttentionInfo | undefined) => (i ? i.planBytes + i.workspaceBytes : null);
  for (const pass of ['fwd', 'fwd+bwd'] as const) {
    const ms = pass === 'fwd' ? (fwd as number) : (fb as number);
    const dense = pass === 'fwd' ? (fwdDense as number) : (fbDense as number);
    const f = pass === 'fwd' ? flops : 3.5 * flops;
    const torchS = torch ? (pass === 'fwd' ? torch.fwd_s : torch.fwd_bwd_s) : null;
    const gflops = f / (ms * 1e6);
    rows.push({
      T,
      pass,
      visible: round(1 / ideal),
      tiles_skipped: round(info.tilesSkipped / info.tilesCausal),
      ms: round(ms, 1),
      gflops: round(gflops, 1),
      gflops_core: round(gflops / threads, 1),
      dense_ms: round(dense, 1),
      vs_dense: round(dense / ms, 2),
      ideal: round(ideal, 2),
      efficiency: round(dense / ms / ideal),
      torch_ms: torchS === null ? null : round(torchS * 1e3, 1),
      vs_torch: torchS === null ? null : round((torchS * 1e3) / ms, 2),
      kernel_mb: round((mem(pass === 'fwd' ? infos.fwd : infos.fb) ?? 0) / 2 ** 20, 1),
    });
    const key = `${T / 1024}k`;
    if (pass === 'fwd') {
      figures[`fwd_gflops_${key}`] = round(gflops, 1);
      figures[`fwd_gflops_per_core_${key}`] = round(gflops / threads, 1);
      figures[`sparsity_efficiency_${key}`] = round(dense / ms / ideal);
      figures[`ratio_vs_torch_masked_${key}`] = torchS === null ? null : round((torchS * 1e3) / ms, 2);
      figures[`tiles_skipped_fraction_${key}`] = round(info.tilesSkipped / info.tilesCausal);
      figures[`visible_fraction_${key}`] = round(1 / ideal);
    } else {
      figures[`fwd_bwd_gflops_per_core_${key}`] = round(gflops / threads, 1);
      figures[`fwd_bwd_ratio_vs_torch_masked_${key}`] = torchS === null ? null : round((torchS * 1e3) / ms, 2);
      figures[`peak_mem_bytes_${key}`] = mem(infos.fb);
    }
  }
}

printTable(rows);
console.log(
  `\n${threads} thread(s), ${simd}; torch peer: ${haveTorch ? `${torchVersion ?? '?'} (OPENBLAS_CORETYPE=${torchEnv.OPENBLAS_CORETYPE ?? 'auto'})` : 'absent (no python3 with torch)'}`,
);
printJson('attention', figures);
