/**
 * Progress for the demo: one bar per stage with the live reward, accuracy, format-valid and
 * parallel rates, redrawn in place on a terminal and printed as plain lines (every few seconds
 * and at a stage's end) when piped, e.g. into a CI log.
 */
import type { StepMetrics } from '../trainer/events.js';

const pct = (v: unknown) => (typeof v === 'number' ? `${(100 * v).toFixed(0)}%` : '-');
const num = (v: unknown, d = 2) => (typeof v === 'number' ? v.toFixed(d) : '-');

export function bar(done: number, total: number, width = 20): string {
  const n = total > 0 ? Math.round((width * Math.min(done, total)) / total) : 0;
  return `[${'#'.repeat(n)}${'.'.repeat(width - n)}]`;
}

export function stepLine(m: StepMetrics): string {
  const parts = [`${m.stage.padEnd(9)} ${bar(m.step, m.steps)} ${String(m.step).padStart(3)}/${m.steps}`];
  if (m.reward !== undefined)
    parts.push(`reward ${num(m.reward)}  acc ${pct(m.accuracy)}  format ${pct(m.format_valid_rate)}  parallel ${pct(m.parallel_rate)}`);
  if (m.accepted !== undefined) parts.push(`accepted ${m.accepted} (${pct(m.acceptance_rate)})`);
  if (m.reward === undefined && m.loss !== undefined) parts.push(`loss ${num(m.loss, 4)}`);
  parts.push(`${num(m.wall_s, 1)} s`);
  return parts.join('  ');
}

export class Progress {
  private lastPlain = 0;
  private open = false;
  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {}

  get tty(): boolean {
    return Boolean(this.out.isTTY);
  }

  step(m: StepMetrics): void {
    const line = stepLine(m);
    if (this.tty) {
      this.out.write(`\r\x1b[2K${line}`);
      this.open = true;
      if (m.step === m.steps) this.end();
    } else if (performance.now() - this.lastPlain > 3000 || m.step === m.steps) {
      this.lastPlain = performance.now();
      this.out.write(`${line}\n`);
    }
  }

  /** A line of its own (ends a bar in progress). */
  say(text: string): void {
    this.end();
    this.out.write(`${text}\n`);
  }

  private end(): void {
    if (this.open) this.out.write('\n');
    this.open = false;
  }
}
