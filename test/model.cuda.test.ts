/**
 * The model's backend option. Everywhere: 'auto' resolves to where a device answers, and asking
 * for 'cuda' where none does is a named error. Where a device answers: a bf16 CUDA model scores a
 * structured batch like the CPU model within bf16 rounding, and trains (one step moves the
 * weights as on the CPU); with deterministic off (atomic dQ) its gradients stay those of the
 * deterministic model within bf16 rounding. The fp32 parity checks are the golden tests (model-golden.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { native } from '../ts/bindings/loader.js';
import { causalBatch } from '../ts/model/batch.js';
import { Model, resolveBackend } from '../ts/model/model.js';
import { tinyQwen3Config } from './fixtures/model/tiny-qwen3.js';

const cuda = native().backends().cuda;
const config = tinyQwen3Config({ vocabSize: 128, bosTokenId: 1, eosTokenId: 2 });

function relNorm(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += ((a[i] as number) - (b[i] as number)) ** 2;
    den += (b[i] as number) ** 2;
  }
  return Math.sqrt(num / den);
}

describe('backend selection', () => {
  it("resolves 'auto' to cuda exactly when a device answers, with the precision default of each", () => {
    expect(resolveBackend({ backend: 'auto' })).toEqual(
      cuda.devices > 0 ? { backend: 'cuda', precision: 'bf16' } : { backend: 'cpu', precision: 'fp32' },
    );
    expect(resolveBackend({})).toEqual({ backend: 'cpu', precision: 'fp32' });
    const m = Model.create(config, { seed: 1, backend: 'cpu' });
    expect([m.backend, m.precision]).toEqual(['cpu', 'fp32']);
  });

  it('keeps the deterministic switch (default true) and names a value that is not a boolean', async () => {
    expect(Model.create(config, { seed: 1 }).deterministic).toBe(true);
    const m = Model.create(config, { seed: 1, deterministic: false });
    expect(m.deterministic).toBe(false);
    expect(() => Model.create(config, { deterministic: 1 as never })).toThrow(/options\.deterministic must be a boolean/);
    expect(() => Model.create(config, { attentionKernels: 'tpu' as never })).toThrow(
      /options\.attentionKernels must be 'mma' \| 'wgmma' \| 'wgmma-64' \| 'wgmma-cp' \| 'wgmma-k128' \(got 'tpu'\)/,
    );
    // The CPU backward is deterministic whatever the switch says.
    const batch = causalBatch([Array.from({ length: 41 }, (_, i) => (i * 3 + 1) % 128)]);
    const dlogprob = new Float32Array(batch.ids.length).fill(-1 / batch.ids.length);
    const grads: Float32Array[] = [];
    for (let run = 0; run < 2; run++) {
      m.zeroGrad();
      await m.forward(batch);
      await m.backward(dlogprob);
      grads.push(m.getGrad('model.layers.0.self_attn.q_proj.weight'));
    }
    expect(grads[1]).toEqual(grads[0]);
  });

  it('refuses bf16 on the cpu backend with a message saying what to do', () => {
    expect(() => Model.create(config, { backend: 'cpu', precision: 'bf16' })).toThrow(/fp32 only.*backend 'cuda'/);
  });

  it.skipIf(cuda.devices > 0)(`names why 'cuda' is unavailable here (${cuda.reason ?? 'a device answers'})`, () => {
    expect(() => Model.create(config, { backend: 'cuda' })).toThrow(cuda.compiled ? /no CUDA device answers/ : /not compiled/);
  });
});

describe.skipIf(cuda.devices === 0)(`the model on CUDA (${cuda.devices > 0 ? cuda.deviceName : `skipped: ${cuda.reason}`})`, () => {
  it('bf16 logprobs and one training step agree with the CPU model', async () => {
    const cpu = Model.create(config, { seed: 5, backend: 'cpu' });
    const gpu = Model.create(config, { seed: 5, backend: 'cuda', precision: 'bf16' });
    expect([gpu.backend, gpu.precision]).toEqual(['cuda', 'bf16']);
    const seqs = [Array.from({ length: 97 }, (_, i) => (i * 7 + 3) % 128), Array.from({ length: 33 }, (_, i) => (i * 5 + 1) % 128)];
    const batch = causalBatch(seqs);
    const a = await cpu.forward(batch);
    const b = await gpu.forward(batch);
    expect(relNorm(b.logprob, a.logprob)).toBeLessThan(2e-2);
    const dlogprob = new Float32Array(batch.ids.length).fill(-1 / batch.ids.length);
    for (const m of [cpu, gpu]) {
      m.zeroGrad();
      await m.backward(dlogprob);
      m.step({ lr: 1e-3, clipNorm: 1 });
    }
    for (const name of cpu.paramNames()) expect(relNorm(gpu.getParam(name), cpu.getParam(name)), name).toBeLessThan(2e-2);
  });

  it('deterministic: false (attention dQ summed with atomics) gives the deterministic gradients within bf16 rounding', async () => {
    // Head dim 64: the tensor-core backward, where the atomic dQ lives (16 runs the SIMT one).
    const wide = tinyQwen3Config({ vocabSize: 128, bosTokenId: 1, eosTokenId: 2, headDim: 64 });
    const det = Model.create(wide, { seed: 6, backend: 'cuda', precision: 'bf16' });
    const fast = Model.create(wide, { seed: 6, backend: 'cuda', precision: 'bf16', deterministic: false });
    expect([det.deterministic, fast.deterministic]).toEqual([true, false]);
    // Two sequences of odd lengths in one pack: short last tiles, more than one key tile.
    const seqs = [Array.from({ length: 161 }, (_, i) => (i * 11 + 2) % 128), Array.from({ length: 70 }, (_, i) => (i * 5 + 1) % 128)];
    const batch = causalBatch(seqs);
    const dlogprob = new Float32Array(batch.ids.length).fill(-1 / batch.ids.length);
    for (const m of [det, fast]) {
      m.zeroGrad();
      await m.forward(batch);
      await m.backward(dlogprob);
    }
    for (const name of det.paramNames()) expect(relNorm(fast.getGrad(name), det.getGrad(name)), name).toBeLessThan(1e-2);
  });

  it("attentionKernels: 'wgmma' (the default: Hopper's warpgroup MMA where it runs, else the mma kernels) scores and trains like 'mma' within bf16 rounding", async () => {
    const wide = tinyQwen3Config({ vocabSize: 128, bosTokenId: 1, eosTokenId: 2, headDim: 64 });
    const mma = Model.create(wide, { seed: 7, backend: 'cuda', precision: 'bf16', attentionKernels: 'mma' });
    const wg = Model.create(wide, { seed: 7, backend: 'cuda', precision: 'bf16' });
    const seqs = [Array.from({ length: 161 }, (_, i) => (i * 11 + 2) % 128), Array.from({ length: 70 }, (_, i) => (i * 5 + 1) % 128)];
    const batch = causalBatch(seqs);
    const a = await mma.forward(batch);
    const b = await wg.forward(batch);
    expect(relNorm(b.logprob, a.logprob)).toBeLessThan(2e-3);
    const dlogprob = new Float32Array(batch.ids.length).fill(-1 / batch.ids.length);
    for (const m of [mma, wg]) {
      m.zeroGrad();
      await m.backward(dlogprob);
    }
    for (const name of mma.paramNames()) expect(relNorm(wg.getGrad(name), mma.getGrad(name)), name).toBeLessThan(1e-2);
  });

  it("attentionKernels: 'wgmma-k128' (the two-warpgroup backward kernels at head dim 128) trains like 'wgmma'", async () => {
    const d128 = tinyQwen3Config({ vocabSize: 128, bosTokenId: 1, eosTokenId: 2, headDim: 128 });
    const wg = Model.create(d128, { seed: 9, backend: 'cuda', precision: 'bf16' });
    const k128 = Model.create(d128, { seed: 9, backend: 'cuda', precision: 'bf16', attentionKernels: 'wgmma-k128' });
    const seqs = [Array.from({ length: 200 }, (_, i) => (i * 7 + 3) % 128), Array.from({ length: 65 }, (_, i) => (i * 3 + 1) % 128)];
    const batch = causalBatch(seqs);
    const dlogprob = new Float32Array(batch.ids.length).fill(-1 / batch.ids.length);
    for (const m of [wg, k128]) {
      await m.forward(batch);
      m.zeroGrad();
      await m.backward(dlogprob);
    }
    // dK and dV are the one-warpgroup kernels' bits; dQ takes Q from registers, so gradients are
    // held to fp32-rounding agreement rather than to bits.
    for (const name of wg.paramNames()) expect(relNorm(k128.getGrad(name), wg.getGrad(name)), name).toBeLessThan(1e-3);
  });

  it("attentionKernels: 'wgmma' (128 keys a step) trains like 'wgmma-64', bit for bit run to run", async () => {
    const d128 = tinyQwen3Config({ vocabSize: 128, bosTokenId: 1, eosTokenId: 2, headDim: 128 });
    // 600 tokens: odd counts of 128-key steps per row, the rings wrapping.
    const seqs = [Array.from({ length: 600 }, (_, i) => (i * 5 + 2) % 128), Array.from({ length: 97 }, (_, i) => (i * 3 + 1) % 128)];
    const batch = causalBatch(seqs);
    const dlogprob = new Float32Array(batch.ids.length).fill(-1 / batch.ids.length);
    const runs = [];
    for (const attentionKernels of ['wgmma-64', 'wgmma', 'wgmma'] as const) {
      const m = Model.create(d128, { seed: 9, backend: 'cuda', precision: 'bf16', attentionKernels });
      const logprob = (await m.forward(batch)).logprob;
      m.zeroGrad();
      await m.backward(dlogprob);
      runs.push({ m, logprob });
    }
    const [w64, w128, again] = runs as [(typeof runs)[0], (typeof runs)[0], (typeof runs)[0]];
    // Other sums (two key tiles a rescale) and roundings of P: close, not equal.
    expect(relNorm(w128.logprob, w64.logprob)).toBeLessThan(1e-2);
    for (const name of w64.m.paramNames()) expect(relNorm(w128.m.getGrad(name), w64.m.getGrad(name)), name).toBeLessThan(3e-2);
    // Deterministic: the same bits on a second model.
    expect(again.logprob).toEqual(w128.logprob);
    for (const name of w64.m.paramNames()) expect(again.m.getGrad(name), name).toEqual(w128.m.getGrad(name));
  });

  it("attentionKernels: 'wgmma-64' (warp-specialised, tensor-map copies) gives 'wgmma-cp''s bits", async () => {
    const d128 = tinyQwen3Config({ vocabSize: 128, bosTokenId: 1, eosTokenId: 2, headDim: 128 });
    const wg = Model.create(d128, { seed: 9, backend: 'cuda', precision: 'bf16', attentionKernels: 'wgmma-cp' });
    const ws = Model.create(d128, { seed: 9, backend: 'cuda', precision: 'bf16', attentionKernels: 'wgmma-64' });
    // 600 tokens: rows of 10 key tiles, so that the forward's and the dQ kernel's rings wrap.
    const seqs = [Array.from({ length: 600 }, (_, i) => (i * 7 + 3) % 128), Array.from({ length: 65 }, (_, i) => (i * 3 + 1) % 128)];
    const batch = causalBatch(seqs);
    const dlogprob = new Float32Array(batch.ids.length).fill(-1 / batch.ids.length);
    const logprobs: Float32Array[] = [];
    for (const m of [wg, ws]) {
      logprobs.push((await m.forward(batch)).logprob);
      m.zeroGrad();
      await m.backward(dlogprob);
    }
    // The same MMAs in the same order (variant 1's forward; the one-warpgroup dQ and dK/dV
    // stages): bit for bit.
    expect(logprobs[1]).toEqual(logprobs[0]);
    for (const name of wg.paramNames()) expect(ws.getGrad(name), name).toEqual(wg.getGrad(name));
  });
});
