/** The `npr` command as a user runs it (the compiled dist/, built by `npm install`). */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
const cli = join(root, 'dist', 'ts', 'cli', 'main.js');

describe('npr command', () => {
  it('is built (npm install runs tsc through the prepare script)', () => {
    expect(existsSync(cli), `${cli} is missing: run \`npm run build\``).toBe(true);
  });

  it('prints help', () => {
    const out = execFileSync(process.execPath, [cli, '--help'], { encoding: 'utf8' });
    expect(out).toMatch(/Usage: npr/);
    expect(out).toMatch(/backends/);
  });

  it('reports backends as JSON', () => {
    const out = execFileSync(process.execPath, [cli, 'backends', '--json'], { encoding: 'utf8' });
    const info = JSON.parse(out) as { cpu: { threads: number }; cuda: { compiled: boolean } };
    expect(info.cpu.threads).toBeGreaterThan(0);
    expect(typeof info.cuda.compiled).toBe('boolean');
  });

  it('names a bad environment variable instead of crashing', () => {
    const r = spawnSync(process.execPath, [cli, 'backends'], { encoding: 'utf8', env: { ...process.env, NPR_THREADS: 'lots' } });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/ConfigError: NPR_THREADS must be an integer/);
  });

  it('resolves the package by name from the checkout (self-reference)', () => {
    const out = execFileSync(
      process.execPath,
      ['--input-type=module', '-e', "import { backends } from 'npr-runtime'; console.log(typeof backends().cpu.threads)"],
      {
        cwd: root,
        encoding: 'utf8',
      },
    );
    expect(out.trim()).toBe('number');
  });
});
