/**
 * `npm run bench -- train-step --backend cuda` (or `node dist/bench/train-step-cuda.js`): tokens/s
 * of one forward + backward + AdamW step (clip 1.0) of the Qwen3-0.6B shape (hidden 1024, 28
 * layers, 16/8 heads, head dim 128, ffn 3072, vocab 151,936, tied; random weights) on the GPU,
 * bf16 compute with fp32 master weights (Model.create(config, { backend: 'cuda', precision:
 * 'bf16' })), on 16,384 packed tokens: 4 NPR-shaped rollouts of 4,096 (bench/_npr-shape.ts:
 * prompt 512, two blocks of guideline 128 + 4 steps of 384 + takeaway 128) with their Structure,
 * positions and prev; loss = mean token logprob (dlogprob = -1 / scored tokens).
 *
 * Beside it, one after the other on the same GPU (bench/peers/train_step_cuda.py, when a python3
 * with a CUDA torch and transformers is found): Hugging Face transformers' Qwen3ForCausalLM of
 * the same config, attn_implementation "sdpa", fused AdamW, same loss, on 4 x 4,096 tokens, in
 * two modes: "amp" (fp32 master weights under bf16 autocast: our recipe; the ratio quoted) and
 * "bf16" (everything bf16). The peer does DENSE CAUSAL attention over its 4 rows, not our
 * Structure: same tokens, 27% more attention pairs.
 *
 * Ours runs five times: with the model's defaults (deterministic, attentionKernels 'wgmma':
 * Hopper's warpgroup MMA where the GPU can run it, warp-specialised with tensor-map copies; the
 * figures the issue names), with
 * { deterministic: false }, where the attention backward sums dQ with atomics (`*_atomic_dq`),
 * with { attentionKernels: 'mma' } (`*_mma`: the mma.sync attention kernels, deterministic), and
 * with { attentionKernels: 'wgmma-k128' } (`*_k128`: the two-warpgroup backward kernels, 128 keys / queries a CTA, deterministic),
 * and with { attentionKernels: 'wgmma-64' } (`*_64`: the forward over 64 keys a step, the default before; deterministic).
 *
 * Each run is its own process (ours, then each peer), so device memory is returned between them.
 * Times: best of 3 steps after a warm-up; our step ends with the optimizer's gradient norm read
 * back to the host, so the wall clock covers all device work; the peer synchronises around steps.
 * Model FLOPs utilisation = (6 * params * tokens + 12 * pairs * head_dim * heads * layers) / step
 * time / peak, with pairs = each side's own attended (q, k) pairs (ours: visible under the
 * Structure; the peer's: causal) and peak = 989 TFLOP/s (H100 SXM bf16 dense; --peak-tflops N to
 * change it). Flags: --python PATH, --require-cuda (exit 1, not 0, when CUDA is not available).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { native } from '../ts/bindings/loader.js';
import { expectedParameters, Qwen3Config } from '../ts/model/config.js';
import { Model } from '../ts/model/model.js';
import { nprRollouts } from './_npr-shape.js';
import { argFlag, argValue, type Figures, printJson, printTable, round } from './_report.js';
import { seededWeights } from './_weights.js';

const CONFIG = {
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
  max_position_embeddings: 40960,
};
const ROLLOUT = 4096;
const ROLLOUTS = 4;
const STEPS = 3;
const PEAK_TFLOPS = Number(argValue('peak-tflops') ?? 989);
const peerScript = join(import.meta.dirname, '..', '..', 'bench', 'peers', 'train_step_cuda.py');

interface OursResult {
  tok_per_s: number;
  step_s: number;
  params: number;
  visible_pairs: number;
  native_bytes: number;
}

interface PeerResult {
  tok_per_s: number;
  step_s: number;
  params: number;
  micro_batches: number;
  mode: string;
  peak_mem_bytes: number;
  device: string;
  torch_version: string;
  transformers_version: string;
  attn_implementation: string | null;
  notes: string[];
}

/** Our step, in this (child) process. */
async function runOurs(): Promise<OursResult> {
  const config = Qwen3Config.fromHfJson({ architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', ...CONFIG });
  const weights = seededWeights(expectedParameters(config), 12345);
  // A plain variable (not a literal) so this compiles before and after CreateOptions gains them.
  const options = {
    weights,
    backend: 'cuda' as const,
    precision: 'bf16' as const,
    deterministic: !argFlag('atomic-dq'),
    attentionKernels: argFlag('mma')
      ? ('mma' as const)
      : argFlag('wgmma-k128')
        ? ('wgmma-k128' as const)
        : argFlag('wgmma-cp')
          ? ('wgmma-cp' as const)
          : argFlag('wgmma-64')
            ? ('wgmma-64' as const)
            : ('wgmma' as const),
  };
  const model = Model.create(config, options);
  weights.clear();
  if ((model.backend as string) !== 'cuda')
    throw new Error(`Model.create gave backend '${model.backend}' for { backend: 'cuda' }: this build's Model has no CUDA backend`);

  const r = nprRollouts(ROLLOUT, ROLLOUTS);
  let y = 7;
  const ids = new Int32Array(r.tokens).map(() => {
    y = (Math.imul(y, 1664525) + 1013904223) >>> 0;
    return y % config.vocabSize;
  });
  const batch = {
    ids,
    positions: r.positions,
    prev: r.prev,
    cuSeqlens: r.cuSeqlens,
    structure: { depth: 1, block: r.block, step: r.step },
  };
  const scored = r.prev.filter((p) => p >= 0).length;
  const dlogprob = new Float32Array(r.tokens).map((_, t) => ((r.prev[t] as number) >= 0 ? -1 / scored : 0));
  const step = async () => {
    model.zeroGrad();
    await model.forward(batch);
    await model.backward(dlogprob);
    model.step({ lr: 1e-5, beta1: 0.9, beta2: 0.95, weightDecay: 0.1, clipNorm: 1 });
  };
  await step(); // warm-up
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < STEPS; i++) {
    const t0 = performance.now();
    await step();
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return {
    tok_per_s: r.tokens / best,
    step_s: best,
    params: model.paramCount,
    visible_pairs: r.visiblePairs,
    native_bytes: model.memoryBytes(),
  };
}

/** Runs a child process; its last stdout line is a JSON object. */
function child<T>(args: string[], label: string, env: NodeJS.ProcessEnv = process.env): T {
  const r = spawnSync(args[0] as string, args.slice(1), { encoding: 'utf8', maxBuffer: 1 << 24, env, timeout: 1_800_000 });
  const last = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !last.startsWith('{'))
    throw new Error(`${label} failed (exit ${r.status ?? r.signal}): ${(r.stderr ?? '').slice(-2000)}`);
  return JSON.parse(last) as T;
}

/** The first python3 with a CUDA torch and transformers, or the reason none is. */
function cudaPython(): { py: string | null; note: string } {
  const given = argValue('python');
  const notes: string[] = [];
  const probe = 'import torch, transformers; print(torch.__version__, transformers.__version__, torch.cuda.is_available())';
  for (const py of given ? [given] : ['python3', '/usr/bin/python3']) {
    const r = spawnSync(py, ['-c', probe], { encoding: 'utf8' });
    const out = (r.stdout ?? '').trim();
    if (r.status === 0 && out.endsWith('True')) return { py, note: out };
    notes.push(`${py}: ${r.status === 0 ? `no CUDA (${out})` : 'no torch + transformers'}`);
  }
  return { py: null, note: notes.join('; ') };
}

function mfu(params: number, tokens: number, pairs: number, stepS: number): number {
  const flops = 6 * params * tokens + 12 * pairs * CONFIG.head_dim * CONFIG.num_attention_heads * CONFIG.num_hidden_layers;
  return flops / stepS / (PEAK_TFLOPS * 1e12);
}

async function main(): Promise<void> {
  const cuda = (() => {
    try {
      return native().backends().cuda;
    } catch (e) {
      return { compiled: false, devices: 0, reason: `the addon does not load (${(e as Error).message})`, deviceName: null };
    }
  })();
  if (!cuda.compiled || cuda.devices === 0) {
    console.log(`CUDA backend not available: ${cuda.reason ?? 'no CUDA device answers'}`);
    printJson('train-step-cuda', { available: false, reason: cuda.reason });
    process.exitCode = argFlag('require-cuda') ? 1 : 0;
    return;
  }
  const tokens = ROLLOUT * ROLLOUTS;
  const causalPairs = (ROLLOUTS * ROLLOUT * (ROLLOUT + 1)) / 2;
  const errors: string[] = [];
  const figures: Figures = { available: true, device: cuda.deviceName, tokens, peak_tflops: PEAK_TFLOPS };
  let ours: OursResult | null = null;
  let oursAtomic: OursResult | null = null;
  try {
    ours = child<OursResult>([process.execPath, import.meta.filename, '--cuda-child'], 'our CUDA train step');
  } catch (e) {
    errors.push((e as Error).message);
  }
  try {
    const args = [process.execPath, import.meta.filename, '--cuda-child', '--atomic-dq'];
    oursAtomic = child<OursResult>(args, 'our CUDA train step (atomic dQ)');
  } catch (e) {
    errors.push((e as Error).message);
  }
  let oursMma: OursResult | null = null;
  try {
    const args = [process.execPath, import.meta.filename, '--cuda-child', '--mma'];
    oursMma = child<OursResult>(args, 'our CUDA train step (mma.sync attention)');
  } catch (e) {
    errors.push((e as Error).message);
  }
  let oursK128: OursResult | null = null;
  try {
    const args = [process.execPath, import.meta.filename, '--cuda-child', '--wgmma-k128'];
    oursK128 = child<OursResult>(args, 'our CUDA train step (two-warpgroup backward)');
  } catch (e) {
    errors.push((e as Error).message);
  }
  let ours64: OursResult | null = null;
  try {
    const args = [process.execPath, import.meta.filename, '--cuda-child', '--wgmma-64'];
    ours64 = child<OursResult>(args, 'our CUDA train step (the forward over 64 keys a step)');
  } catch (e) {
    errors.push((e as Error).message);
  }
  const { py, note } = existsSync(peerScript) ? cudaPython() : { py: null, note: `${peerScript} missing` };
  const peers: Record<string, PeerResult | null> = { amp: null, bf16: null };
  if (py) {
    const env = { ...process.env };
    env.PYTORCH_CUDA_ALLOC_CONF ??= 'expandable_segments:True';
    for (const mode of ['amp', 'bf16'] as const) {
      const spec = { config: CONFIG, batch: ROLLOUTS, seq_len: ROLLOUT, steps: STEPS, warmup: 2, mode };
      try {
        peers[mode] = child<PeerResult>([py, peerScript, JSON.stringify(spec)], `torch peer (${mode})`, env);
        for (const n of peers[mode]?.notes ?? []) console.log(`note (torch ${mode}): ${n}`);
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
  }

  const rows: Array<Record<string, string | number | null>> = [];
  const oursRow = (label: string, r: OursResult | null) => {
    const m = r ? mfu(r.params, tokens, r.visible_pairs, r.step_s) : null;
    rows.push({
      run: `ours (cuda, bf16, Structure${label})`,
      tok_per_s: r ? round(r.tok_per_s, 0) : null,
      step_ms: r ? round(r.step_s * 1e3, 1) : null,
      mfu: round(m, 3),
      ratio: null,
      memory_gib: r ? round(r.native_bytes / 2 ** 30, 2) : null,
    });
    return m;
  };
  const oursMfu = oursRow('', ours);
  const atomicMfu = oursRow(', atomic dQ', oursAtomic);
  const mmaMfu = oursRow(', mma.sync attention', oursMma);
  const k128Mfu = oursRow(', two-warpgroup backward', oursK128);
  const mfu64 = oursRow(', forward 64 keys a step', ours64);
  for (const mode of ['amp', 'bf16'] as const) {
    const p = peers[mode];
    const m = p ? mfu(p.params, tokens, causalPairs, p.step_s) : null;
    const ratio = p && ours ? ours.tok_per_s / p.tok_per_s : null;
    rows.push({
      run: `torch ${mode} (sdpa causal${p && p.micro_batches > 1 ? `, ${p.micro_batches} micro-batches` : ''})`,
      tok_per_s: p ? round(p.tok_per_s, 0) : null,
      step_ms: p ? round(p.step_s * 1e3, 1) : null,
      mfu: round(m, 3),
      ratio: round(ratio, 2),
      memory_gib: p ? round(p.peak_mem_bytes / 2 ** 30, 2) : null,
    });
    const sfx = mode === 'amp' ? '' : '_bf16';
    figures[`tokps_torch${sfx}_0p6b`] = p ? round(p.tok_per_s, 1) : null;
    figures[`ratio_vs_torch${sfx}_0p6b`] = round(ratio);
    figures[`mfu_torch${sfx}`] = round(m, 4);
    figures[`torch${sfx}_micro_batches`] = p?.micro_batches ?? null;
    figures[`torch${sfx}_peak_mem_bytes`] = p?.peak_mem_bytes ?? null;
  }
  figures.tokps_ours_0p6b = ours ? round(ours.tok_per_s, 1) : null;
  figures.tokps_ours_atomic_dq_0p6b = oursAtomic ? round(oursAtomic.tok_per_s, 1) : null;
  figures.mfu_ours_atomic_dq = round(atomicMfu, 4);
  figures.ratio_vs_torch_atomic_dq_0p6b = oursAtomic && peers.amp ? round(oursAtomic.tok_per_s / peers.amp.tok_per_s) : null;
  figures.tokps_ours_mma_0p6b = oursMma ? round(oursMma.tok_per_s, 1) : null;
  figures.mfu_ours_mma = round(mmaMfu, 4);
  figures.ratio_vs_torch_mma_0p6b = oursMma && peers.amp ? round(oursMma.tok_per_s / peers.amp.tok_per_s) : null;
  figures.speedup_default_vs_mma = ours && oursMma ? round(ours.tok_per_s / oursMma.tok_per_s) : null;
  figures.tokps_ours_k128_0p6b = oursK128 ? round(oursK128.tok_per_s, 1) : null;
  figures.mfu_ours_k128 = round(k128Mfu, 4);
  figures.ratio_vs_torch_k128_0p6b = oursK128 && peers.amp ? round(oursK128.tok_per_s / peers.amp.tok_per_s) : null;
  figures.speedup_k128_vs_default = ours && oursK128 ? round(oursK128.tok_per_s / ours.tok_per_s) : null;
  figures.tokps_ours_64_0p6b = ours64 ? round(ours64.tok_per_s, 1) : null;
  figures.mfu_ours_64 = round(mfu64, 4);
  figures.ratio_vs_torch_64_0p6b = ours64 && peers.amp ? round(ours64.tok_per_s / peers.amp.tok_per_s) : null;
  figures.speedup_default_vs_64 = ours && ours64 ? round(ours.tok_per_s / ours64.tok_per_s) : null;
  figures.mfu_ours = round(oursMfu, 4);
  figures.params_ours = ours?.params ?? null;
  figures.params_torch = peers.amp?.params ?? peers.bf16?.params ?? null;
  figures.ours_native_bytes = ours?.native_bytes ?? null;
  figures.torch_version = peers.amp?.torch_version ?? peers.bf16?.torch_version ?? null;
  figures.transformers_version = peers.amp?.transformers_version ?? peers.bf16?.transformers_version ?? null;
  figures.peer = py ? 'present' : `absent: ${note}`;
  figures.errors = errors.length;

  printTable(rows);
  console.log(
    `\n${cuda.deviceName}; ${tokens} tokens per step (ours: ${ROLLOUTS} NPR rollouts of ${ROLLOUT}; torch: ${ROLLOUTS} x ${ROLLOUT} causal); ` +
      `best of ${STEPS} steps after warm-up; MFU over ${PEAK_TFLOPS} TFLOP/s; torch peer: ${py ? note : `absent (${note})`}`,
  );
  for (const e of errors) console.log(`error: ${e}`);
  // The figures the issue names come last in the object, for a reader of the raw line.
  const { tokps_ours_0p6b, tokps_torch_0p6b, ratio_vs_torch_0p6b, mfu_ours, mfu_torch, ...rest } = figures;
  printJson('train-step-cuda', { ...rest, tokps_ours_0p6b, tokps_torch_0p6b, ratio_vs_torch_0p6b, mfu_ours, mfu_torch } as Figures);
  if (errors.length > 0) process.exitCode = 1;
}

if (argFlag('cuda-child')) console.log(JSON.stringify(await runOurs()));
else await main();
