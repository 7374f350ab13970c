/**
 * `npm run bench -- train-step [--quick]`: tokens/s of one forward + backward + AdamW step
 * (clip 1.0) of a Qwen3 model on a packed batch, for (a) a tiny config (hidden 256, 4 layers,
 * vocab 512, 4096 tokens as 8 sequences of 512) and (b) a Qwen3-0.6B-shaped config with
 * random weights (hidden 1024, 28 layers, 16/8 heads, head dim 128, ffn 3072, vocab 151,936;
 * 1024 tokens as 2 sequences of 512), beside the same model, batch layout and thread count
 * in PyTorch CPU (bench/peers/train_step.py, float32; skipped with a note when torch is absent;
 * its BLAS given its best kernels, see below).
 *
 * Each run is its own process (ours, then torch), one after the other, so peak memory is
 * measured per run and the two never share the machine. Figures are the best step of a few
 * after a warm-up step. Weights are random (same distribution on both sides): speed does not
 * depend on their values.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { native } from '../ts/bindings/loader.js';
import { causalBatch } from '../ts/model/batch.js';
import { expectedParameters, Qwen3Config } from '../ts/model/config.js';
import { Model } from '../ts/model/model.js';
import { argFlag, argValue, printJson, printTable, round } from './_report.js';
import { seededWeights } from './_weights.js';

interface Shape {
  name: 'tiny' | '0p6b';
  config: Record<string, number | boolean | string>;
  seqLen: number;
  sequences: number;
  steps: number;
}

const SHAPES: Shape[] = [
  {
    name: 'tiny',
    config: {
      vocab_size: 512,
      hidden_size: 256,
      intermediate_size: 768,
      num_hidden_layers: 4,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 64,
      rope_theta: 10000,
      rms_norm_eps: 1e-6,
      tie_word_embeddings: true,
    },
    seqLen: 512,
    sequences: 8,
    steps: 4,
  },
  {
    name: '0p6b',
    config: {
      vocab_size: 151936,
      hidden_size: 1024,
      intermediate_size: 3072,
      num_hidden_layers: 28,
      num_attention_heads: 16,
      num_key_value_heads: 8,
      head_dim: 128,
      rope_theta: 1000000,
      rms_norm_eps: 1e-6,
      tie_word_embeddings: true,
    },
    seqLen: 512,
    sequences: 2,
    steps: 2,
  },
];

interface RunResult {
  tok_per_s: number;
  step_s: number;
  peak_rss_bytes: number;
  native_bytes?: number;
  torch_version?: string;
}

/** Our step in this (child) process. */
async function runOurs(shape: Shape): Promise<RunResult> {
  const config = Qwen3Config.fromHfJson({
    architectures: ['Qwen3ForCausalLM'],
    model_type: 'qwen3',
    max_position_embeddings: 40960,
    ...shape.config,
  });
  const weights = seededWeights(expectedParameters(config), 12345);
  const model = Model.create(config, { weights });
  weights.clear();
  let y = 7;
  const seqs = Array.from({ length: shape.sequences }, () =>
    Array.from({ length: shape.seqLen }, () => {
      y = (Math.imul(y, 1664525) + 1013904223) >>> 0;
      return y % config.vocabSize;
    }),
  );
  const batch = causalBatch(seqs);
  const scored = batch.prev.filter((p) => p >= 0).length;
  const dlogprob = new Float32Array(batch.ids.length).map((_, t) => ((batch.prev[t] as number) >= 0 ? -1 / scored : 0));
  const step = async () => {
    model.zeroGrad();
    await model.forward(batch);
    await model.backward(dlogprob);
    model.step({ lr: 1e-5, beta1: 0.9, beta2: 0.95, weightDecay: 0.1, clipNorm: 1 });
  };
  await step(); // warm-up
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < shape.steps; i++) {
    const t0 = performance.now();
    await step();
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return {
    tok_per_s: batch.ids.length / best,
    step_s: best,
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
    native_bytes: model.memoryBytes(),
  };
}

function torchPython(): string | null {
  for (const py of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(py, ['-c', 'import torch'], { encoding: 'utf8' });
    if (r.status === 0) return py;
  }
  return null;
}

function child(args: string[], label: string, env: NodeJS.ProcessEnv = process.env): RunResult {
  const r = spawnSync(args[0] as string, args.slice(1), { encoding: 'utf8', maxBuffer: 1 << 24, env });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !last.startsWith('{')) throw new Error(`${label} failed (exit ${r.status}): ${r.stderr.slice(-2000)}`);
  return JSON.parse(last) as RunResult;
}

const childShape = argValue('child');
if (argValue('backend') === 'cuda') {
  // The GPU benchmark lives in its own file (bench/train-step-cuda.ts).
  await import('./train-step-cuda.js');
} else if (childShape) {
  const shape = SHAPES.find((s) => s.name === childShape);
  if (!shape) throw new Error(`unknown shape ${childShape}`);
  console.log(JSON.stringify(await runOurs(shape)));
} else {
  const threads = native().backends().cpu.threads;
  const figures: Record<string, number | string | null> = { threads };
  // Debian's torch does its matmuls through the system BLAS (OpenBLAS), whose 0.3.21 detection
  // falls back to generic SSE kernels on recent CPUs: give the peer its best kernels, as the
  // gemm bench does, unless the user chose a core type.
  const simd = native().backends().cpu.simdBest;
  const torchEnv = { ...process.env };
  if (torchEnv.OPENBLAS_CORETYPE === undefined && simd !== 'scalar')
    torchEnv.OPENBLAS_CORETYPE = simd === 'avx512' ? 'SkylakeX' : 'Haswell';
  figures.peer_openblas_coretype = torchEnv.OPENBLAS_CORETYPE ?? null;
  const py = torchPython();
  const peer = join(import.meta.dirname, '..', '..', 'bench', 'peers', 'train_step.py');
  const shapes = argFlag('quick') ? SHAPES.filter((s) => s.name === 'tiny') : SHAPES;
  const rows: Array<Record<string, string | number | null>> = [];
  for (const shape of shapes) {
    const ours = child([process.execPath, import.meta.filename, '--child', shape.name], `our ${shape.name} run`);
    let torch: RunResult | null = null;
    if (py && existsSync(peer)) {
      const spec = { config: shape.config, seq_len: shape.seqLen, sequences: shape.sequences, threads, steps: shape.steps };
      torch = child([py, peer, JSON.stringify(spec)], `torch ${shape.name} run`, torchEnv);
      figures.torch_version = torch.torch_version ?? null;
    }
    const ratio = torch ? ours.tok_per_s / torch.tok_per_s : null;
    rows.push({
      model: shape.name,
      tokens: shape.seqLen * shape.sequences,
      ours_tok_per_s: round(ours.tok_per_s, 1),
      torch_tok_per_s: torch ? round(torch.tok_per_s, 1) : null,
      ratio: round(ratio, 2),
      ours_peak_gib: round(ours.peak_rss_bytes / 2 ** 30, 2),
      torch_peak_gib: torch ? round(torch.peak_rss_bytes / 2 ** 30, 2) : null,
    });
    figures[`tok_per_s_${shape.name}`] = round(ours.tok_per_s, 1);
    figures[`ratio_vs_torch_${shape.name}`] = round(ratio, 3);
    figures[`peak_rss_bytes_${shape.name}`] = ours.peak_rss_bytes;
    figures[`torch_peak_rss_bytes_${shape.name}`] = torch ? torch.peak_rss_bytes : null;
  }
  printTable(rows);
  if (!py) console.log('\nPyTorch is not installed (Debian: apt-get install python3-torch): ratios are null.');
  console.log(`\nthreads ${threads} (ours and torch alike); weights random; best step after a warm-up`);
  printJson('train-step', figures);
}
