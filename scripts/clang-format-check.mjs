#!/usr/bin/env node
// Checks (or with --fix, applies) clang-format on every C++/CUDA source under cpp/ and tools/, using the
// clang-format binary shipped in the `clang-format` npm package so CI needs no system package.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const fix = process.argv.includes('--fix');
const require = createRequire(import.meta.url);
const pkgDir = dirname(require.resolve('clang-format/package.json'));
const platformDir = { linux: 'linux_x64', darwin: 'darwin_x64', win32: 'win32' }[process.platform];
const binary = join(pkgDir, 'bin', platformDir ?? 'linux_x64', process.platform === 'win32' ? 'clang-format.exe' : 'clang-format');

function sources(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (/\.(h|cpp|cu|cuh|inc)$/.test(name)) out.push(p);
  }
  return out;
}

const files = [...sources(join(root, 'cpp')), ...sources(join(root, 'tools'))];
const args = fix ? ['-i', '--style=file', ...files] : ['--dry-run', '--Werror', '--style=file', ...files];
const r = spawnSync(binary, args, { cwd: root, encoding: 'utf8' });
if (r.error) {
  console.error(`clang-format could not run (${r.error.message})`);
  process.exit(1);
}
if (r.status !== 0) {
  const bad = new Set([...r.stderr.matchAll(/^(\S+?):\d+:\d+: error/gm)].map((m) => relative(root, m[1])));
  console.error(`clang-format: ${bad.size} file(s) need formatting (run \`npm run format\`):\n  ${[...bad].join('\n  ')}`);
  process.exit(1);
}
console.log(`clang-format: ${files.length} files ${fix ? 'formatted' : 'clean'}`);
