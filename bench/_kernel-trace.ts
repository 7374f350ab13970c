/**
 * The kernel trace of a CUDA process, for bench/decode-timeline: builds the CUPTI injection
 * library (tools/kernel-trace/kernel_trace_inject.cpp) against this machine's CUPTI, reads the
 * JSON lines it writes, and cuts them into decode steps: each graph replay, and what else ran
 * on the device until the next replay began (the sampler, the next step's uploads).
 *
 * A step's device time is split without double counting: every instant from a replay's first
 * kernel to its last belongs to the oldest record still running then (with programmatic
 * launches a kernel starts while the one before it runs; until that one ends, the time is that
 * one's work), or to idle when none runs. The parts add up to the replay's span.
 *
 * What it does not do: attribute a kernel's time inside the kernel (waiting at its
 * griddepcontrol.wait vs working): a programmatic kernel's own span begins early, and only its
 * share after the kernel before it ends counts as its time here.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** One device activity of the trace: a kernel, a copy or a memset. Stamps in ns. */
export interface TraceRecord {
  k: 'kernel' | 'memcpy' | 'memset';
  /** Kernels: the demangled name; copies: 'memcpy' / 'memset'. */
  name: string;
  start: number;
  end: number;
  stream: number;
  /** Correlation id of the launching API call: one cudaGraphLaunch for a whole replay. */
  corr: number;
  /** The graph a node of a replay came from; 0 outside graphs. */
  graph: number;
  node: number;
  bytes?: number;
}

export interface ParsedTrace {
  records: TraceRecord[];
  /** The first CUPTI call that failed in the library, if one did. */
  error: string | null;
  /** Records CUPTI dropped (its buffers were full). */
  dropped: number;
}

/**
 * Where CUPTI is: its headers, its library, and the toolkit headers its headers include
 * (cuda.h, builtin_types.h), which a standard install keeps apart from CUPTI's
 * (extras/CUPTI/include has no cuda.h; nor has a PyTorch wheel's nvidia/cuda_cupti). Null where no
 * place has cuda.h: the build then says what is missing.
 */
export interface CuptiPaths {
  include: string;
  lib: string;
  toolkitInclude: string | null;
}

/** The first of `roots` with CUPTI's headers (include/) and library (lib64/, lib/ or targets/x86_64-linux/lib/). */
function cuptiUnder(roots: readonly string[]): { include: string; lib: string } | null {
  for (const root of roots) {
    const include = join(root, 'include');
    if (!existsSync(join(include, 'cupti_activity.h'))) continue;
    for (const libDir of ['lib64', 'lib', 'targets/x86_64-linux/lib']) {
      const dir = join(root, libDir);
      if (!existsSync(dir)) continue;
      const so = readdirSync(dir)
        .filter((f) => /^libcupti\.so(\.\d+)*$/.test(f))
        .sort((a, b) => a.length - b.length)[0];
      if (so) return { include, lib: join(dir, so) };
    }
  }
  return null;
}

/** The versioned toolkits under /usr/local (cuda-13.0, cuda-12.8, ...), newest name first. */
function versionedToolkits(): string[] {
  if (!existsSync('/usr/local')) return [];
  return readdirSync('/usr/local')
    .filter((d) => /^cuda-\d/.test(d))
    .sort()
    .reverse()
    .map((d) => `/usr/local/${d}`);
}

/** PyTorch's nvidia/ wheel folders, if python3 has them. */
function nvidiaWheels(): string[] {
  const py = spawnSync('python3', ['-c', 'import nvidia; print("\\n".join(nvidia.__path__))'], { encoding: 'utf8' });
  return py.status === 0 ? py.stdout.split('\n').filter(Boolean) : [];
}

/**
 * The first folder with cuda.h of: CUPTI's own include folder, the toolkit's above an
 * extras/CUPTI root, the toolkit's usual places, then PyTorch's wheels (asked only if needed).
 */
function toolkitIncludeFor(cuptiInclude: string, wheels: () => readonly string[]): string | null {
  const has = (d: string) => existsSync(join(d, 'cuda.h'));
  const system = [
    cuptiInclude,
    join(cuptiInclude, '..', '..', '..', 'include'),
    '/usr/local/cuda/include',
    '/usr/local/cuda/targets/x86_64-linux/include',
    ...versionedToolkits().map((t) => join(t, 'include')),
  ].find(has);
  if (system) return system;
  return (
    wheels()
      .flatMap((w) => ['cuda_runtime', 'cu13', 'cu12'].map((p) => join(w, p, 'include')))
      .find(has) ?? null
  );
}

/** Where this machine's CUPTI headers and library are: NPR_CUPTI_ROOT, the toolkit's usual places, or PyTorch's wheels. */
export function findCupti(): CuptiPaths | null {
  const roots: string[] = [];
  if (process.env.NPR_CUPTI_ROOT) roots.push(process.env.NPR_CUPTI_ROOT);
  roots.push('/usr/local/cuda/extras/CUPTI', '/usr/local/cuda', '/usr/local/cuda/targets/x86_64-linux');
  for (const t of versionedToolkits()) roots.push(`${t}/extras/CUPTI`, t);
  let wheels: string[] | undefined;
  const getWheels = () => (wheels ??= nvidiaWheels());
  // PyTorch's wheels bring their own CUPTI (nvidia/cuda_cupti, or nvidia/cu13 in CUDA 13's).
  const found = cuptiUnder(roots) ?? cuptiUnder(getWheels().flatMap((p) => [join(p, 'cuda_cupti'), join(p, 'cu13'), join(p, 'cu12')]));
  return found ? { ...found, toolkitInclude: toolkitIncludeFor(found.include, getWheels) } : null;
}

/**
 * Compiles tools/kernel-trace/<source> (the injection library, or its format selftest program)
 * into `out` with the system C++ compiler; the library is found at run time through an rpath.
 * Returns the error's tail when the compiler fails.
 */
export function buildKernelTrace(
  root: string,
  cupti: CuptiPaths,
  what: 'inject' | 'selftest',
  out: string,
): { ok: true } | { ok: false; error: string } {
  const source = join(root, 'tools', 'kernel-trace', what === 'inject' ? 'kernel_trace_inject.cpp' : 'format_selftest.cpp');
  const libDir = cupti.lib.slice(0, cupti.lib.lastIndexOf('/'));
  const includes = [cupti.include, ...(cupti.toolkitInclude && cupti.toolkitInclude !== cupti.include ? [cupti.toolkitInclude] : [])];
  const args = ['-std=c++17', '-O2', '-Wall', ...includes.map((d) => `-I${d}`), source, '-o', out, cupti.lib, `-Wl,-rpath,${libDir}`];
  if (what === 'inject') args.unshift('-shared', '-fPIC');
  for (const cxx of [process.env.CXX, 'c++', 'g++'].filter((c): c is string => Boolean(c))) {
    const r = spawnSync(cxx, args, { encoding: 'utf8' });
    if (r.error) continue; // no such compiler
    if (r.status === 0) return { ok: true };
    return { ok: false, error: `${cxx} failed: ${(r.stderr ?? '').slice(-1500)}` };
  }
  return { ok: false, error: 'no C++ compiler (c++, g++ or $CXX) found' };
}

/** The records of the library's JSON lines (unknown lines are refused by name). */
export function parseTrace(text: string): ParsedTrace {
  const out: ParsedTrace = { records: [], error: null, dropped: 0 };
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new Error(`kernel trace line ${i + 1}: not a JSON object: ${line.slice(0, 80)}`);
    }
    if (o.k === 'error') out.error ??= String(o.what);
    else if (o.k === 'dropped') out.dropped += Number(o.count);
    else if (o.k === 'kernel' || o.k === 'memcpy' || o.k === 'memset') {
      const r: TraceRecord = {
        k: o.k,
        name: o.k === 'kernel' ? String(o.name) : o.k,
        start: Number(o.start),
        end: Number(o.end),
        stream: Number(o.stream),
        corr: Number(o.corr),
        graph: Number(o.graph),
        node: Number(o.node),
      };
      if (o.bytes !== undefined) r.bytes = Number(o.bytes);
      if (r.end >= r.start) out.records.push(r); // CUPTI leaves end 0 on a record it never completed
    } else throw new Error(`kernel trace line ${i + 1}: unknown record kind ${JSON.stringify(o.k)}`);
  }
  return out;
}

/** One record's share of a stretch of device time (see the module header). */
export interface Share {
  record: TraceRecord;
  /** ns of the stretch that belong to this record. */
  own: number;
  /** ns nothing ran just before it started (since everything before it had ended). */
  gapBefore: number;
  /** ns it ran while an older record still ran (a programmatic launch's early start). */
  early: number;
}

/** Splits the span of `records` (first start to last end) into their shares and idle time. */
export function shares(records: readonly TraceRecord[]): { shares: Share[]; idle: number; span: number } {
  const sorted = [...records].sort((a, b) => a.start - b.start || a.end - b.end);
  const out: Share[] = [];
  if (sorted.length === 0) return { shares: out, idle: 0, span: 0 };
  let frontier = (sorted[0] as TraceRecord).start; // where the time already given out ends
  let idle = 0;
  for (const r of sorted) {
    const gapBefore = Math.max(0, r.start - frontier);
    const early = Math.max(0, Math.min(frontier, r.end) - r.start);
    idle += gapBefore;
    const from = Math.max(frontier, r.start);
    const own = Math.max(0, r.end - from);
    frontier = Math.max(frontier, r.end);
    out.push({ record: r, own, gapBefore, early });
  }
  return { shares: out, idle, span: frontier - (sorted[0] as TraceRecord).start };
}

/** One decode step: a graph replay, then what ran on the device until the next replay's first record. */
export interface StepWindow {
  replay: TraceRecord[];
  after: TraceRecord[];
  /** ns from this replay's first record to the next one's. */
  period: number;
}

/**
 * The replays of each graph of the trace, in time order. A replay holds each of its graph's
 * nodes once, so one begins where a node comes round again (node ids are the same in every
 * replay); where CUPTI gave no node ids, the launch call's correlation id groups them instead.
 */
export function graphReplays(records: readonly TraceRecord[]): Map<number, TraceRecord[][]> {
  const out = new Map<number, TraceRecord[][]>();
  const sorted = records.filter((r) => r.graph !== 0).sort((a, b) => a.start - b.start);
  const seen = new Map<number, Set<number>>(); // graph -> node ids of its replay so far
  const lastCorr = new Map<number, number>();
  for (const r of sorted) {
    if (!out.has(r.graph)) {
      out.set(r.graph, []);
      seen.set(r.graph, new Set());
    }
    const replays = out.get(r.graph) as TraceRecord[][];
    const nodes = seen.get(r.graph) as Set<number>;
    const fresh = r.node !== 0 ? nodes.has(r.node) : lastCorr.get(r.graph) !== r.corr;
    if (fresh || replays.length === 0) {
      replays.push([]);
      nodes.clear();
    }
    nodes.add(r.node);
    lastCorr.set(r.graph, r.corr);
    (replays[replays.length - 1] as TraceRecord[]).push(r);
  }
  return out;
}

/**
 * The steps of the trace: the replays of `graph` (default: the graph replayed most often; of
 * those, the last replayed), each with what ran until its next replay began; the last replay
 * (no next one) is left out.
 */
export function stepWindows(records: readonly TraceRecord[], graph?: number): StepWindow[] {
  const byGraph = graphReplays(records);
  const first = (g: TraceRecord[]) => (g[0] as TraceRecord).start;
  let want = graph;
  if (want === undefined) {
    const latest = (rs: TraceRecord[][]) => first(rs[rs.length - 1] as TraceRecord[]);
    let best: TraceRecord[][] = [];
    for (const [id, replays] of byGraph) {
      if (replays.length > best.length || (replays.length === best.length && latest(replays) > latest(best))) {
        best = replays;
        want = id;
      }
    }
  }
  const replays = want === undefined ? [] : (byGraph.get(want) ?? []);
  const sorted = [...records].sort((a, b) => a.start - b.start);
  const out: StepWindow[] = [];
  let j = 0; // the first record of `sorted` not before the current replay (the windows are in time order)
  for (let i = 0; i + 1 < replays.length; i++) {
    const replay = replays[i] as TraceRecord[];
    const t0 = first(replay);
    const t1 = first(replays[i + 1] as TraceRecord[]);
    const mine = new Set(replay);
    while (j < sorted.length && (sorted[j] as TraceRecord).start < t0) j++;
    const after: TraceRecord[] = [];
    for (let k = j; k < sorted.length && (sorted[k] as TraceRecord).start < t1; k++)
      if (!mine.has(sorted[k] as TraceRecord)) after.push(sorted[k] as TraceRecord);
    out.push({ replay, after, period: t1 - t0 });
  }
  return out;
}

/** Per-op figures of one step in µs: a replay's kernels by short name, then what followed it. */
export interface StepTimeline {
  periodUs: number;
  /** The replay's span: its first record's start to its last record's end. */
  graphUs: number;
  /** Time inside the replay with none of its nodes running. */
  graphIdleUs: number;
  /** Sum of the replay's nodes' early starts (programmatic launches overlapping the node before). */
  graphEarlyUs: number;
  /** Device time of everything after the replay within the period (sampler, uploads). */
  afterUs: number;
  /** The period with nothing running on the device. */
  deviceIdleUs: number;
  launches: number;
  /** op -> µs of the replay's span that were its own, its launches, the idle µs just before them, and their early µs. */
  ops: Map<string, { ownUs: number; launches: number; gapUs: number; earlyUs: number; after: boolean }>;
}

/** Splits one step window into its parts (shortName: kernel name -> the op's label). */
export function stepTimeline(w: StepWindow, shortName: (name: string) => string): StepTimeline {
  const g = shares(w.replay);
  const all = shares([...w.replay, ...w.after]);
  const ops: StepTimeline['ops'] = new Map();
  const add = (s: Share, after: boolean) => {
    const key = after ? `after:${shortName(s.record.name)}` : shortName(s.record.name);
    const e = ops.get(key) ?? { ownUs: 0, launches: 0, gapUs: 0, earlyUs: 0, after };
    e.ownUs += s.own / 1e3;
    e.launches += 1;
    e.gapUs += s.gapBefore / 1e3;
    e.earlyUs += s.early / 1e3;
    ops.set(key, e);
  };
  for (const s of g.shares) add(s, false);
  const replay = new Set(w.replay);
  let afterNs = 0;
  for (const s of all.shares)
    if (!replay.has(s.record)) {
      add(s, true);
      afterNs += s.own;
    }
  const busy = all.span - all.idle; // every record starts inside the period
  return {
    periodUs: w.period / 1e3,
    graphUs: g.span / 1e3,
    graphIdleUs: g.idle / 1e3,
    graphEarlyUs: g.shares.reduce((a, s) => a + s.early, 0) / 1e3,
    afterUs: afterNs / 1e3,
    deviceIdleUs: (w.period - busy) / 1e3,
    launches: w.replay.length,
    ops,
  };
}
