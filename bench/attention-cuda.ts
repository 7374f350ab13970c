/**
 * `npm run bench -- attention --backend cuda` (or `node dist/bench/attention-cuda.js`): the CUDA
 * block-sparse parallel attention on NPR-shaped rollouts (bench/_npr-shape.ts: prompt 512, two
 * blocks of guideline 128 + 4 sibling steps + takeaway 128; T = 4k, 8k, 32k), 32 query / 8 KV
 * heads, head dim 128, bf16, one packed rollout, forward and forward + backward; our kernel in
 * sparse mode and in dense-causal mode (the plan ignores the branch paths). Times are medians of
 * `--iters` (default 20) runs after 3 warm-ups, measured with CUDA events on the device by the
 * addon (attentionCudaTime); the plan is built and uploaded once, outside the timing.
 *
 * Peers in the same run on the same GPU (bench/peers/attention_cuda.py, when a python3 with a
 * CUDA torch is found; else a note and null figures): FlexAttention (torch.compile'd) with a
 * BlockMask of the same visibility (built once, outside the timing), SDPA causal with the flash
 * backend (all the causal work), SDPA with a dense boolean mask (NPR's trainer's way; T <= 8k).
 * They regenerate our exact inputs (the addon's counter hash) and check our sampled rows of
 * out, dq, dk, dv against FlexAttention (relative norm error <= 2e-2 for out, 5e-2 for grads).
 *
 * Figures: TFLOP/s count visible pairs only (forward 4 * pairs * D * heads, forward + backward
 * 3.5x that); dense-causal TFLOP/s count the causal pairs. Ratios are peer time / our time (> 1:
 * we are faster). sparsity_efficiency = (our dense-causal time * visible / causal pairs) / our
 * sparse time: 1.0 means skipping saves exactly the skipped work; below 1, the skipping costs
 * (partial tiles, imbalance) eat part of the saving.
 *
 * Forward + backward runs twice: deterministic (the default; `fwdbwd_*` figures) and with the
 * deterministic switch off, where dQ is summed with atomics from the dK/dV kernel
 * (`*_atomic_dq_*` figures; its sampled dq rows are checked against the deterministic run's,
 * `atomic_dq_rel_err_*`, relative norm <= 1e-2). The Hopper wgmma kernels run too, where the
 * build and GPU can (sm_90; elsewhere those keys are null and `wgmma_available` false): the
 * forward in its pipelined one-CTA-an-SM build (softmax overlapped with the MMAs inside each
 * warpgroup) and its two-CTA build, each followed by the wgmma dK/dV backward
 * (`wgmma1`, `wgmma2` keys: `fwd_ms_wgmma1_*`, `fwdbwd_ms_wgmma1_*`, `ratio_vs_flex_*_wgmma1_*`,
 * `wgmma1_rel_err_{out,dq,dk,dv}_*` against the mma.sync kernels' sampled rows, <= 1e-2), and
 * the model's forward (`wgmma10`) with the atomic dQ (`*_wgmma10_atomic_dq_*`), the one-CTA forward loading K/V
 * two tiles ahead (`wgmma3` keys) and that with Q held in registers (`wgmma4`), `wgmma1` and
 * `wgmma4` with the two warpgroups ping-ponging half a tile apart (`wgmma5`, `wgmma6`), the
 * warp-specialised forward whose K/V come by tensor-map copies from a producer warp, without and
 * with the ping-pong (`wgmma7`, `wgmma8`), `wgmma5` with its K/V by tensor-map copies from
 * thread 0 (`wgmma9`), the warp-specialised forward over 128 keys a step, FlashAttention-3's
 * block shape, its producer a warpgroup that hands its registers to the consumers (`wgmma10`),
 * and that with the ping-pong (`wgmma11`; in the backward of these five the deterministic dQ
 * kernel is
 * warp-specialised too, two heads a CTA sharing K/V, and the dK/dV kernel takes Q and dO by
 * tensor-map copies), and the one-CTA forward with the two-warpgroup backward
 * kernels (128 keys, 128 queries a CTA), deterministic and with the atomic dQ
 * (`*_wgmma1_k128_*`, `*_wgmma1_k128_atomic_dq_*`).
 *
 * Which kernels the keys name: the un-suffixed ones the issue names (`fwd_ms_4k`,
 * `ratio_vs_flex_fwd_32k`, `dense_causal_ratio_vs_sdpa_flash_4k`, `sparsity_efficiency_32k`, the
 * atomic-dQ ones, ...) are the kernels a model runs by default on this GPU (`default_kernels_*`:
 * `wgmma10`, the 128-key forward, where it ran, with its own dense-causal and atomic-dQ runs;
 * else `mma`); the same figures of the mma.sync kernels, which every GPU from sm_80 runs, carry
 * `_mma` (`fwd_ms_mma_4k`, `sparsity_efficiency_mma_32k`); the `wgmmaN` trials' `speedup_*` are
 * against those. The last line is the JSON object.
 * Flags: --iters N, --quick (4k only, 5 iters), --python PATH, --require-cuda (exit 1, not 0,
 * when no CUDA backend is available).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native } from '../ts/bindings/loader.js';
import type { AttentionCudaTimeOptions, AttentionCudaTiming, NativeAddon } from '../ts/bindings/native.js';
import { nprRollouts } from './_npr-shape.js';
import { argFlag, argValue, type Figures, printJson, printTable, round } from './_report.js';

const HEADS = 32;
const KV_HEADS = 8;
const D = 128;
const SAMPLES = 64;
const quick = argFlag('quick');
const SIZES = quick ? [4096] : [4096, 8192, 32768];
const ITERS = Number(argValue('iters') ?? (quick ? 5 : 20));
const TOL_OUT = 2e-2;
const TOL_GRAD = 5e-2;
const TOL_ATOMIC = 1e-2;
const peerScript = join(import.meta.dirname, '..', '..', 'bench', 'peers', 'attention_cuda.py');

/** What the Python peer prints (times in ms, null when not run; errors by peer name). */
interface PeerResult {
  torch_version: string;
  device: string;
  flex_fwd_ms: number | null;
  flex_fwdbwd_ms: number | null;
  flash_fwd_ms: number | null;
  flash_fwdbwd_ms: number | null;
  mask_fwd_ms: number | null;
  mask_fwdbwd_ms: number | null;
  /** Relative norm error of our sampled rows against FlexAttention's. */
  check: { out: number; dq: number | null; dk: number | null; dv: number | null } | null;
  notes: string[];
  errors: Record<string, string>;
}

function unavailable(reason: string): void {
  console.log(`CUDA backend not available: ${reason}`);
  printJson('attention-cuda', { available: false, reason });
  process.exitCode = argFlag('require-cuda') ? 1 : 0;
}

/** The first python3 whose torch sees a CUDA device, or the reason none does. */
function cudaPython(): { py: string | null; note: string } {
  const given = argValue('python');
  const notes: string[] = [];
  for (const py of given ? [given] : ['python3', '/usr/bin/python3']) {
    const r = spawnSync(py, ['-c', 'import torch; print(torch.__version__, torch.cuda.is_available())'], { encoding: 'utf8' });
    const out = (r.stdout ?? '').trim();
    if (r.status === 0 && out.endsWith('True')) return { py, note: `${py}: torch ${out.split(' ')[0]}` };
    notes.push(`${py}: ${r.status === 0 ? `torch ${out.split(' ')[0]} without CUDA` : 'no torch'}`);
  }
  return { py: null, note: notes.join('; ') };
}

function runPeer(
  py: string,
  T: number,
  rollout: ReturnType<typeof nprRollouts>,
  sampleTokens: Int32Array,
  ours: AttentionCudaTiming | null,
): PeerResult {
  const dir = mkdtempSync(join(tmpdir(), 'npr-attn-cuda-'));
  try {
    const write = (name: string, a: Int32Array | Float32Array) =>
      writeFileSync(join(dir, `${name}.bin`), Buffer.from(a.buffer, a.byteOffset, a.byteLength));
    write('block', rollout.block);
    write('step', rollout.step);
    write('sample_tokens', sampleTokens);
    const s = ours?.samples;
    const samples: string[] = [];
    for (const name of ['out', 'dq', 'dk', 'dv'] as const) {
      const a = s?.[name];
      if (a) {
        write(`sample_${name}`, a);
        samples.push(name);
      }
    }
    const spec = {
      dir,
      T,
      heads: HEADS,
      kv_heads: KV_HEADS,
      head_dim: D,
      iters: ITERS,
      warmup: 3,
      dense_mask: T <= 8192,
      samples,
    };
    const r = spawnSync(py, [peerScript, JSON.stringify(spec)], { encoding: 'utf8', maxBuffer: 1 << 24, timeout: 1_200_000 });
    const last = (r.stdout ?? '').trim().split('\n').pop() ?? '';
    if (r.status !== 0 || !last.startsWith('{'))
      throw new Error(`torch peer failed at T=${T} (exit ${r.status ?? r.signal}): ${(r.stderr ?? '').slice(-2000)}`);
    return JSON.parse(last) as PeerResult;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function timeOurs(addon: NativeAddon, options: AttentionCudaTimeOptions, errors: string[], label: string): AttentionCudaTiming | null {
  try {
    return addon.attentionCudaTime(options);
  } catch (e) {
    errors.push(`${label}: ${(e as Error).message}`);
    return null;
  }
}

const ratio = (peer: number | null | undefined, ours: number | null | undefined) => (peer && ours ? peer / ours : null);
function relNorm(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += ((a[i] as number) - (b[i] as number)) ** 2;
    den += (b[i] as number) ** 2;
  }
  return den > 0 ? Math.sqrt(num / den) : num > 0 ? Number.POSITIVE_INFINITY : 0;
}
const tflops = (flop: number, ms: number | null | undefined) => (ms ? flop / (ms * 1e9) : null);

/** The forward variant Model.create's default ('wgmma') runs on sm_90 with tensor-map copies. */
const DEFAULT_WGMMA = 10;

/** Relative norm of the atomic run's sampled dq rows against the deterministic run's. */
function atomicRelErr(atomic: AttentionCudaTiming | null, ours: AttentionCudaTiming | null): number | null {
  return atomic?.samples?.dq && ours?.samples?.dq ? relNorm(atomic.samples.dq, ours.samples.dq) : null;
}

interface KernelRuns {
  key: string;
  peer: PeerResult | null;
  visible: number;
  causal: number;
  flopFwd: number;
  /** Sparse (deterministic), dense-causal, and sparse with the atomic dQ. */
  ours: AttentionCudaTiming | null;
  dense: AttentionCudaTiming | null;
  atomic: AttentionCudaTiming | null;
}

/**
 * One pass's times (ms) of our sparse and dense-causal runs and the peers', its FLOP factor over
 * the forward, and the sparsity efficiency (dense time scaled to the visible pairs / sparse time).
 */
function passTimes(
  pass: 'fwd' | 'fwdbwd',
  r: Pick<KernelRuns, 'peer' | 'visible' | 'causal' | 'ours' | 'dense'>,
): {
  f: number;
  oursMs: number | null | undefined;
  denseMs: number | null | undefined;
  flexMs: number | null | undefined;
  flashMs: number | null | undefined;
  maskMs: number | null | undefined;
  eff: number | null;
} {
  const { peer, visible, causal, ours, dense } = r;
  const fwd = pass === 'fwd';
  const oursMs = fwd ? ours?.fwdMs : ours?.fwdBwdMs;
  const denseMs = fwd ? dense?.fwdMs : dense?.fwdBwdMs;
  return {
    f: fwd ? 1 : 3.5,
    oursMs,
    denseMs,
    flexMs: fwd ? peer?.flex_fwd_ms : peer?.flex_fwdbwd_ms,
    flashMs: fwd ? peer?.flash_fwd_ms : peer?.flash_fwdbwd_ms,
    maskMs: fwd ? peer?.mask_fwd_ms : peer?.mask_fwdbwd_ms,
    eff: oursMs && denseMs ? (denseMs * (visible / causal)) / oursMs : null,
  };
}

/**
 * One kernel set's figures at one size against the peers: `tag` '' for the un-suffixed keys the
 * issue names, else inserted before the size (`fwd_ms_mma_4k`, `sparsity_efficiency_mma_32k`).
 */
function kernelFigures(figures: Figures, tag: string, r: KernelRuns): void {
  const t = tag ? `_${tag}` : '';
  const { key, peer, visible, causal, flopFwd, ours, atomic } = r;
  const flopCausalFwd = (flopFwd * causal) / visible;
  for (const pass of ['fwd', 'fwdbwd'] as const) {
    const { f, oursMs, denseMs, flexMs, flashMs, maskMs, eff } = passTimes(pass, r);
    figures[`${pass}_ms${t}_${key}`] = round(oursMs ?? null, 4);
    figures[`dense_causal_${pass}_ms${t}_${key}`] = round(denseMs ?? null, 4);
    figures[`ratio_vs_flex_${pass}${t}_${key}`] = round(ratio(flexMs, oursMs));
    figures[`ratio_vs_sdpa_flash_${pass}${t}_${key}`] = round(ratio(flashMs, oursMs));
    figures[`ratio_vs_sdpa_mask_${pass}${t}_${key}`] = round(ratio(maskMs, oursMs));
    figures[`tflops_${pass}${t}_${key}`] = round(tflops(f * flopFwd, oursMs), 1);
    figures[`dense_causal_tflops_${pass}${t}_${key}`] = round(tflops(f * flopCausalFwd, denseMs), 1);
    const p = pass === 'fwd' ? '' : '_fwdbwd';
    figures[`dense_causal_ratio_vs_sdpa_flash${p}${t}_${key}`] = round(ratio(flashMs, denseMs));
    figures[`sparsity_efficiency${p}${t}_${key}`] = round(eff);
  }
  const atomicMs = atomic?.fwdBwdMs ?? null;
  figures[`fwdbwd_ms_atomic_dq${t}_${key}`] = round(atomicMs, 4);
  figures[`ratio_vs_flex_fwdbwd_atomic_dq${t}_${key}`] = round(ratio(peer?.flex_fwdbwd_ms, atomicMs));
  figures[`speedup_atomic_dq_fwdbwd${t}_${key}`] = round(ratio(ours?.fwdBwdMs, atomicMs));
  figures[`atomic_dq_rel_err${t}_${key}`] = round(atomicRelErr(atomic, ours), 6);
}

async function main(): Promise<void> {
  let addon: NativeAddon;
  try {
    addon = native();
  } catch (e) {
    unavailable(`the addon does not load (${(e as Error).message})`);
    return;
  }
  const cuda = addon.backends().cuda;
  if (!cuda.compiled || cuda.devices === 0) {
    unavailable(cuda.reason ?? 'no CUDA device answers');
    return;
  }
  if (typeof addon.attentionCudaTime !== 'function') {
    unavailable('this addon build has no attentionCudaTime export (stale build: rebuild the addon)');
    return;
  }
  const { py, note: pyNote } = existsSync(peerScript) ? cudaPython() : { py: null, note: `${peerScript} missing` };

  const figures: Figures = {
    available: true,
    device: cuda.deviceName,
    heads: HEADS,
    kv_heads: KV_HEADS,
    head_dim: D,
    dtype: 'bf16',
    iters: ITERS,
  };
  const rows: Array<Record<string, string | number | null>> = [];
  const errors: string[] = [];
  let torchVersion: string | null = null;
  // The Hopper (wgmma) trials run after every size's mma.sync ones: a device fault in a kernel
  // no GPU has run yet is sticky for the process and must not take those figures with it.
  const hopper: Array<{
    T: number;
    key: string;
    base: AttentionCudaTimeOptions;
    sampleTokens: Int32Array;
    ours: AttentionCudaTiming | null;
    dense: AttentionCudaTiming | null;
    atomic: AttentionCudaTiming | null;
    peer: PeerResult | null;
    visible: number;
    causal: number;
    flopFwd: number;
  }> = [];
  for (const T of SIZES) {
    const key = `${T / 1024}k`;
    const rollout = nprRollouts(T, 1);
    const sampleTokens = Int32Array.from({ length: SAMPLES }, (_, j) => Math.min(T - 1, Math.floor(((j + 0.5) * T) / SAMPLES)));
    const base: AttentionCudaTimeOptions = {
      heads: HEADS,
      kvHeads: KV_HEADS,
      headDim: D,
      cuSeqlens: rollout.cuSeqlens,
      depth: 1,
      block: rollout.block,
      step: rollout.step,
      dtype: 'bf16',
      iters: ITERS,
    };
    const ours = timeOurs(addon, { ...base, sampleTokens }, errors, `ours sparse T=${T}`);
    const dense = timeOurs(addon, { ...base, dense: true }, errors, `ours dense-causal T=${T}`);
    const atomic = timeOurs(addon, { ...base, sampleTokens, deterministic: false }, errors, `ours atomic dQ T=${T}`);
    let peer: PeerResult | null = null;
    if (py) {
      try {
        peer = runPeer(py, T, rollout, sampleTokens, ours);
        torchVersion = peer.torch_version;
        for (const [name, msg] of Object.entries(peer.errors)) errors.push(`peer ${name} T=${T}: ${msg}`);
        for (const n of peer.notes) console.log(`note (T=${T}): ${n}`);
      } catch (e) {
        errors.push((e as Error).message);
      }
    }

    const visible = rollout.visiblePairs;
    const causal = rollout.causalPairs;
    if (ours && ours.visiblePairs !== visible)
      errors.push(`T=${T}: the plan counts ${ours.visiblePairs} visible pairs, the bench ${visible}`);
    const flopFwd = 4 * visible * D * HEADS;
    const flopCausalFwd = 4 * causal * D * HEADS;
    const c = peer?.check ?? null;
    const checkOk =
      ours === null || c === null
        ? null
        : ours.nonFiniteOut === 0 &&
          ours.nonFiniteGrads === 0 &&
          c.out <= TOL_OUT &&
          [c.dq, c.dk, c.dv].every((x) => x !== null && x <= TOL_GRAD);
    for (const pass of ['fwd', 'fwdbwd'] as const) {
      const { f, oursMs, denseMs, flexMs, flashMs, maskMs, eff } = passTimes(pass, { peer, visible, causal, ours, dense });
      rows.push({
        T,
        pass,
        visible: round(visible / causal),
        ms: round(oursMs ?? null, 3),
        tflops: round(tflops(f * flopFwd, oursMs), 1),
        dense_ms: round(denseMs ?? null, 3),
        flex_ms: round(flexMs ?? null, 3),
        flash_ms: round(flashMs ?? null, 3),
        mask_ms: round(maskMs ?? null, 3),
        vs_flex: round(ratio(flexMs, oursMs), 2),
        dense_vs_flash: round(ratio(flashMs, denseMs), 2),
        sparsity_eff: round(eff, 2),
        check: checkOk === null ? '-' : checkOk ? 'ok' : 'FAIL',
      });
      const sfx = pass === 'fwd' ? 'fwd' : 'fwdbwd';
      figures[`flex_${sfx}_ms_${key}`] = round(flexMs ?? null, 4);
      figures[`sdpa_flash_${sfx}_ms_${key}`] = round(flashMs ?? null, 4);
      figures[`sdpa_mask_${sfx}_ms_${key}`] = round(maskMs ?? null, 4);
      figures[`flex_tflops_${sfx}_${key}`] = round(tflops(f * flopFwd, flexMs), 1);
      figures[`sdpa_flash_tflops_${sfx}_${key}`] = round(tflops(f * flopCausalFwd, flashMs), 1);
    }
    const atomicMs = atomic?.fwdBwdMs ?? null;
    const flexFwdBwd = peer?.flex_fwdbwd_ms ?? null;
    const atomicErr = atomicRelErr(atomic, ours);
    rows.push({
      T,
      pass: 'fwdbwd atomic dQ',
      visible: round(visible / causal),
      ms: round(atomicMs, 3),
      tflops: round(tflops(3.5 * flopFwd, atomicMs), 1),
      dense_ms: null,
      flex_ms: round(flexFwdBwd, 3),
      flash_ms: null,
      mask_ms: null,
      vs_flex: round(ratio(flexFwdBwd, atomicMs), 2),
      dense_vs_flash: null,
      sparsity_eff: null,
      check: atomicErr === null ? '-' : atomicErr <= TOL_ATOMIC && atomic?.nonFiniteGrads === 0 ? 'ok' : 'FAIL',
    });
    if (atomicErr !== null && atomicErr > TOL_ATOMIC)
      errors.push(`T=${T}: atomic dQ rows differ from the deterministic ones by ${atomicErr} (relative norm)`);
    const measured = { key, peer, visible, causal, flopFwd };
    kernelFigures(figures, 'mma', { ...measured, ours, dense, atomic });
    hopper.push({ T, key, base, sampleTokens, ours, dense, atomic, peer, visible, causal, flopFwd });
    figures[`visible_fraction_${key}`] = round(visible / causal, 4);
    figures[`tiles_skipped_fraction_${key}`] = ours ? round(ours.tilesSkipped / ours.tilesCausal, 4) : null;
    figures[`device_peak_bytes_${key}`] = ours?.devicePeakBytes ?? null;
    figures[`nonfinite_${key}`] = ours ? ours.nonFiniteOut + ours.nonFiniteGrads : null;
    figures[`check_ok_${key}`] = checkOk;
    for (const n of ['out', 'dq', 'dk', 'dv'] as const) figures[`check_rel_err_${n}_${key}`] = c ? round(c[n], 5) : null;
  }

  for (const { T, key, base, sampleTokens, ours, dense, atomic, peer, visible, causal, flopFwd } of hopper) {
    const onWgmma = (r: AttentionCudaTiming | null) => (r && r.forwardKernel === 'wgmma' ? r : null);
    const wgmma = ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] as const).map((n) =>
      onWgmma(timeOurs(addon, { ...base, sampleTokens, wgmma: n }, errors, `ours wgmma${n} T=${T}`)),
    );
    // The model's default forward (DEFAULT_WGMMA) with `deterministic: false`: the wgmma dK/dV
    // kernel's atomic dQ; and in dense-causal mode, for the default's sparsity efficiency.
    const wgmmaAtomic = onWgmma(
      timeOurs(
        addon,
        { ...base, sampleTokens, wgmma: DEFAULT_WGMMA, deterministic: false },
        errors,
        `ours wgmma${DEFAULT_WGMMA} atomic dQ T=${T}`,
      ),
    );
    const wgmmaDense = onWgmma(
      timeOurs(addon, { ...base, dense: true, wgmma: DEFAULT_WGMMA }, errors, `ours wgmma${DEFAULT_WGMMA} dense-causal T=${T}`),
    );
    const k128 = ([true, false] as const).map((deterministic) =>
      onWgmma(
        timeOurs(
          addon,
          { ...base, sampleTokens, wgmma: 1, wgmmaKeys: 128, deterministic },
          errors,
          `ours wgmma1 two-warpgroup backward${deterministic ? '' : ' atomic dQ'} T=${T}`,
        ),
      ),
    );
    figures.wgmma_available = figures.wgmma_available === true || wgmma.some((r) => r !== null);
    const trials: Array<[string, AttentionCudaTiming | null]> = [
      ['wgmma1', wgmma[0] ?? null],
      ['wgmma2', wgmma[1] ?? null],
      ['wgmma3', wgmma[2] ?? null],
      ['wgmma4', wgmma[3] ?? null],
      ['wgmma5', wgmma[4] ?? null],
      ['wgmma6', wgmma[5] ?? null],
      ['wgmma7', wgmma[6] ?? null],
      ['wgmma8', wgmma[7] ?? null],
      ['wgmma9', wgmma[8] ?? null],
      ['wgmma10', wgmma[9] ?? null],
      ['wgmma11', wgmma[10] ?? null],
      [`wgmma${DEFAULT_WGMMA}_atomic_dq`, wgmmaAtomic],
      ['wgmma1_k128', k128[0] ?? null],
      ['wgmma1_k128_atomic_dq', k128[1] ?? null],
    ];
    for (const [tag, r] of trials) {
      const errs = (['out', 'dq', 'dk', 'dv'] as const).map((n) => {
        const a = r?.samples?.[n];
        const b = ours?.samples?.[n];
        return a && b ? relNorm(a, b) : null;
      });
      const worst = errs.every((e) => e === null) ? null : Math.max(...errs.map((e) => e ?? 0));
      for (const pass of ['fwd', 'fwdbwd'] as const) {
        const ms = (pass === 'fwd' ? r?.fwdMs : r?.fwdBwdMs) ?? null;
        const flexMs = pass === 'fwd' ? peer?.flex_fwd_ms : peer?.flex_fwdbwd_ms;
        const oursMs = pass === 'fwd' ? ours?.fwdMs : ours?.fwdBwdMs;
        const f = pass === 'fwd' ? 1 : 3.5;
        rows.push({
          T,
          pass: `${pass} ${tag}`,
          visible: round(visible / causal),
          ms: round(ms, 3),
          tflops: round(tflops(f * flopFwd, ms), 1),
          dense_ms: null,
          flex_ms: round(flexMs ?? null, 3),
          flash_ms: null,
          mask_ms: null,
          vs_flex: round(ratio(flexMs, ms), 2),
          dense_vs_flash: null,
          sparsity_eff: null,
          check: worst === null ? '-' : worst <= TOL_ATOMIC && r?.nonFiniteOut === 0 && r?.nonFiniteGrads === 0 ? 'ok' : 'FAIL',
        });
        figures[`${pass}_ms_${tag}_${key}`] = round(ms, 4);
        figures[`tflops_${pass}_${tag}_${key}`] = round(tflops(f * flopFwd, ms), 1);
        figures[`ratio_vs_flex_${pass}_${tag}_${key}`] = round(ratio(flexMs, ms));
        figures[`speedup_${tag}_${pass}_${key}`] = round(ratio(oursMs, ms));
      }
      if (worst !== null && worst > TOL_ATOMIC) errors.push(`T=${T}: ${tag} rows differ from the mma.sync kernels' by ${worst}`);
      for (const [i, n] of (['out', 'dq', 'dk', 'dv'] as const).entries())
        figures[`${tag}_rel_err_${n}_${key}`] = round(errs[i] ?? null, 6);
    }
    // The un-suffixed keys (the issue's): the kernels a model runs by default on this GPU, the
    // 128-key wgmma forward where it ran, else the mma.sync kernels.
    const def = wgmma[DEFAULT_WGMMA - 1] ?? null;
    const measured = { key, peer, visible, causal, flopFwd };
    if (def) kernelFigures(figures, '', { ...measured, ours: def, dense: wgmmaDense, atomic: wgmmaAtomic });
    else kernelFigures(figures, '', { ...measured, ours, dense, atomic });
    figures[`default_kernels_${key}`] = def ? `wgmma${DEFAULT_WGMMA}` : 'mma';
  }

  printTable(rows);
  console.log(
    `\n${cuda.deviceName}; bf16, ${HEADS}/${KV_HEADS} heads, D ${D}; medians of ${ITERS} CUDA-event-timed runs; ` +
      `torch peer: ${py ? (torchVersion ?? '?') : `absent (${pyNote})`}`,
  );
  for (const e of errors) console.log(`error: ${e}`);
  figures.torch_version = torchVersion;
  figures.peer = py ? 'present' : `absent: ${pyNote}`;
  figures.errors = errors.length;
  printJson('attention-cuda', figures);
  if (errors.length > 0) process.exitCode = 1;
}

await main();
