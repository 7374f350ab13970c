#!/usr/bin/env node
// The end of a scripts/gpu-check.sh run, read for a decision: which tests failed (C++, memcheck,
// vitest), and the decode options other than the default (candidateKernels, attentionMerge,
// tensorCoreLinears: false, the decode call waiting for its step, the worker-thread decode,
// stepKernel) beside the default ones in
// the decode, engine and decode-kernels benchmarks, the decode step's timeline (launch gaps,
// overlap, the ops with the most time of their own), and the deterministic attention backward
// beside the atomic-dQ one (attention and train-step benchmarks). A variant is
// worth making the default when every test passed and its figures beat the default's; this
// prints the figures and those two facts, not the decision.
//
//   node scripts/gpu-verdict.mjs OUT_DIR
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The last JSON line of a benchmark log, or null. */
function lastJson(text) {
  const lines = (text ?? '').split('\n').filter((l) => l.startsWith('{'));
  if (lines.length === 0) return null;
  try {
    return JSON.parse(lines[lines.length - 1]);
  } catch {
    return null;
  }
}

/** Failed test names of a C++ test log ("[ FAIL ] name (...)"), and its summary line. */
function cppFailures(text) {
  const failed = [...(text ?? '').matchAll(/^\[ FAIL \] (\S+)/gm)].map((m) => m[1]);
  const summary = (text ?? '').match(/^\d+ passed, \d+ failed, \d+ skipped$/m)?.[0] ?? null;
  return { failed, summary };
}

/** vitest's failed files and its "Tests" line. */
function vitestFailures(text) {
  const esc = String.fromCharCode(27); // colour codes: ESC [ ... m
  const clean = (text ?? '').replace(new RegExp(`${esc}\\[[0-9;]*m`, 'g'), '');
  const failed = [...clean.matchAll(/^\s*FAIL\s+(\S+.*)$/gm)].map((m) => m[1].trim());
  const summary = clean.match(/^\s*Tests\s+(.*)$/m)?.[1]?.trim() ?? null;
  return { failed: [...new Set(failed)], summary };
}

// The kernel variants the benchmarks print, by the suffix of their JSON keys.
const VARIANTS = [
  ['default', ''],
  ['candidate', '_candidate'],
  ['no candidate launches', '_no_candidate'],
  ['attention split: 33 items', '_attn_items_33'],
  ['attention split: 22 items', '_attn_items_22'],
  ['attention split: 17 items', '_attn_items_17'],
  ['attention split: 8 items', '_attn_items_8'],
  ['attention split: 4 items', '_attn_items_4'],
  ['serial merge', '_serial'],
  ['separate q/k norm + RoPE + KV write kernel', '_separate_qk_write'],
  ['attend kernel prefetching its K/V', '_attn_prefetch'],
  ['attend kernel prefetching its K/V, candidate launches throughout', '_attn_prefetch_candidate'],
  ['CUDA-core linears', '_cuda_cores'],
  ['decode call waits for its step (no overlap)', '_no_overlap'],
  ['decode on a worker thread', '_worker_decode'],
  ['steps read as log-probabilities (scripted chooser)', '_read_logprobs'],
  ['one-kernel step', '_step_kernel'],
  ['one-kernel step, no stream', '_step_kernel_no_stream'],
  ['one-kernel step, no prefetch', '_step_kernel_no_prefetch'],
  ['one-kernel step, merge phase unfolded', '_step_kernel_unfolded'],
  ['one-kernel step, barrier after q|k|v', '_step_kernel_no_head_flags'],
  ['one-kernel step, ring of 4 slots', '_step_kernel_ring4'],
  ['generic', '_generic'],
];

const fmt = (v) => (v === undefined || v === null ? '-' : String(v));

/**
 * The verdict text for a gpu-check output, given its logs by file name (e.g. 'cpp-tests.log').
 * @param {Record<string, string>} logs
 */
export function verdict(logs) {
  const out = [];
  for (const name of ['cpp-tests', 'cpp-tests-wgmma', 'cpp-tests-step-kernel', 'cpp-tests-memcheck']) {
    if (!(`${name}.log` in logs)) continue;
    const { failed, summary } = cppFailures(logs[`${name}.log`]);
    out.push(`${name}: ${summary ?? 'no summary line (crashed or cut off?)'}`);
    for (const f of failed) out.push(`  FAILED ${f}`);
  }
  if ('vitest-cuda.log' in logs) {
    const { failed, summary } = vitestFailures(logs['vitest-cuda.log']);
    out.push(`vitest-cuda: ${summary ?? 'no summary line'}`);
    for (const f of failed) out.push(`  FAILED ${f}`);
  }
  const decode = lastJson(logs['bench-decode.log']);
  if (decode && !decode.skipped) {
    out.push('decode (tok/s at batch 1, 8-vs-1 step ratio, device ms a step at 1 and 8):');
    for (const [label, sfx] of VARIANTS) {
      const tok = decode[`tok_s_b1${sfx}`];
      if (tok === undefined) continue;
      const vsDefault = sfx && tok && decode.tok_s_b1 ? ` (${(tok / decode.tok_s_b1).toFixed(3)}x default)` : '';
      out.push(
        `  ${label}: ${fmt(tok)} tok/s${vsDefault}, ratio_8_vs_1 ${fmt(decode[`ratio_8_vs_1${sfx}`])}, ` +
          `device_ms ${fmt(decode[`device_ms_b1${sfx}`])} / ${fmt(decode[`device_ms_8${sfx}`])}` +
          (decode[`kernel_steps_b1${sfx}`] === undefined
            ? ''
            : `, one-kernel steps ${fmt(decode[`kernel_steps_b1${sfx}`])} / ${fmt(decode[`kernel_steps_8${sfx}`])}, ` +
              `fraction_of_hbm_bound_b1 ${fmt(decode[`fraction_of_hbm_bound_b1${sfx}`])}`),
      );
    }
    out.push(
      `  fraction_of_hbm_bound_b1 ${fmt(decode.fraction_of_hbm_bound_b1)}, graphs vs eager ${fmt(decode.tok_s_b1)} vs ${fmt(decode.tok_s_b1_no_graphs)} tok/s`,
    );
    if (decode.prefill_ms_1k !== undefined)
      out.push(
        `  1k prefill ms, fused chunk attention / paged cascade / paged flat: one call ${fmt(decode.prefill_ms_1k)} / ` +
          `${fmt(decode.prefill_ms_1k_paged)} / ${fmt(decode.prefill_ms_1k_paged_flat)}, chunks of 256 ` +
          `${fmt(decode.prefill_ms_1k_chunks_256)} / ${fmt(decode.prefill_ms_1k_chunks_256_paged)} / ${fmt(decode.prefill_ms_1k_chunks_256_paged_flat)}`,
      );
    const timed = Object.keys(decode)
      .filter((k) => k.startsWith('kernel_phase_ms_b1_'))
      .map((k) => k.slice('kernel_phase_ms_b1_'.length));
    const atOneAndEight = (names) =>
      names.map((ph) => `${ph} ${fmt(decode[`kernel_phase_ms_b1_${ph}`])} / ${fmt(decode[`kernel_phase_ms_8_${ph}`])}`).join(', ');
    const phases = timed.filter((ph) => !ph.startsWith('cta_'));
    const ctas = timed.filter((ph) => ph.startsWith('cta_'));
    if (phases.length > 0) out.push(`  one-kernel step phases (ms a step at 1 / 8): ${atOneAndEight(phases)}`);
    if (ctas.length > 0) out.push(`  one-kernel step, where a CTA's time went (ms a step at 1 / 8, per CTA): ${atOneAndEight(ctas)}`);
  }
  const engine = lastJson(logs['bench-engine.log']);
  if (engine && !engine.skipped) {
    out.push('engine (parallel tok/s, speedup parallel vs AR):');
    for (const [label, sfx] of VARIANTS) {
      if (engine[`tps_parallel${sfx}`] === undefined) continue;
      out.push(`  ${label}: ${fmt(engine[`tps_parallel${sfx}`])} tok/s, speedup ${fmt(engine[`speedup_parallel_vs_ar${sfx}`])}`);
    }
  }
  for (const [label, file] of [
    ['default', 'bench-decode-kernels.log'],
    ['one-kernel step', 'bench-decode-kernels-step-kernel.log'],
    ['candidate', 'bench-decode-kernels-candidate.log'],
    ['CUDA-core linears', 'bench-decode-kernels-cuda-cores.log'],
  ]) {
    const k = lastJson(logs[file]);
    if (!k || k.skipped) continue;
    out.push(
      `kernels (${label}): ${fmt(k.kernel_us_per_step_b1)} / ${fmt(k.kernel_us_per_step_b8)} us a step at 1 / 8, ` +
        `${fmt(k.launches_per_step_b1)} launches, DRAM ${fmt(k.dram_gbps_b1)} GB/s at 1`,
    );
  }
  const timeline = lastJson(logs['bench-decode-timeline.log']);
  if (timeline?.skipped) out.push(`timeline: skipped (${timeline.reason ?? 'no reason given'})`);
  else if (timeline) {
    for (const [tag, label] of [
      ['b1', 'batch 1'],
      ['8', '8 branches'],
    ]) {
      if (timeline[`graph_us_${tag}`] === undefined) continue;
      const prefix = `own_us_${tag}_`;
      const top = Object.entries(timeline)
        .filter(([k, v]) => k.startsWith(prefix) && typeof v === 'number')
        .sort((x, y) => y[1] - x[1])
        .slice(0, 4)
        .map(([k, v]) => `${k.slice(prefix.length)} ${v}`);
      out.push(
        `timeline (${label}, us a step): replay ${fmt(timeline[`graph_us_${tag}`])} (idle ${fmt(timeline[`graph_idle_us_${tag}`])}, ` +
          `early ${fmt(timeline[`graph_early_us_${tag}`])}, ${fmt(timeline[`launches_${tag}`])} launches), after it ` +
          `${fmt(timeline[`after_graph_us_${tag}`])}, period ${fmt(timeline[`period_us_${tag}`])} (device idle ` +
          `${fmt(timeline[`device_idle_us_${tag}`])}); device ms traced / untraced ${fmt(timeline[`device_ms_${tag}_traced`])} / ` +
          `${fmt(timeline[`device_ms_${tag}_untraced`])}; most own time: ${top.join(', ') || '-'}`,
      );
    }
  }
  const attention = lastJson(logs['bench-attention.log']);
  if (attention && attention.available !== false) {
    out.push('attention, the default kernels (vs FlexAttention: fwd, fwd+bwd deterministic, fwd+bwd atomic dQ; atomic vs deterministic):');
    for (const key of ['4k', '8k', '32k']) {
      if (attention[`fwd_ms_${key}`] === undefined) continue;
      out.push(
        `  ${key} (${attention[`default_kernels_${key}`] ?? '?'}): ${fmt(attention[`ratio_vs_flex_fwd_${key}`])}, ` +
          `${fmt(attention[`ratio_vs_flex_fwdbwd_${key}`])}, ` +
          `${fmt(attention[`ratio_vs_flex_fwdbwd_atomic_dq_${key}`])}; fwd+bwd ${fmt(attention[`fwdbwd_ms_${key}`])} vs ` +
          `${fmt(attention[`fwdbwd_ms_atomic_dq_${key}`])} ms (${fmt(attention[`speedup_atomic_dq_fwdbwd_${key}`])}x), ` +
          `dq rel err ${fmt(attention[`atomic_dq_rel_err_${key}`])}; dense causal ` +
          `${fmt(attention[`dense_causal_ratio_vs_sdpa_flash_${key}`])}x SDPA flash, sparsity efficiency ` +
          `${fmt(attention[`sparsity_efficiency_${key}`])}`,
      );
    }
  }
  if (attention && attention.available !== false && attention.wgmma_available !== undefined) {
    out.push(`attention on wgmma (available: ${attention.wgmma_available}; vs FlexAttention and vs mma.sync; worst sampled-row rel err):`);
    const tags = [
      'wgmma1',
      'wgmma2',
      'wgmma3',
      'wgmma4',
      'wgmma5',
      'wgmma6',
      'wgmma7',
      'wgmma8',
      'wgmma9',
      'wgmma10',
      'wgmma11',
      'wgmma10_atomic_dq',
      'wgmma1_k128',
      'wgmma1_k128_atomic_dq',
    ];
    for (const key of ['4k', '8k', '32k']) {
      // The fastest trial of each pass at this length (the deterministic ones apart for fwd+bwd).
      const best = (pass, pick) => {
        const ranked = tags
          .filter(pick)
          .map((tag) => [tag, attention[`${pass}_ms_${tag}_${key}`]])
          .filter(([, ms]) => typeof ms === 'number')
          .sort((x, y) => x[1] - y[1]);
        if (ranked.length === 0) return '-';
        const [tag, ms] = ranked[0];
        return `${tag} ${ms} ms (${fmt(attention[`ratio_vs_flex_${pass}_${tag}_${key}`])} vs flex)`;
      };
      if (tags.some((tag) => attention[`fwd_ms_${tag}_${key}`] !== undefined))
        out.push(
          `  ${key} fastest: fwd ${best('fwd', () => true)}; fwd+bwd deterministic ${best('fwdbwd', (t) => !t.includes('atomic'))}; ` +
            `fwd+bwd atomic dQ ${best('fwdbwd', (t) => t.includes('atomic'))}`,
        );
      for (const tag of tags) {
        if (attention[`fwd_ms_${tag}_${key}`] === undefined) continue;
        const errs = ['out', 'dq', 'dk', 'dv'].map((n) => attention[`${tag}_rel_err_${n}_${key}`]).filter((e) => typeof e === 'number');
        out.push(
          `  ${key} ${tag}: fwd ${fmt(attention[`ratio_vs_flex_fwd_${tag}_${key}`])} vs flex (${fmt(attention[`speedup_${tag}_fwd_${key}`])}x mma.sync), ` +
            `fwd+bwd ${fmt(attention[`ratio_vs_flex_fwdbwd_${tag}_${key}`])} vs flex (${fmt(attention[`speedup_${tag}_fwdbwd_${key}`])}x), ` +
            `rel err ${errs.length > 0 ? Math.max(...errs) : '-'}`,
        );
      }
    }
  }
  const train = lastJson(logs['bench-train-step.log']);
  if (train && train.available !== false) {
    out.push(
      `train step: ${fmt(train.tokps_ours_0p6b)} tok/s default (${fmt(train.ratio_vs_torch_0p6b)}x torch), ` +
        `${fmt(train.tokps_ours_atomic_dq_0p6b)} tok/s atomic dQ (${fmt(train.ratio_vs_torch_atomic_dq_0p6b)}x torch), ` +
        `${fmt(train.tokps_ours_mma_0p6b)} tok/s mma.sync attention (${fmt(train.ratio_vs_torch_mma_0p6b)}x torch), ` +
        `${fmt(train.tokps_ours_k128_0p6b)} tok/s two-warpgroup backward (${fmt(train.speedup_k128_vs_default)}x default), ` +
        `${fmt(train.tokps_ours_64_0p6b)} tok/s forward over 64 keys a step (default ${fmt(train.speedup_default_vs_64)}x it)`,
    );
  }
  return out.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const dir = process.argv[2];
  if (!dir || !existsSync(dir)) {
    console.error('usage: node scripts/gpu-verdict.mjs OUT_DIR (a scripts/gpu-check.sh output)');
    process.exit(2);
  }
  const names = [
    'cpp-tests.log',
    'cpp-tests-wgmma.log',
    'cpp-tests-step-kernel.log',
    'cpp-tests-memcheck.log',
    'vitest-cuda.log',
    'bench-decode.log',
    'bench-engine.log',
    'bench-decode-kernels.log',
    'bench-decode-kernels-step-kernel.log',
    'bench-decode-kernels-candidate.log',
    'bench-decode-kernels-cuda-cores.log',
    'bench-decode-timeline.log',
    'bench-attention.log',
    'bench-train-step.log',
  ];
  const logs = {};
  for (const n of names) if (existsSync(join(dir, n))) logs[n] = readFileSync(join(dir, n), 'utf8');
  console.log(verdict(logs));
}
