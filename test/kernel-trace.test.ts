// The kernel trace behind bench/decode-timeline: the CUPTI library's JSON lines as the bench
// reads them (its format selftest, built where CUPTI and a C++ compiler are), the library itself
// compiling, and the split of a step's device time into each record's share, idle and early
// time, against a nanosecond-by-nanosecond reference on random intervals.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildKernelTrace,
  findCupti,
  graphReplays,
  parseTrace,
  shares,
  stepTimeline,
  stepWindows,
  type TraceRecord,
} from '../bench/_kernel-trace.js';
import { shortName } from '../bench/_ncu.js';

const root = join(import.meta.dirname, '..');
const cupti = findCupti();
const dir = mkdtempSync(join(tmpdir(), 'npr-kernel-trace-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const rec = (name: string, start: number, end: number, o: Partial<TraceRecord> = {}): TraceRecord => ({
  k: 'kernel',
  name,
  start,
  end,
  stream: 1,
  corr: 0,
  graph: 0,
  node: 0,
  ...o,
});

describe.skipIf(!cupti)('the CUPTI trace library (needs CUPTI headers and a C++ compiler)', () => {
  it('writes lines the bench reads back: demangled names, escapes, relative and negative stamps, graph nodes, bytes; none for records without stamps', () => {
    const exe = join(dir, 'format_selftest');
    const built = buildKernelTrace(root, cupti as NonNullable<typeof cupti>, 'selftest', exe);
    expect(built).toEqual({ ok: true });
    const r = spawnSync(exe, [], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const t = parseTrace(r.stdout);
    expect(t.error).toBeNull();
    expect(t.records).toHaveLength(4); // not the untimed kernel, the unfinished memcpy or the other kind
    const [k, odd, copy, set] = t.records as [TraceRecord, TraceRecord, TraceRecord, TraceRecord];
    expect(k).toMatchObject({ k: 'kernel', start: 5000, end: 9250, stream: 7, corr: 42, graph: 3, node: 2 ** 40 + 5 });
    expect(k.name).toBe('void npr::(anonymous namespace)::kernel<1>(float*)');
    expect(shortName(k.name)).toBe('kernel<1>');
    expect(odd).toMatchObject({ name: 'odd"name\\with\tescapes', start: -300, end: 100, graph: 0 });
    expect(copy).toMatchObject({ k: 'memcpy', name: 'memcpy', bytes: 4096, start: 10000, end: 11500, graph: 0 });
    expect(set).toMatchObject({ k: 'memset', bytes: 256, corr: 42, graph: 3, node: 9 });
  });

  it('the injection library builds and exports the entry point the CUDA driver calls', () => {
    const lib = join(dir, 'libnpr_kernel_trace.so');
    expect(buildKernelTrace(root, cupti as NonNullable<typeof cupti>, 'inject', lib)).toEqual({ ok: true });
    const nm = spawnSync('nm', ['-D', '--defined-only', lib], { encoding: 'utf8' });
    if (nm.error) return; // no binutils: the build alone was the check
    expect(nm.stdout).toMatch(/ T InitializeInjection$/m);
  });

  it("builds from a standard install's layout, where CUPTI's headers (extras/CUPTI/include) have no cuda.h", () => {
    const found = cupti as NonNullable<typeof cupti>;
    // A toolkit root holding only CUPTI's part, as a standard install or a wheel lays it out.
    const fake = join(dir, 'toolkit', 'extras', 'CUPTI');
    mkdirSync(join(fake, 'include'), { recursive: true });
    mkdirSync(join(fake, 'lib64'));
    for (const f of readdirSync(found.include))
      if (/^(cupti|generated_|cuda_stdint|nvperf|Openacc|Openmp)/.test(f)) symlinkSync(join(found.include, f), join(fake, 'include', f));
    symlinkSync(found.lib, join(fake, 'lib64', 'libcupti.so'));
    const saved = process.env.NPR_CUPTI_ROOT;
    process.env.NPR_CUPTI_ROOT = fake;
    let apart: ReturnType<typeof findCupti>;
    try {
      apart = findCupti();
    } finally {
      if (saved === undefined) delete process.env.NPR_CUPTI_ROOT;
      else process.env.NPR_CUPTI_ROOT = saved;
    }
    expect(apart?.include).toBe(join(fake, 'include'));
    const lib = join(dir, 'libnpr_kernel_trace_apart.so');
    // Without the toolkit's headers the layout fails as it would on such a host...
    const alone = buildKernelTrace(root, { ...(apart as NonNullable<typeof apart>), toolkitInclude: null }, 'inject', lib);
    expect(alone.ok).toBe(false);
    expect(alone.ok ? '' : alone.error).toMatch(/cuda\.h/);
    // ...and findCupti finds them elsewhere.
    expect(apart?.toolkitInclude).not.toBe(join(fake, 'include'));
    expect(buildKernelTrace(root, apart as NonNullable<typeof apart>, 'inject', lib)).toEqual({ ok: true });
  });
});

describe('reading a trace', () => {
  it('refuses a line of an unknown kind by its number, and counts errors and dropped records', () => {
    expect(() => parseTrace('{"k":"kernel","name":"a","start":0,"end":1,"stream":0,"corr":0,"graph":0,"node":0}\n{"k":"nvtx"}')).toThrow(
      /line 2: unknown record kind "nvtx"/,
    );
    expect(() => parseTrace('\n{"k":"memcpy","start":1')).toThrow(/line 2: not a JSON object: \{"k":"memcpy"/);
    const t = parseTrace('{"k":"error","what":"enable kernel activity: no"}\n{"k":"dropped","count":3}\n{"k":"dropped","count":2}\n');
    expect(t).toEqual({ records: [], error: 'enable kernel activity: no', dropped: 5 });
  });

  it('leaves out a record CUPTI never completed (end before start)', () => {
    const t = parseTrace('{"k":"memset","start":50,"end":0,"stream":0,"corr":0,"graph":0,"node":0,"bytes":4}');
    expect(t.records).toEqual([]);
  });
});

describe('shares of device time', () => {
  // Reference: every nanosecond of the span goes to the earliest-started record running in it
  // (ties: the one listed first after sorting by start then end), or to idle.
  function reference(records: TraceRecord[]) {
    const sorted = [...records].sort((a, b) => a.start - b.start || a.end - b.end);
    const own = new Map<TraceRecord, number>();
    let idle = 0;
    const t0 = Math.min(...sorted.map((r) => r.start));
    const t1 = Math.max(...sorted.map((r) => r.end));
    for (let t = t0; t < t1; t++) {
      const r = sorted.find((x) => x.start <= t && t < x.end);
      if (r) own.set(r, (own.get(r) ?? 0) + 1);
      else idle++;
    }
    return { own, idle, span: t1 - t0 };
  }

  it('matches the nanosecond reference on random overlapping and gapped intervals of odd sizes', () => {
    let x = 12345;
    const rand = (n: number) => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return x % n;
    };
    for (let trial = 0; trial < 200; trial++) {
      const n = 1 + rand(13);
      const records: TraceRecord[] = [];
      let t = rand(7);
      for (let i = 0; i < n; i++) {
        t += rand(9) - 2; // sometimes before the last start: out of order on purpose
        const start = Math.max(0, t);
        records.push(rec(`k${i}`, start, start + rand(17)));
      }
      const got = shares(records);
      const want = reference(records);
      expect(got.idle).toBe(want.idle);
      expect(got.span).toBe(want.span);
      for (const s of got.shares) expect(s.own).toBe(want.own.get(s.record) ?? 0);
      expect(got.shares.reduce((a, s) => a + s.own, 0) + got.idle).toBe(got.span);
    }
  });

  it('gives early starts to the later record and gaps to the record after them', () => {
    const a = rec('a', 0, 10);
    const b = rec('b', 8, 20); // a programmatic launch, 2 ns early
    const c = rec('c', 25, 30); // after 5 ns of nothing
    const s = shares([c, a, b]);
    expect(s.shares.map((x) => [x.record.name, x.own, x.gapBefore, x.early])).toEqual([
      ['a', 10, 0, 0],
      ['b', 10, 0, 2],
      ['c', 5, 5, 0],
    ]);
    expect(s).toMatchObject({ idle: 5, span: 30 });
  });
});

describe('decode steps of a trace', () => {
  // Three replays of graph 7 (corr 1, 2, 3), 50 µs apart: two nodes overlapping by 2 µs, a gap
  // of 5 µs, a third node; then the sampler (eager) and the next step's upload. An eager
  // prefill kernel and a replay of another graph come before and are not steps.
  const us = 1000;
  const records: TraceRecord[] = [rec('prefill', -500 * us, -400 * us), rec('other_graph', -300 * us, -290 * us, { graph: 9, corr: 99 })];
  for (let i = 0; i < 3; i++) {
    const t = i * 50 * us;
    const g = { graph: 7, corr: i + 1 };
    records.push(
      rec('void npr::tc_linear_kernel<1, float, 16>(float*)', t, t + 10 * us, { ...g, node: 1 }),
      rec('void npr::attend_new_kernel<128, 0>(float*)', t + 8 * us, t + 20 * us, { ...g, node: 2 }),
      rec('void npr::tc_linear_kernel<1, float, 16>(float*)', t + 25 * us, t + 30 * us, { ...g, node: 3 }),
      rec('void npr::chunk_max_kernel(float*)', t + 32 * us, t + 35 * us, { corr: 100 + i }),
      { ...rec('memcpy', t + 40 * us, t + 41 * us, { corr: 200 + i }), k: 'memcpy', bytes: 64 },
    );
  }

  it('cuts the trace at the replays of the graph replayed most often, the last one left out', () => {
    const w = stepWindows(records);
    expect(w).toHaveLength(2);
    expect(w.map((x) => [x.replay.length, x.after.map((r) => r.name), x.period])).toEqual([
      [3, ['void npr::chunk_max_kernel(float*)', 'memcpy'], 50 * us],
      [3, ['void npr::chunk_max_kernel(float*)', 'memcpy'], 50 * us],
    ]);
    expect(stepWindows(records, 9)).toEqual([]); // one replay of graph 9: no next one
  });

  it('finds a replay by its nodes coming round again, whatever the correlation ids say, and by the ids without nodes', () => {
    const sameCorr = records.map((r) => (r.graph === 7 ? { ...r, corr: 5 } : r));
    const byNodes = graphReplays(sameCorr).get(7) ?? [];
    expect(byNodes.map((g) => g.map((r) => r.node))).toEqual([
      [1, 2, 3],
      [1, 2, 3],
      [1, 2, 3],
    ]);
    const noNodes = records.map((r) => ({ ...r, node: 0 }));
    expect((graphReplays(noNodes).get(7) ?? []).map((g) => g.map((r) => r.corr))).toEqual([
      [1, 1, 1],
      [2, 2, 2],
      [3, 3, 3],
    ]);
    expect(stepWindows(sameCorr).map((w) => w.period)).toEqual([50 * us, 50 * us]);
  });

  it('splits a step into ops, idle and early time that add up', () => {
    const [w] = stepWindows(records);
    const t = stepTimeline(w as NonNullable<typeof w>, shortName);
    expect(t).toMatchObject({ periodUs: 50, graphUs: 30, graphIdleUs: 5, graphEarlyUs: 2, afterUs: 4, launches: 3 });
    expect(t.deviceIdleUs).toBe(50 - 25 - 4);
    expect(Object.fromEntries(t.ops)).toEqual({
      'tc_linear_kernel<1,float,16>': { ownUs: 15, launches: 2, gapUs: 5, earlyUs: 0, after: false },
      'attend_new_kernel<128,0>': { ownUs: 10, launches: 1, gapUs: 0, earlyUs: 2, after: false },
      'after:chunk_max_kernel': { ownUs: 3, launches: 1, gapUs: 2, earlyUs: 0, after: true },
      'after:memcpy': { ownUs: 1, launches: 1, gapUs: 5, earlyUs: 0, after: true },
    });
  });
});
