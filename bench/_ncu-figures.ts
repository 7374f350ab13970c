/**
 * One kernel's figures from ncu's raw page (`--set full`): the metrics picked by name, the
 * tensor pipes' busy share, local-memory (spill) traffic and the warp stall reasons, launches of
 * the same kernel averaged. Used by bench/attention-kernels.ts.
 */
import { type NcuRawLaunch, rawNumber } from './_ncu.js';

/** The metrics this script picks by name (ncu's names; null where ncu did not collect one). */
export const PICKS = {
  us: 'gpu__time_duration.sum',
  sm_pct: 'sm__throughput.avg.pct_of_peak_sustained_elapsed',
  issue_pct: 'smsp__issue_active.avg.pct_of_peak_sustained_active',
  l1_pct: 'l1tex__throughput.avg.pct_of_peak_sustained_active',
  smem_pct: 'l1tex__data_pipe_lsu_wavefronts_mem_shared.sum.pct_of_peak_sustained_elapsed',
  smem_bank_conflicts: 'l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum',
  l2_pct: 'lts__throughput.avg.pct_of_peak_sustained_elapsed',
  dram_pct: 'dram__throughput.avg.pct_of_peak_sustained_elapsed',
  regs: 'launch__registers_per_thread',
  occupancy_pct: 'sm__warps_active.avg.pct_of_peak_sustained_active',
} as const;
const TENSOR = /^sm__pipe_tensor_op_(gmma|hmma)_cycles_active\.avg\.pct_of_peak_sustained_active$/;
const LOCAL = /^l1tex__t_bytes_pipe_lsu_mem_local_op_(ld|st)\.sum$/;
const STALL = /^smsp__average_warps_issue_stalled_([a-z0-9_]+)_per_issue_active\.ratio$/;
export const RAW_OF_NOTE = /tensor|gmma|hmma|stall|mem_shared|mem_local|spill/;

export interface KernelFigures {
  kernel: string;
  launches: number;
  values: Record<keyof typeof PICKS, number | null>;
  tensorPct: number | null;
  localBytes: number | null;
  stalls: Array<[string, number]>;
}

/** The figures of one kernel: launches of the same kernel averaged. */
export function kernelFigures(kernel: string, launches: NcuRawLaunch[]): KernelFigures {
  const mean = (metric: string) => {
    const v = launches.map((l) => rawNumber(l, metric)).filter((x): x is number => x !== null);
    return v.length > 0 ? v.reduce((a, b) => a + b, 0) / v.length : null;
  };
  const names = [...(launches[0]?.metrics.keys() ?? [])];
  const values = Object.fromEntries(Object.entries(PICKS).map(([key, metric]) => [key, mean(metric)])) as Record<
    keyof typeof PICKS,
    number | null
  >;
  if (values.us !== null) values.us /= 1000; // ns -> us
  const tensor = names.filter((n) => TENSOR.test(n)).map(mean);
  const tensorPct = tensor.some((v) => v !== null) ? Math.max(...tensor.map((v) => v ?? 0)) : null;
  const local = names.filter((n) => LOCAL.test(n)).map(mean);
  const localBytes = local.some((v) => v !== null) ? local.reduce<number>((a, v) => a + (v ?? 0), 0) : null;
  const stalls = names
    .flatMap((n): Array<[string, number]> => {
      const reason = STALL.exec(n)?.[1];
      const v = reason === undefined ? null : mean(n);
      return reason !== undefined && v !== null && v > 0 ? [[reason, v]] : [];
    })
    .sort((a, b) => b[1] - a[1]);
  return { kernel, launches: launches.length, values, tensorPct, localBytes, stalls };
}
