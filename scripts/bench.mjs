#!/usr/bin/env node
// `npm run bench -- <name> [args]`: runs dist/bench/<name>.js (compiled by the npm script's tsc
// step). Each benchmark prints a table and, as its last line, one JSON object.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'dist', 'bench');
const available = existsSync(dir)
  ? readdirSync(dir)
      .filter((f) => f.endsWith('.js') && !f.startsWith('_'))
      .map((f) => f.slice(0, -3))
  : [];
const [name, ...rest] = process.argv.slice(2);
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- <name> [options]\navailable: ${available.join(', ') || '(none built)'}`);
  process.exit(name ? 1 : 0);
}
const r = spawnSync(process.execPath, [join(dir, `${name}.js`), ...rest], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
