/** The CPU the demo ran on, for the summary: model name, kernel ISA path and threads. */
import { readFileSync } from 'node:fs';
import { backends } from '../bindings/backends.js';

export function cpuDescription(): string {
  let name = 'unknown CPU';
  try {
    const m = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m);
    if (m?.[1]) name = m[1].trim();
  } catch {
    // not Linux: the name stays unknown, the ISA below still says which kernels ran
  }
  const b = backends();
  return `${name} (${b.cpu.simd} kernels, ${b.cpu.threads} threads)`;
}
