// The Nsight Compute CSV readers of the kernel benchmarks (bench/_ncu.ts, bench/_ncu-figures.ts)
// on text laid out as ncu prints it: no GPU needed.
import { describe, expect, it } from 'vitest';
import {
  baseValue,
  csvCells,
  hottestInstructions,
  parseDetailsCsv,
  parseRawCsv,
  rawNumber,
  runUnderNcu,
  shortName,
} from '../bench/_ncu.js';
import { kernelFigures } from '../bench/_ncu-figures.js';

const q = (cells: string[]) => cells.map((c) => `"${c.replace(/"/g, '""')}"`).join(',');

describe('ncu CSV', () => {
  it('splits quoted cells, keeping commas and doubled quotes inside a cell and empty cells', () => {
    expect(csvCells('"a","b,c","","say ""hi""","1,234.5"')).toEqual(['a', 'b,c', '', 'say "hi"', '1,234.5']);
    expect(csvCells('"only"')).toEqual(['only']);
  });

  it('shortens kernel names to the template name and arguments', () => {
    expect(shortName('void npr::(anonymous namespace)::dkdv_wgmma_kernel<128, true>(npr::attn_bwd::PlanView, float *)')).toBe(
      'dkdv_wgmma_kernel<128,true>',
    );
    expect(shortName('stats_kernel')).toBe('stats_kernel');
  });

  it('reads base units and scaled ones', () => {
    expect(baseValue('1,500', 'nsecond')).toBe(1500);
    expect(baseValue('2.5', 'usecond')).toBe(2500);
    expect(baseValue('3', 'Mbyte')).toBe(3e6);
  });

  it('reads the details page: one row per launch and metric, notes skipped', () => {
    const text = [
      '==PROF== Connected to process 123',
      q(['ID', 'Process ID', 'Kernel Name', 'Section Name', 'Metric Name', 'Metric Unit', 'Metric Value']),
      q(['0', '123', 'void k<1>(int)', 'Command line profiler metrics', 'gpu__time_duration.sum', 'nsecond', '2,048']),
      q(['0', '123', 'void k<1>(int)', 'Command line profiler metrics', 'dram__bytes_read.sum', 'byte', '4096']),
      '==PROF== Disconnected',
    ].join('\n');
    expect(parseDetailsCsv(text)).toEqual([
      { kernel: 'void k<1>(int)', metric: 'gpu__time_duration.sum', unit: 'nsecond', value: '2,048' },
      { kernel: 'void k<1>(int)', metric: 'dram__bytes_read.sum', unit: 'byte', value: '4096' },
    ]);
    expect(parseDetailsCsv('no csv here')).toEqual([]);
  });

  it('reads the raw page: a header of metric names, a row of units, a row per launch', () => {
    const header = [
      'ID',
      'Kernel Name',
      'gpu__time_duration.sum',
      'sm__throughput.avg.pct_of_peak_sustained_elapsed',
      'sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active',
      'sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active',
      'smsp__average_warps_issue_stalled_barrier_per_issue_active.ratio',
      'smsp__average_warps_issue_stalled_long_scoreboard_per_issue_active.ratio',
      'smsp__average_warps_issue_stalled_wait_per_issue_active.ratio',
      'l1tex__t_bytes_pipe_lsu_mem_local_op_ld.sum',
      'l1tex__t_bytes_pipe_lsu_mem_local_op_st.sum',
      'launch__registers_per_thread',
    ];
    const units = ['', '', 'nsecond', '%', '%', '%', 'ratio', 'ratio', 'ratio', 'byte', 'byte', 'register/thread'];
    const launch = (id: string, ns: string, gmma: string, barrier: string) =>
      q([id, 'void npr::dq_wgmma_kernel<128>(int)', ns, '40.5', gmma, '0', barrier, '0.75', '0', '512', '256', '168']);
    const text = [q(header), q(units), launch('0', '3,000', '61.5', '1.25'), launch('1', '5000', '58.5', '1.75')].join('\n');
    const launches = parseRawCsv(text);
    expect(launches).toHaveLength(2);
    expect(launches[0]?.kernel).toBe('void npr::dq_wgmma_kernel<128>(int)');
    expect(launches[0]?.metrics.get('gpu__time_duration.sum')).toEqual({ unit: 'nsecond', value: '3,000' });
    expect(rawNumber(launches[0] as (typeof launches)[0], 'gpu__time_duration.sum')).toBe(3000);
    expect(rawNumber(launches[0] as (typeof launches)[0], 'no_such_metric')).toBeNull();

    const k = kernelFigures('dq_wgmma_kernel<128>', launches);
    expect(k.launches).toBe(2);
    expect(k.values.us).toBe(4); // (3000 + 5000) / 2 ns
    expect(k.values.sm_pct).toBe(40.5);
    expect(k.values.regs).toBe(168);
    expect(k.values.l2_pct).toBeNull(); // not collected: null, not 0
    expect(k.tensorPct).toBe(60); // the busier tensor pipe (gmma), averaged over launches
    expect(k.localBytes).toBe(768);
    expect(k.stalls).toEqual([
      ['barrier', 1.5],
      ['long_scoreboard', 0.75],
    ]); // zero stalls dropped, largest first
  });

  it('reads a raw page without a units row, and gives nothing for a page without kernel names', () => {
    const text = [q(['ID', 'Kernel Name', 'gpu__time_duration.sum']), q(['0', 'k', '10'])].join('\n');
    const launches = parseRawCsv(text);
    expect(launches).toHaveLength(1);
    expect(launches[0]?.metrics.get('gpu__time_duration.sum')).toEqual({ unit: '', value: '10' });
    expect(parseRawCsv(q(['ID', 'Name']))).toEqual([]);
  });

  it('runs the script again under ncu: range-only profiling, clocks alone, CSV in base units, then node, the script and its arguments', () => {
    // echo stands in for ncu: it prints the command line ncu would get.
    const r = runUnderNcu('echo', ['--set', 'full'], ['--workload', 'wgmma']);
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(
      [
        '--profile-from-start off --target-processes all --clock-control none --set full --csv --print-units base',
        process.execPath,
        process.argv[1],
        '--workload wgmma',
      ].join(' '),
    );
  });

  it('finds the instructions with the most stall samples on the source page, header found by its cells', () => {
    const header = q(['Address', 'Source', 'Warp Stall Sampling (All Samples)', 'Warp Stall Sampling (Not-issued Samples)']);
    const text = [
      '==PROF== Disconnected',
      '"Kernel Name","attn_fwd_wgmma_ws128"',
      header,
      q(['0x00', 'MOV R1, c[0x0][0x28]', '0', '0']),
      q(['0x10', 'HGMMA.64x128x16.F32.BF16 R24, gdesc[UR4], RZ', '1,200', '900']),
      q(['0x20', 'SYNCS.PHASECHK.TRANS64 P0, [UR8], R3', '600', '580']),
      q(['0x30', 'MUFU.EX2 R40, R41', 'n/a', '0']),
      header,
      q(['0x00', 'BAR.SYNC 0x1', '200', '150']),
    ].join('\n');
    const hot = hottestInstructions(text, 2);
    expect(hot).toEqual([
      { address: '0x10', source: 'HGMMA.64x128x16.F32.BF16 R24, gdesc[UR4], RZ', samples: 1200, share: 0.6 },
      { address: '0x20', source: 'SYNCS.PHASECHK.TRANS64 P0, [UR8], R3', samples: 600, share: 0.3 },
    ]);
    expect(hottestInstructions(q(['Address', 'Source', 'Instructions Executed']), 5)).toBeNull();
    expect(hottestInstructions('', 5)).toBeNull();
  });
});
