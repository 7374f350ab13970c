/**
 * scripts/gpu-verdict.mjs reads a gpu-check output: failed tests from the C++ and vitest logs,
 * and the default / candidate / CUDA-core / one-kernel-step figures of the benchmarks' last JSON
 * lines.
 */
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script without type declarations
import { verdict } from '../scripts/gpu-verdict.mjs';

const cpp = [
  '[ RUN  ] cuda_skinny_linear_matches_the_host_oracle',
  '[  OK  ] cuda_skinny_linear_matches_the_host_oracle',
  '[ RUN  ] cuda_skinny_pdl_launches_give_the_same_bits',
  '[ FAIL ] cuda_skinny_pdl_launches_give_the_same_bits (2 failed checks)',
  '111 passed, 1 failed, 0 skipped',
].join('\n');
const vitest =
  '\x1b[31m FAIL \x1b[39m test/engine.cuda.test.ts > engine on a CUDA model > candidate\n      Tests  1 failed | 20 passed (21)\n';
const decode = `table\n{"bench":"decode-cuda","tok_s_b1":400,"tok_s_b1_no_graphs":380,"ratio_8_vs_1":1.4,"device_ms_b1":2.1,"device_ms_8":2.9,"fraction_of_hbm_bound_b1":0.125,"tok_s_b1_candidate":520,"ratio_8_vs_1_candidate":1.3,"tok_s_b1_cuda_cores":410,"ratio_8_vs_1_cuda_cores":1.1,"tok_s_b1_generic":210,"tok_s_b1_step_kernel":900,"ratio_8_vs_1_step_kernel":1.1,"device_ms_b1_step_kernel":0.6,"device_ms_8_step_kernel":0.7,"kernel_steps_b1_step_kernel":43,"kernel_steps_8_step_kernel":43,"fraction_of_hbm_bound_b1_step_kernel":0.3,"kernel_phase_ms_b1_barrier":0.0012,"kernel_phase_ms_8_barrier":0.0013,"kernel_phase_ms_b1_qkv":0.05,"kernel_phase_ms_8_qkv":0.06,"kernel_phase_ms_b1_cta_wait_ring":0.21,"kernel_phase_ms_8_cta_wait_ring":0.23,"kernel_phase_ms_b1_cta_work":0.3,"kernel_phase_ms_8_cta_work":0.35,"prefill_ms_1k":12.5,"prefill_ms_1k_paged":20,"prefill_ms_1k_paged_flat":40,"prefill_ms_1k_chunks_256":13,"prefill_ms_1k_chunks_256_paged":21,"prefill_ms_1k_chunks_256_paged_flat":30,"tok_s_b1_no_overlap":380}`;
const engine =
  '{"bench":"engine","tps_parallel":1300,"speedup_parallel_vs_ar":1.7,"tps_parallel_cuda_cores":1500,"speedup_parallel_vs_ar_cuda_cores":1.8}';
const kernels =
  '{"bench":"decode-kernels","kernel_us_per_step_b1":1900.5,"kernel_us_per_step_b8":2500,"launches_per_step_b1":201,"dram_gbps_b1":1100}';

describe('gpu-verdict', () => {
  it('lists failed tests and sets each variant beside the default', () => {
    const text = verdict({
      'cpp-tests.log': cpp,
      'vitest-cuda.log': vitest,
      'bench-decode.log': decode,
      'bench-engine.log': engine,
      'bench-decode-kernels-cuda-cores.log': kernels,
    });
    expect(text).toContain('cpp-tests: 111 passed, 1 failed, 0 skipped');
    expect(text).toContain('FAILED cuda_skinny_pdl_launches_give_the_same_bits');
    expect(text).not.toContain('FAILED cuda_skinny_linear_matches_the_host_oracle');
    expect(text).toContain('vitest-cuda: 1 failed | 20 passed (21)');
    expect(text).toContain('FAILED test/engine.cuda.test.ts > engine on a CUDA model > candidate');
    expect(text).toContain('candidate: 520 tok/s (1.300x default), ratio_8_vs_1 1.3');
    expect(text).toContain('CUDA-core linears: 410 tok/s (1.025x default), ratio_8_vs_1 1.1');
    expect(text).toContain('CUDA-core linears: 1500 tok/s, speedup 1.8');
    expect(text).toContain(
      'one-kernel step: 900 tok/s (2.250x default), ratio_8_vs_1 1.1, device_ms 0.6 / 0.7, one-kernel steps 43 / 43, fraction_of_hbm_bound_b1 0.3',
    );
    expect(text).not.toContain('CUDA-core linears: 410 tok/s (1.025x default), ratio_8_vs_1 1.1, device_ms - / -, one-kernel');
    expect(text).toContain('one-kernel step phases (ms a step at 1 / 8): barrier 0.0012 / 0.0013, qkv 0.05 / 0.06\n');
    expect(text).toContain(
      "one-kernel step, where a CTA's time went (ms a step at 1 / 8, per CTA): cta_wait_ring 0.21 / 0.23, cta_work 0.3 / 0.35",
    );
    expect(text).toContain('kernels (CUDA-core linears): 1900.5 / 2500 us a step');
    expect(text).toContain(
      '1k prefill ms, fused chunk attention / paged cascade / paged flat: one call 12.5 / 20 / 40, chunks of 256 13 / 21 / 30',
    );
    expect(text).toContain('decode call waits for its step (no overlap): 380 tok/s (0.950x default)');
    expect(text).not.toContain('kernels (default)');
  });

  it('sets the atomic-dQ backward and the wgmma forward beside the defaults', () => {
    const attention =
      '{"bench":"attention-cuda","fwd_ms_4k":1.1,"ratio_vs_flex_fwd_4k":0.99,"ratio_vs_flex_fwdbwd_4k":0.59,"ratio_vs_flex_fwdbwd_atomic_dq_4k":0.75,"fwdbwd_ms_4k":5.2,"fwdbwd_ms_atomic_dq_4k":4.1,"speedup_atomic_dq_fwdbwd_4k":1.268,"atomic_dq_rel_err_4k":0.0004,"default_kernels_4k":"wgmma10","dense_causal_ratio_vs_sdpa_flash_4k":1.1,"sparsity_efficiency_4k":0.97,"wgmma_available":true,"fwd_ms_wgmma1_4k":0.9,"fwd_ms_wgmma2_4k":0.8,"ratio_vs_flex_fwd_wgmma1_4k":1.2,"ratio_vs_flex_fwd_wgmma2_4k":1.35,"speedup_wgmma1_fwd_4k":1.22,"speedup_wgmma2_fwd_4k":1.37,"ratio_vs_flex_fwdbwd_wgmma2_4k":0.8,"speedup_wgmma2_fwdbwd_4k":1.4,"wgmma2_rel_err_out_4k":0.001,"wgmma2_rel_err_dq_4k":0.002,"wgmma2_rel_err_dk_4k":null}';
    const train =
      '{"bench":"train-step-cuda","tokps_ours_0p6b":30000,"ratio_vs_torch_0p6b":1.09,"tokps_ours_atomic_dq_0p6b":32000,"ratio_vs_torch_atomic_dq_0p6b":1.16,"tokps_ours_64_0p6b":28000,"speedup_default_vs_64":1.071}';
    const text = verdict({ 'bench-attention.log': attention, 'bench-train-step.log': train });
    expect(text).toContain(
      '4k (wgmma10): 0.99, 0.59, 0.75; fwd+bwd 5.2 vs 4.1 ms (1.268x), dq rel err 0.0004; dense causal 1.1x SDPA flash, sparsity efficiency 0.97',
    );
    expect(text).not.toContain('32k:');
    expect(text).toContain('attention on wgmma (available: true;');
    expect(text).toContain('4k wgmma2: fwd 1.35 vs flex (1.37x mma.sync), fwd+bwd 0.8 vs flex (1.4x), rel err 0.002');
    expect(text).toContain('4k wgmma1: fwd 1.2 vs flex (1.22x mma.sync), fwd+bwd - vs flex (-x), rel err -');
    expect(text).toContain('4k fastest: fwd wgmma2 0.8 ms (1.35 vs flex); fwd+bwd deterministic -; fwd+bwd atomic dQ -');
    expect(text).toContain(
      'train step: 30000 tok/s default (1.09x torch), 32000 tok/s atomic dQ (1.16x torch), - tok/s mma.sync attention',
    );
    expect(text).toContain('- tok/s two-warpgroup backward (-x default), 28000 tok/s forward over 64 keys a step (default 1.071x it)');
  });

  it("gives the decode step's timeline: the replay's gaps and overlap, tracing's cost and the ops with the most time of their own", () => {
    const timeline =
      'table\n{"bench":"decode-timeline","graph_us_b1":1100.5,"graph_idle_us_b1":150.2,"graph_early_us_b1":40,"launches_b1":175,"after_graph_us_b1":45.1,"period_us_b1":1350,"device_idle_us_b1":354.4,"device_ms_b1_traced":1.2,"device_ms_b1_untraced":1.14,"own_us_b1_tc_linear_kernel_1_float_16":300.1,"own_us_b1_attend_new_kernel_128_0":280,"own_us_b1_after_memcpy":3,"own_us_b1_head":80,"own_us_b1_merge":200,"own_us_b1_x":1,"gap_us_b1_head":2}';
    const text = verdict({ 'bench-decode-timeline.log': timeline });
    expect(text).toBe(
      'timeline (batch 1, us a step): replay 1100.5 (idle 150.2, early 40, 175 launches), after it 45.1, period 1350 (device idle 354.4); ' +
        'device ms traced / untraced 1.2 / 1.14; most own time: tc_linear_kernel_1_float_16 300.1, attend_new_kernel_128_0 280, merge 200, head 80',
    );
    expect(verdict({ 'bench-decode-timeline.log': '{"bench":"decode-timeline","skipped":true,"reason":"CUPTI not found"}' })).toBe(
      'timeline: skipped (CUPTI not found)',
    );
  });

  it('says when a test log has no summary line (a crash or a cut-off run)', () => {
    expect(verdict({ 'cpp-tests.log': '[ RUN  ] x\nSegmentation fault' })).toContain('no summary line');
    expect(verdict({})).toBe('');
  });
});
