/** examples/train.ts, the library-use example, runs the whole curriculum on a tiny model (through the built package). */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tinyRun } from './fixtures/trainer/tiny.js';

const built = existsSync(join(import.meta.dirname, '..', 'dist', 'ts', 'index.js'));

describe.skipIf(!built)('examples/train.ts', () => {
  it('runs format RL, rejection + SFT and PAPO through the public API and reads the outputs', async () => {
    const { runExample } = await import('../examples/train.js');
    const paths = await tinyRun();
    const lines: string[] = [];
    const { outputs, steps } = await runExample({
      model: paths.model,
      data: paths.data,
      out: join(paths.root, 'run'),
      codec: 'char',
      log: (l) => lines.push(l),
    });
    expect(outputs.map((o) => o.stage)).toEqual(['npr-zero', 'rejection', 'npr-beta', 'npr']);
    expect(steps.filter((s) => s.stage === 'npr').length).toBe(2);
    expect(lines.at(-1)).toMatch(/^NPR: \d+ parameters/);
  });
});
