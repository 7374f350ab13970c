/**
 * The report as a person sees it: writeReport's page opened in headless Chromium. A probe copy
 * of the page (the same page plus a script) reports where each <img> landed and its decoded
 * size; a screenshot of the real page must then show, at each of those places, exactly the
 * pixels of the chart PNG. A corrupt or truncated PNG (a broken-image icon, a half-drawn chart)
 * or a missing file fails that comparison; the page itself must log no console messages.
 *
 * Skipped, with a line saying so, where no Chromium is on PATH (Debian: apt-get install chromium).
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { planCharts, writeReport } from '../ts/eval/report/index.js';
import { countNot, type Decoded, decodePng } from './png-decode.js';
import { sampleReportInput } from './report-fixture.js';

const run = promisify(execFile);
const NAMES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

function findChromium(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    for (const name of NAMES) {
      try {
        accessSync(join(dir, name), constants.X_OK);
        return join(dir, name);
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

const chromium = findChromium();
if (!chromium) console.log('report-browser: no Chromium on PATH (Debian: apt-get install chromium); skipped');

const WIDTH = 1200;

/**
 * The share of the chart's inked (non-white) pixels that the screenshot shows at (left, top),
 * each channel within 2 (colour conversion may round differently). Counting ink rather than all
 * pixels keeps a half-drawn chart, which is mostly white like a whole one, from passing.
 */
function inkMatch(shot: Decoded, chart: Decoded, left: number, top: number): number {
  let ink = 0;
  let same = 0;
  for (let y = 0; y < chart.height; y++) {
    for (let x = 0; x < chart.width; x++) {
      const j = (y * chart.width + x) * 4;
      if (chart.rgba[j] === 255 && chart.rgba[j + 1] === 255 && chart.rgba[j + 2] === 255) continue;
      ink++;
      const sx = left + x;
      const sy = top + y;
      if (sx < 0 || sy < 0 || sx >= shot.width || sy >= shot.height) continue;
      const i = (sy * shot.width + sx) * 4;
      let ok = true;
      for (let k = 0; k < 3; k++) if (Math.abs((shot.rgba[i + k] as number) - (chart.rgba[j + k] as number)) > 2) ok = false;
      if (ok) same++;
    }
  }
  return ink === 0 ? 0 : same / ink;
}

/** Reports each image's content-box position and decoded size as attributes, once loaded. */
const PROBE = `<script>
addEventListener('load', () => {
  for (const img of document.images) {
    const r = img.getBoundingClientRect();
    img.setAttribute('data-box', [r.left + img.clientLeft + scrollX, r.top + img.clientTop + scrollY].join(','));
    img.setAttribute('data-natural', img.naturalWidth + 'x' + img.naturalHeight);
  }
  document.body.setAttribute('data-height', String(document.documentElement.scrollHeight));
});
</script>`;

describe.skipIf(!chromium)('report in headless Chromium', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('shows every chart exactly as encoded, with no console errors', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'npr-report-browser-'));
    dirs.push(dir);
    const input = sampleReportInput();
    const { html } = await writeReport(join(dir, 'report'), input);
    const browser = async (height: number, ...args: string[]) =>
      run(
        chromium as string,
        [
          '--headless=new',
          '--no-sandbox',
          '--disable-gpu',
          // A container's /dev/shm is often 64 MB; a tall screenshot needs more. Use /tmp instead.
          '--disable-dev-shm-usage',
          '--no-first-run',
          '--no-default-browser-check',
          '--disable-extensions',
          `--user-data-dir=${join(dir, 'profile')}`,
          '--hide-scrollbars',
          '--force-device-scale-factor=1',
          `--window-size=${WIDTH},${height}`,
          '--enable-logging=stderr',
          '--v=0',
          ...args,
        ],
        { timeout: 45_000, maxBuffer: 64 << 20 },
      );

    // 1. Where each image landed, and that each decoded at its full size.
    const page = await readFile(html, 'utf8');
    const probe = join(dir, 'report', 'probe.html');
    await writeFile(probe, page.replace('</body>', `${PROBE}</body>`));
    const dom = (await browser(3000, '--dump-dom', pathToFileURL(probe).href)).stdout;
    const imgs = [...dom.matchAll(/<img src="([^"]+)"[^>]*data-box="([^"]+)" data-natural="([^"]+)"/g)].map((m) => ({
      file: m[1] as string,
      box: (m[2] as string).split(',').map(Number) as [number, number],
      natural: m[3],
    }));
    const charts = planCharts(input);
    expect(imgs.map((i) => i.file)).toEqual(charts.map((c) => c.file));
    for (const [i, img] of imgs.entries()) expect(img.natural, img.file).toBe(`${charts[i]?.width}x${charts[i]?.height}`);
    const height = Number(/data-height="(\d+)"/.exec(dom)?.[1]);
    expect(height).toBeGreaterThan(charts.length * 440);

    // 2. The real page (no script), whole: no console messages, and each chart's pixels on screen.
    const shotPath = join(dir, 'shot.png');
    const shot = await browser(Math.min(height, 16000), `--screenshot=${shotPath}`, pathToFileURL(html).href);
    const consoleLines = shot.stderr.split('\n').filter((l) => /CONSOLE[(:]|Uncaught/.test(l));
    expect(consoleLines).toEqual([]);
    const screen = decodePng(await readFile(shotPath));
    expect(screen.width).toBe(WIDTH);
    expect(countNot(screen.rgba, [255, 255, 255])).toBeGreaterThan(charts.length * 5000);
    for (const img of imgs) {
      const chart = decodePng(await readFile(join(dir, 'report', img.file)));
      // Layout positions may be fractional; the image is drawn snapped to a whole pixel nearby.
      let best = 0;
      for (const dy of [0, -1, 1]) {
        for (const dx of [0, -1, 1])
          best = Math.max(best, inkMatch(screen, chart, Math.round(img.box[0]) + dx, Math.round(img.box[1]) + dy));
      }
      expect(best, `${img.file} on screen at ${img.box.join(',')}`).toBeGreaterThan(0.99);
    }
  }, 60_000);
});
