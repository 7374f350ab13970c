/**
 * The demo's report writer (ts/eval/report): the PNG encoder judged by an independent reader
 * (bitwise CRC, zlib inflate, exact pixels on odd sizes), the raster and its font, the charts on
 * the data that used to break chart code (no series, one point, NaN/Infinity, flat values),
 * the HTML page (escaping, one row per model, one <img> per chart) and writeReport's files.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { GLYPH_SOURCE, hasGlyph } from '../ts/eval/report/font.js';
import { BACKGROUND, MUTED, PALETTE } from '../ts/eval/report/frame.js';
import {
  barChart,
  encodePng,
  type LineChartSpec,
  lineChart,
  MODEL_FIGURES,
  PixelBufferError,
  planCharts,
  Raster,
  type ReportInput,
  ReportInputError,
  ReportSizeError,
  renderReportHtml,
  sanitiseStage,
  writeReport,
} from '../ts/eval/report/index.js';
import { stageSeries } from '../ts/eval/report/plan.js';
import { crc32 } from '../ts/eval/report/png.js';
import { niceTicks } from '../ts/eval/report/ticks.js';
import { rng } from './helpers.js';
import { bitwiseCrc32, countNot, decodePng, readChunks } from './png-decode.js';
import { sampleReportInput } from './report-fixture.js';

/** Pixels of exactly colour `c` (RGB). */
function countColour(rgba: Uint8Array, c: readonly number[]): number {
  let n = 0;
  for (let i = 0; i < rgba.length; i += 4) if (rgba[i] === c[0] && rgba[i + 1] === c[1] && rgba[i + 2] === c[2]) n++;
  return n;
}

describe('encodePng', () => {
  it('CRC-32 matches the bitwise reference and the standard check value', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    const next = rng(5);
    for (const n of [0, 1, 17, 97, 513]) {
      const bytes = Uint8Array.from({ length: n }, () => Math.floor(next() * 256));
      expect(crc32(bytes)).toBe(bitwiseCrc32(bytes));
    }
  });

  for (const [w, h] of [
    [1, 1],
    [7, 3],
    [33, 17],
  ] as const) {
    it(`writes a valid ${w}x${h} RGBA PNG whose pixels inflate back exactly`, () => {
      const next = rng(w * 100 + h);
      const rgba = Uint8Array.from({ length: w * h * 4 }, () => Math.floor(next() * 256));
      const png = encodePng(w, h, rgba);
      expect([...png.subarray(0, 8)]).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
      const chunks = readChunks(png);
      expect(chunks.map((c) => c.type)).toEqual(['IHDR', 'IDAT', 'IEND']);
      for (const c of chunks) expect(c.stored, `CRC of ${c.type}`).toBe(c.computed);
      const ihdr = chunks[0]?.data as Buffer;
      expect(ihdr.length).toBe(13);
      expect([ihdr.readUInt32BE(0), ihdr.readUInt32BE(4), ...ihdr.subarray(8)]).toEqual([w, h, 8, 6, 0, 0, 0]);
      expect(chunks[2]?.data.length).toBe(0);
      const raw = inflateSync(chunks[1]?.data as Buffer);
      expect(raw.length).toBe(h * (1 + w * 4));
      for (let y = 0; y < h; y++) {
        expect(raw[y * (1 + w * 4)], `filter byte of row ${y}`).toBe(0);
        expect(raw.subarray(y * (1 + w * 4) + 1, (y + 1) * (1 + w * 4))).toEqual(Buffer.from(rgba.subarray(y * w * 4, (y + 1) * w * 4)));
      }
      expect(decodePng(png).rgba).toEqual(rgba);
    });
  }

  it('names the problem with bad sizes or a buffer of the wrong length', () => {
    expect(() => encodePng(0, 1, new Uint8Array(0))).toThrow(ReportSizeError);
    expect(() => encodePng(2.5, 1, new Uint8Array(10))).toThrow(ReportSizeError);
    expect(() => encodePng(2, 2, new Uint8Array(15))).toThrow(PixelBufferError);
    expect(() => encodePng(2, 2, new Uint8Array(15))).toThrow(/expected 16 bytes/);
  });
});

describe('Raster', () => {
  it('fills rectangles exactly and clips them to the image', () => {
    const r = new Raster(9, 5, [10, 20, 30]);
    r.fillRect(2, 1, 3, 2, [200, 0, 0]);
    r.fillRect(-5, -5, 7, 6, [0, 200, 0]); // covers (0..1, 0)
    r.fillRect(8, 4, 10, 10, [0, 0, 200]); // covers (8, 4)
    expect(countColour(r.pixels, [200, 0, 0])).toBe(6);
    expect(r.get(3, 2)).toEqual([200, 0, 0, 255]);
    expect(countColour(r.pixels, [0, 200, 0])).toBe(2);
    expect(r.get(8, 4)).toEqual([0, 0, 200, 255]);
    expect(countColour(r.pixels, [10, 20, 30])).toBe(45 - 9);
  });

  it('draws thick lines with their core in the exact colour and anti-aliased edges', () => {
    const r = new Raster(41, 23);
    r.line(3, 3, 37, 19, [0, 0, 255], 3);
    const exact = countColour(r.pixels, [0, 0, 255]);
    const touched = countNot(r.pixels, [255, 255, 255]);
    expect(exact).toBeGreaterThan(60);
    expect(touched).toBeGreaterThan(exact); // edge pixels are blends
    expect(r.get(20, 11)).toEqual([0, 0, 255, 255]); // on the segment
    expect(r.get(37, 3)).toEqual([255, 255, 255, 255]); // far from it
    r.line(Number.NaN, 0, 5, 5, [0, 0, 0]); // ignored, no throw
    r.line(-100, -100, 200, 200, [0, 0, 0], 1); // clipped
  });

  it('draws discs and rings', () => {
    const r = new Raster(31, 31);
    r.circle(15, 15, 8, [0, 128, 0]);
    const disc = countColour(r.pixels, [0, 128, 0]);
    expect(disc).toBeGreaterThan(Math.PI * 7 * 7);
    expect(disc).toBeLessThan(Math.PI * 9 * 9);
    const ring = new Raster(31, 31);
    ring.circle(15, 15, 8, [0, 128, 0], false);
    expect(ring.get(15, 15)).toEqual([255, 255, 255, 255]);
    expect(countNot(ring.pixels, [255, 255, 255])).toBeGreaterThan(40);
  });

  it('has a 5x7 glyph for every character the charts use; lower case draws as upper case', () => {
    for (const [ch, rows] of Object.entries(GLYPH_SOURCE)) expect(rows, ch).toMatch(/^[#.]{5}( [#.]{5}){6}$/);
    const needed = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz .,:%-+/()=@_#x';
    for (const ch of needed) expect(hasGlyph(ch), JSON.stringify(ch)).toBe(true);
    const lower = new Raster(40, 9);
    const upper = new Raster(40, 9);
    lower.text(1, 1, 'avg@k', [0, 0, 0]);
    upper.text(1, 1, 'AVG@K', [0, 0, 0]);
    expect(lower.pixels).toEqual(upper.pixels);
  });

  it('draws a visible box for characters it lacks, and never throws on them', () => {
    for (const ch of ['€', '~', '\u0000', '😀', 'ß']) {
      const r = new Raster(9, 11);
      r.text(2, 2, ch, [0, 0, 0]);
      expect(countColour(r.pixels, [0, 0, 0]), JSON.stringify(ch)).toBe(20); // the 5x7 outline
      expect(r.get(2, 2)).toEqual([0, 0, 0, 255]);
      expect(r.get(4, 4)).toEqual([255, 255, 255, 255]);
    }
  });

  it('scales text by whole cells and rotates it a quarter turn', () => {
    const one = new Raster(100, 30);
    const two = new Raster(100, 30);
    one.text(0, 0, 'NPR 42%', [0, 0, 0], 1);
    two.text(0, 0, 'NPR 42%', [0, 0, 0], 2);
    expect(countColour(two.pixels, [0, 0, 0])).toBe(4 * countColour(one.pixels, [0, 0, 0]));
    const up = new Raster(30, 80);
    up.text(0, 79, 'NPR 42%', [0, 0, 0], 1, true);
    expect(countColour(up.pixels, [0, 0, 0])).toBe(countColour(one.pixels, [0, 0, 0]));
    // The glyph of 'N' starts with a full left column: rotated, that is the bottom row's first 7 pixels.
    for (let x = 0; x < 7; x++) expect(up.get(x, 79)).toEqual([0, 0, 0, 255]);
  });

  it('names a size it cannot allocate', () => {
    expect(() => new Raster(0, 10)).toThrow(ReportSizeError);
    expect(() => new Raster(100000, 100000)).toThrow(ReportSizeError);
  });
});

describe('charts', () => {
  const curve: LineChartSpec = {
    title: 'Stage rl: reward',
    xLabel: 'step',
    yLabel: 'value',
    series: [
      {
        name: 'reward',
        points: Array.from({ length: 17 }, (_, i): [number, number] => [i + 1, Math.sin(i / 3)]),
      },
      { name: 'accuracy', points: Array.from({ length: 17 }, (_, i): [number, number] => [i + 1, i / 20]) },
    ],
  };
  const decode = (png: Buffer) => decodePng(png);

  it('draws a line chart with one palette colour per series, deterministically', () => {
    const a = lineChart(curve);
    expect(lineChart(curve).equals(a)).toBe(true);
    const img = decode(a);
    expect([img.width, img.height]).toEqual([800, 440]);
    expect(countNot(img.rgba, BACKGROUND)).toBeGreaterThan(5000);
    expect(countColour(img.rgba, PALETTE[0] as readonly number[])).toBeGreaterThan(300);
    expect(countColour(img.rgba, PALETTE[1] as readonly number[])).toBeGreaterThan(300);
    expect(countColour(img.rgba, PALETTE[2] as readonly number[])).toBe(0);
    expect(countColour(img.rgba, MUTED)).toBe(0); // no "NO DATA"
  });

  it('says NO DATA for no series, empty series, or nothing finite, and still draws the frame', () => {
    for (const series of [[], [{ name: 'reward', points: [] }], [{ name: 'x', points: [[Number.NaN, 1] as [number, number]] }]]) {
      const img = decode(lineChart({ ...curve, series }));
      expect(countColour(img.rgba, MUTED)).toBeGreaterThan(50);
      expect(countNot(img.rgba, BACKGROUND)).toBeGreaterThan(1000);
    }
  });

  it('skips NaN and infinite points: the chart equals the one without them', () => {
    const clean = curve.series.map((s) => ({ ...s, points: s.points.filter((_, i) => i % 5 !== 2) }));
    const dirty = curve.series.map((s) => ({
      ...s,
      points: s.points.map((p, i): [number, number] => (i % 5 !== 2 ? p : i % 2 ? [p[0], Number.NaN] : [Number.POSITIVE_INFINITY, p[1]])),
    }));
    expect(lineChart({ ...curve, series: dirty }).equals(lineChart({ ...curve, series: clean }))).toBe(true);
  });

  it('draws a single point and flat series visibly', () => {
    const one = decode(lineChart({ ...curve, series: [{ name: 'loss', points: [[3, 0.7]] }] }));
    expect(countColour(one.rgba, PALETTE[0] as readonly number[])).toBeGreaterThan(100); // legend swatch + dot
    const flat = decode(lineChart({ ...curve, series: [{ name: 'acc', points: [1, 2, 3, 4, 5].map((x): [number, number] => [x, 0.5]) }] }));
    expect(countColour(flat.rgba, PALETTE[0] as readonly number[])).toBeGreaterThan(300);
    const zeros = decode(lineChart({ ...curve, series: [{ name: 'acc', points: [1, 2, 3].map((x): [number, number] => [x, 0]) }] }));
    expect(countColour(zeros.rgba, PALETTE[0] as readonly number[])).toBeGreaterThan(300);
  });

  it('keeps lines inside a fixed yRange and ignores an unusable one', () => {
    const wild = { ...curve, series: [{ name: 'r', points: [1, 2, 3, 4].map((x): [number, number] => [x, x * 10]) }] };
    expect(() => decode(lineChart({ ...wild, yRange: [0, 1] }))).not.toThrow();
    expect(lineChart({ ...wild, yRange: [1, 1] }).equals(lineChart(wild))).toBe(true);
    expect(lineChart({ ...wild, yRange: [Number.NaN, 1] }).equals(lineChart(wild))).toBe(true);
  });

  it('draws grouped bars in palette colours, deterministically, and copes with odd values', () => {
    const spec = {
      title: 'Final accuracy',
      categories: ['base', 'npr_zero', 'npr'],
      series: [
        { name: 'avg@8', values: [0.31, 0.33, 0.41] },
        { name: 'pass@8', values: [0.66, 0.6, 0.72] },
        { name: 'parallel', values: [0, Number.NaN, 0.96] },
      ],
      yRange: [0, 1] as [number, number],
      yLabel: 'rate',
    };
    const png = barChart(spec);
    expect(barChart(spec).equals(png)).toBe(true);
    const img = decode(png);
    for (let k = 0; k < 3; k++) expect(countColour(img.rgba, PALETTE[k] as readonly number[]), `series ${k}`).toBeGreaterThan(1000);
    expect(countColour(img.rgba, MUTED)).toBeGreaterThan(0); // the NaN bar's "N/A"
    const negative = decode(barChart({ ...spec, yRange: undefined, series: [{ name: 'delta', values: [-0.2, 0.1, -3] }] }));
    expect(countColour(negative.rgba, PALETTE[0] as readonly number[])).toBeGreaterThan(1000);
    const zeros = decode(barChart({ ...spec, yRange: undefined, series: [{ name: 'z', values: [0, 0, 0] }] }));
    expect(countNot(zeros.rgba, BACKGROUND)).toBeGreaterThan(1000);
  });

  it('says NO DATA for bar charts without categories, series or finite values', () => {
    for (const s of [
      { categories: [], series: [{ name: 'a', values: [] }] },
      { categories: ['a'], series: [] },
      { categories: ['a', 'b'], series: [{ name: 'a', values: [Number.NaN, Number.POSITIVE_INFINITY] }] },
    ]) {
      expect(countColour(decode(barChart({ title: 't', ...s })).rgba, MUTED)).toBeGreaterThan(50);
    }
  });

  it('honours width and height, and names a size it cannot draw', () => {
    const img = decode(barChart({ title: 't', categories: ['a'], series: [{ name: 's', values: [1] }], width: 321, height: 203 }));
    expect([img.width, img.height]).toEqual([321, 203]);
    expect(() => lineChart({ ...curve, width: 50 })).toThrow(ReportSizeError);
    expect(() => barChart({ title: 't', categories: [], series: [], height: Number.NaN })).toThrow(/chart size/);
  });

  it('puts ticks on 1, 2 or 5 times a power of ten', () => {
    expect(niceTicks(0, 1).values).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(-1.37, 0.06).values).toEqual([-1.5, -1, -0.5, 0, 0.5]);
    expect(niceTicks(1, 4, 6, false, 1).values).toEqual([1, 2, 3, 4]);
    expect(niceTicks(0.05, 0.95, 5, true).values).toEqual([0.2, 0.4, 0.6, 0.8]);
  });
});

describe('report page', () => {
  it('escapes every text, including a model named <script>', () => {
    const input = sampleReportInput();
    input.title = 'Run <b>"1"</b> & co';
    input.summary.cpu = "<img src=x onerror='alert(1)'>";
    input.summary.models['<script>alert(1)</script>'] = { ...(input.summary.models.npr as ReportInput['summary']['models'][string]) };
    input.metrics.push({ stage: '<script>', step: 1, reward: 1 });
    const html = renderReportHtml(input);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toContain('<img src=x');
    expect(html).not.toContain('<b>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('Run &lt;b&gt;&quot;1&quot;&lt;/b&gt; &amp; co');
    expect(html).toContain('&lt;img src=x onerror=&#39;alert(1)&#39;&gt;');
  });

  it('has the run facts, one row per model in the demo order, family tables, and an <img> per chart', () => {
    const input = sampleReportInput();
    input.summary.models.extra = { ...(input.summary.models.base as ReportInput['summary']['models'][string]), avg_at_k: Number.NaN };
    const html = renderReportHtml(input);
    const rows = [...html.matchAll(/<tr><th scope="row">([^<]*)<\/th>/g)].map((m) => m[1]);
    expect(rows.slice(0, 6)).toEqual(['base', 'npr_zero', 'npr_beta', 'sr', 'npr', 'extra']);
    expect(rows.slice(6)).toEqual(['base', 'npr', 'base', 'npr']); // arithmetic, countdown
    expect(html).toContain('<h3>arithmetic</h3>');
    for (const fact of ['AMD EPYC 9454 (16 threads)', '754.2 s (12 min 34 s)', '<dd>8</dd>', '<dd>64</dd>', '<dd>1234</dd>'])
      expect(html).toContain(fact);
    for (const field of MODEL_FIGURES) {
      expect(html).toContain(`<code>${field}</code>`);
    }
    // npr: rates as percentages, speed as numbers; the NaN shows as a dash.
    expect(html).toContain(
      '<tr><th scope="row">npr</th><td>97.0%</td><td>96.0%</td><td>41.0%</td><td>72.0%</td><td>63.0%</td><td>212.5</td><td>3.91</td></tr>',
    );
    expect(html).toMatch(/<th scope="row">extra<\/th><td>12.0%<\/td><td>0.0%<\/td><td>\u2013<\/td>/);
    const imgs = [...html.matchAll(/<figure><img src="([^"]+)" alt="[^"]+"[^>]*><figcaption>[^<]+<\/figcaption><\/figure>/g)].map(
      (m) => m[1],
    );
    expect(imgs).toEqual(planCharts(input).map((c) => c.file));
    expect(imgs).toEqual([
      'curve-npr-zero.png',
      'curve-rejection.png',
      'curve-sft.png',
      'curve-npr.png',
      'final-accuracy.png',
      'final-speed.png',
      'final-throughput.png',
    ]);
    expect(html).not.toMatch(/https?:|<script|<link/);
  });

  it('lists the target figures met and missed, escaped, and skips malformed entries', () => {
    const input = sampleReportInput();
    input.summary.checks = [
      { figure: 'speedup <over> SR', target: '>= 2', value: 2.345, met: true },
      { figure: 'NPR avg@k - SR avg@k', target: '>= 0', value: -0.05, met: false },
      { figure: 'broken', value: 'x' },
    ];
    const html = renderReportHtml(input);
    expect(html).toContain('<h2>Target figures</h2>');
    expect(html).toContain('speedup &lt;over&gt; SR');
    expect(html).toContain('<td>2.345</td>');
    expect(html).toContain('<strong>missed</strong></td><td>NPR avg@k - SR avg@k');
    expect(html).not.toContain('broken');
    delete input.summary.checks;
    expect(renderReportHtml(input)).not.toContain('Target figures');
  });

  it('names a missing summary instead of failing somewhere inside', () => {
    expect(() => renderReportHtml({ metrics: [] } as unknown as ReportInput)).toThrow(ReportInputError);
    expect(() => renderReportHtml({ summary: { models: [] }, metrics: [] } as unknown as ReportInput)).toThrow(/summary.models/);
  });
});

describe('chart plan', () => {
  it('sanitises stage names to [a-z0-9-]', () => {
    expect(sanitiseStage('NPR RL #2')).toBe('npr-rl-2');
    expect(sanitiseStage('../../etc/passwd')).toBe('etc-passwd');
    expect(sanitiseStage('___')).toBe('stage');
    expect(sanitiseStage('sft')).toBe('sft');
  });

  it('plots the rate fields where present, loss only without reward, and acceptance_rate', () => {
    const names = (stage: string) => stageSeries(sampleReportInput().metrics.filter((l) => l.stage === stage)).map((s) => s.name);
    expect(names('npr-zero')).toEqual(['reward', 'accuracy', 'format_valid_rate', 'parallel_rate']); // has loss, but also reward
    expect(names('sft')).toEqual(['loss']);
    expect(names('rejection')).toEqual(['acceptance_rate']);
    const series = stageSeries([
      { stage: 'a', step: 1, accuracy: 0.5 },
      { stage: 'a', step: Number.NaN, accuracy: 0.6 },
      { stage: 'a', step: 2, accuracy: '0.7' },
      { stage: 'a', step: 3, accuracy: 0.8 },
    ]);
    expect(series).toEqual([
      {
        name: 'accuracy',
        points: [
          [1, 0.5],
          [3, 0.8],
        ],
      },
    ]);
  });

  it('gives stages whose names sanitise alike distinct files', () => {
    const files = planCharts({
      ...sampleReportInput(),
      metrics: [
        { stage: 'RL 1', step: 1, reward: 1 },
        { stage: 'rl-1', step: 1, reward: 2 },
        { stage: 'rl_1', step: 1 },
      ],
    }).map((c) => c.file);
    expect(files.slice(0, 3)).toEqual(['curve-rl-1.png', 'curve-rl-1-2.png', 'curve-rl-1-3.png']);
  });
});

describe('writeReport', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('writes report.html and every chart as a decodable PNG, leaving no .tmp files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'npr-report-'));
    dirs.push(dir);
    const out = join(dir, 'nested', 'report');
    const input = sampleReportInput();
    const { html, charts } = await writeReport(out, input);
    expect(html).toBe(join(out, 'report.html'));
    const files = planCharts(input).map((c) => c.file);
    expect(charts).toEqual(files.map((f) => join(out, f)));
    expect((await readdir(out)).sort()).toEqual([...files, 'report.html'].sort());
    const page = await readFile(html, 'utf8');
    expect(page).toBe(renderReportHtml(input));
    for (const path of charts) {
      const img = decodePng(await readFile(path));
      expect(img.width).toBe(800);
      expect(countNot(img.rgba, BACKGROUND), path).toBeGreaterThan(5000);
    }
    // Writing again over the same directory replaces the files with identical bytes.
    const first = await readFile(charts[0] as string);
    await writeReport(out, input);
    expect((await readFile(charts[0] as string)).equals(first)).toBe(true);
  });

  it('writes a report for a run with no metrics and one model', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'npr-report-'));
    dirs.push(dir);
    const input = sampleReportInput();
    const { charts } = await writeReport(dir, {
      summary: {
        ...input.summary,
        models: { base: input.summary.models.base as ReportInput['summary']['models'][string] },
        families: undefined,
      },
      metrics: [],
    });
    expect(charts.map((c) => c.slice(dir.length + 1))).toEqual(['final-accuracy.png', 'final-speed.png', 'final-throughput.png']);
  });
});
