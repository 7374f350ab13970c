/**
 * The model against golden files written by the PyTorch reference (tools/golden, float64):
 * per-token logprobs on a packed batch with explicit positions and parallel blocks, the loss,
 * every parameter's gradient, and ten AdamW steps with clipping (losses and final weights).
 * Regenerate the files with `/usr/bin/python3 tools/golden/make_golden.py` (needs torch).
 * The same files check the CUDA backend in its fp32 (parity) mode where a device answers; the
 * CUDA cases skip with the reason elsewhere.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { native } from '../ts/bindings/loader.js';
import type { PackedBatch } from '../ts/model/batch.js';
import { loadHfDirectory } from '../ts/model/hf_dir.js';
import { Model } from '../ts/model/model.js';
import { readSafetensors } from '../ts/model/safetensors.js';
import type { HostTensor } from '../ts/model/tensors.js';

const GOLDEN_DIR = join(import.meta.dirname, 'golden', 'v1');
const FORMAT_VERSION = '1';
const cuda = native().backends().cuda;
const cases = readdirSync(GOLDEN_DIR).flatMap((name) => [
  { name, backend: 'cpu' as const, skip: '', logprobTol: 2e-6 },
  // Reductions run in another order on the GPU: a few ulps more on logprobs, same elsewhere.
  { name, backend: 'cuda' as const, skip: cuda.devices > 0 ? '' : `skipped: ${cuda.reason ?? 'no CUDA'}`, logprobTol: 1e-5 },
]);

function i32(t: HostTensor | undefined, name: string): Int32Array {
  if (t?.dtype !== 'i32') throw new Error(`golden tensor ${name} missing or not i32`);
  return t.data as Int32Array;
}
function f32(t: HostTensor | undefined, name: string): Float32Array {
  if (t?.dtype !== 'f32') throw new Error(`golden tensor ${name} missing or not f32`);
  return t.data as Float32Array;
}
/** max |a - b| / (max |b| + floor): errors relative to the tensor's own scale. */
function scaledError(a: Float32Array, b: Float32Array, floor = 1e-6): number {
  let err = 0;
  let scale = floor;
  for (let i = 0; i < b.length; i++) {
    scale = Math.max(scale, Math.abs(b[i] as number));
    const d = Math.abs((a[i] as number) - (b[i] as number));
    err = Number.isNaN(d) ? Number.POSITIVE_INFINITY : Math.max(err, d);
  }
  return err / scale;
}

describe.each(cases)('golden $name on $backend $skip', ({ name, backend, skip, logprobTol }) => {
  const dir = join(GOLDEN_DIR, name);

  async function setup() {
    const hf = await loadHfDirectory(dir);
    const golden = await readSafetensors(join(dir, 'golden.safetensors'));
    const version = golden.metadata.format_version;
    if (version !== FORMAT_VERSION) {
      throw new Error(
        `${dir}: golden format_version ${version}, this test reads ${FORMAT_VERSION}: regenerate the files or update the test`,
      );
    }
    const g = golden.tensors;
    const ids = i32(g.get('input_ids'), 'input_ids');
    const batch: PackedBatch = {
      ids,
      positions: i32(g.get('positions'), 'positions'),
      prev: i32(g.get('prev'), 'prev'),
      cuSeqlens: i32(g.get('cu_seqlens'), 'cu_seqlens'),
      structure: { depth: 1, block: i32(g.get('struct_block'), 'struct_block'), step: i32(g.get('struct_step'), 'struct_step') },
    };
    const model = Model.create(hf.config, { weights: hf.weights, backend, precision: 'fp32' });
    // loss = mean over scored tokens of -logprob, so dloss/dlogprob = -1/N on scored tokens
    const scored = batch.prev.filter((p) => p >= 0).length;
    const dlogprob = new Float32Array(ids.length).map((_, t) => ((batch.prev[t] as number) >= 0 ? -1 / scored : 0));
    const meta = golden.metadata;
    return { model, batch, g, dlogprob, scored, meta };
  }

  it.skipIf(skip !== '')('matches logprobs, loss and every gradient', async () => {
    const { model, batch, g, dlogprob, scored } = await setup();
    const { logprob } = await model.forward(batch);
    expect(scaledError(logprob, f32(g.get('logprobs'), 'logprobs'), 1)).toBeLessThan(logprobTol);
    const loss = -logprob.reduce((a, b) => a + b, 0) / scored;
    const want = f32(g.get('loss'), 'loss')[0] as number;
    expect(Math.abs(loss - want) / Math.abs(want)).toBeLessThan(1e-6);
    model.zeroGrad();
    await model.backward(dlogprob);
    for (const p of model.paramNames()) {
      const err = scaledError(model.getGrad(p), f32(g.get(`grad.${p}`), `grad.${p}`));
      expect(err, `grad.${p}`).toBeLessThan(1e-4);
    }
  });

  it.skipIf(skip !== '')('reproduces ten AdamW steps with clipping', async () => {
    const { model, batch, g, dlogprob, scored, meta } = await setup();
    const betas = JSON.parse(meta.betas ?? '[0.9, 0.999]') as [number, number];
    const opts = {
      lr: Number(meta.lr),
      beta1: betas[0],
      beta2: betas[1],
      eps: Number(meta.eps),
      weightDecay: Number(meta.weight_decay),
      clipNorm: Number(meta.clip_norm),
    };
    const losses = f32(g.get('adamw_losses'), 'adamw_losses');
    for (let step = 0; step < losses.length; step++) {
      model.zeroGrad();
      const { logprob } = await model.forward(batch);
      const loss = -logprob.reduce((a, b) => a + b, 0) / scored;
      expect(Math.abs(loss - (losses[step] as number)), `loss at step ${step}`).toBeLessThan(2e-5 * Math.abs(losses[step] as number));
      await model.backward(dlogprob);
      model.step(opts);
    }
    // Adam normalises each element's step (m / sqrt(v) ~ +-1 where the gradient is tiny), so a
    // rounding-level gradient difference can move such an element by up to a step: compare the
    // final weights in units of the largest possible total update, lr * steps.
    const bound = opts.lr * losses.length;
    let worst = 0;
    for (const p of model.paramNames()) {
      const got = model.getParam(p);
      const want = f32(g.get(`final.${p}`), `final.${p}`);
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs((got[i] as number) - (want[i] as number)) / bound);
    }
    console.log(`golden ${name} on ${backend}: worst final-weight difference ${worst.toExponential(2)} of lr*steps`);
    expect(worst).toBeLessThan(0.02);
  });
});
