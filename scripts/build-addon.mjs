#!/usr/bin/env node
// Builds the native addon (build/Release/npr.node) with cmake-js. The C++ test executable is
// built in the same tree by `npm test` (scripts/cpp-test.mjs), not here.
// Run by `npm install` / `npm ci`; `--rebuild` forces a clean build.
//
// Switches (environment): NPR_CUDA=auto|on|off, CUDAARCHS, NPR_NATIVE=on|off. CMake caches what
// it found, so when a switch changes from the last build this script rebuilds from clean.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const switchesFile = join(root, 'build', 'npr-switches.json');

function fail(message) {
  console.error(`\nnpr-runtime: the native addon was not built.\n${message}\n`);
  process.exit(1);
}

const cmake = spawnSync('cmake', ['--version'], { encoding: 'utf8' });
if (cmake.error || cmake.status !== 0) {
  fail('CMake (>= 3.18) is required to build it: install it (Debian/Ubuntu: apt-get install cmake) and run `npm rebuild npr-runtime`.');
}

const switches = {
  NPR_CUDA: (process.env.NPR_CUDA || 'auto').toLowerCase(),
  CUDAARCHS: process.env.CUDAARCHS || '',
  NPR_NATIVE: (process.env.NPR_NATIVE || 'on').toLowerCase(),
};
if (!['auto', 'on', 'off'].includes(switches.NPR_CUDA)) fail(`NPR_CUDA must be auto, on or off (got '${process.env.NPR_CUDA}').`);
if (!['on', 'off'].includes(switches.NPR_NATIVE)) fail(`NPR_NATIVE must be on or off (got '${process.env.NPR_NATIVE}').`);

let previous = null;
try {
  previous = JSON.parse(readFileSync(switchesFile, 'utf8'));
} catch {
  previous = null;
}
const changed = previous !== null && JSON.stringify(previous) !== JSON.stringify(switches);
const command = process.argv.includes('--rebuild') || changed ? 'rebuild' : 'compile';
if (changed)
  console.log(`npr-runtime: build switches changed (${JSON.stringify(previous)} -> ${JSON.stringify(switches)}), rebuilding from clean`);

const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const args = [cmakeJs, command, '--directory', root, '--parallel', String(Math.max(1, availableParallelism()))];
console.log(
  `npr-runtime: building the native addon (NPR_CUDA=${switches.NPR_CUDA}, NPR_NATIVE=${switches.NPR_NATIVE}${switches.CUDAARCHS ? `, CUDAARCHS=${switches.CUDAARCHS}` : ''})`,
);
const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env: process.env });
if (result.status !== 0) {
  fail(
    switches.NPR_CUDA === 'on'
      ? 'The CUDA build failed (NPR_CUDA=on). See the CMake output above; NPR_CUDA=auto builds the CPU backend when nvcc is missing.'
      : 'See the CMake / compiler output above. A C++17 compiler and CMake >= 3.18 are required.',
  );
}
mkdirSync(dirname(switchesFile), { recursive: true });
writeFileSync(switchesFile, `${JSON.stringify(switches)}\n`);
if (!existsSync(join(root, 'build', 'Release', 'npr.node'))) fail('cmake-js finished but build/Release/npr.node is missing.');
