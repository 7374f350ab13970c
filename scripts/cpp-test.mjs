#!/usr/bin/env node
// Builds and runs the C++ test executable (no Node inside it): `npm run test:cpp [-- FILTER]`.
// It is built in the addon's tree (build/, configured by `npm install`), with the same switches;
// the build is incremental, so a second run starts at once.
//   --sanitize    build it separately with clang + AddressSanitizer/LeakSanitizer (build-asan/)
//                 and run that instead (needs clang and libclang-rt; Debian: clang libclang-rt-14-dev)
//   --build-only  build it and stop
// Any other argument is a name filter passed to the executable. Where the machine has two cores
// or more and every filter excludes (`-name`), the cases run as two processes side by side: the
// emulator's attention cases (the longest: about two of the sanitizer run's minutes) in one, the
// rest in the other; each one's output is printed whole as it ends, then the two summed.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const sanitize = args.includes('--sanitize');
const buildOnly = args.includes('--build-only');
const filter = args.filter((a) => a !== '--sanitize' && a !== '--build-only');
const parallel = String(Math.max(1, availableParallelism()));

function run(cmd, cmdArgs, env = process.env) {
  const r = spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'inherit', env });
  if (r.error) {
    console.error(`npr test:cpp: could not run ${cmd}: ${r.error.message}`);
    process.exit(1);
  }
  return r.status ?? 1;
}

let exe = join(root, 'build', 'tests', 'npr_tests');
let env = process.env;
if (sanitize) {
  const clang = spawnSync('clang++', ['--version']);
  if (clang.error || clang.status !== 0) {
    console.error('npr test:cpp --sanitize needs clang++ (Debian: apt-get install clang libclang-rt-14-dev)');
    process.exit(1);
  }
  const dir = join(root, 'build-asan');
  const configure = [
    '-S',
    root,
    '-B',
    dir,
    '-G',
    'Ninja',
    '-DCMAKE_BUILD_TYPE=RelWithDebInfo',
    // RelWithDebInfo's optimisation without its full -g: CMakeLists.txt adds line tables.
    '-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -DNDEBUG',
    '-DCMAKE_CXX_COMPILER=clang++',
    '-DNPR_SANITIZE=address',
    '-DNPR_CUDA=off',
  ];
  if (run('cmake', configure) !== 0) process.exit(1);
  if (run('cmake', ['--build', dir, '--target', 'npr_tests', '--parallel', parallel]) !== 0) process.exit(1);
  exe = join(dir, 'tests', 'npr_tests');
  env = { ...process.env, ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0:halt_on_error=1', LSAN_OPTIONS: 'report_objects=1' };
} else {
  const dir = join(root, 'build');
  if (!existsSync(join(dir, 'CMakeCache.txt'))) {
    console.error(`npr test:cpp: ${dir} is not configured; run \`npm install\` (or \`npm run build:addon\`) first`);
    process.exit(1);
  }
  console.log('npr test:cpp: building the C++ test executable (build/tests/npr_tests)');
  if (run('cmake', ['--build', dir, '--target', 'npr_tests', '--parallel', parallel]) !== 0) {
    console.error('npr test:cpp: the C++ test executable did not build (compiler output above)');
    process.exit(1);
  }
}
if (buildOnly) process.exit(0);

// The executable with these arguments, its output kept: { status, text }.
function runCaptured(cmdArgs) {
  return new Promise((done) => {
    const child = spawn(exe, cmdArgs, { cwd: root, env });
    let text = '';
    child.stdout.on('data', (d) => (text += d));
    child.stderr.on('data', (d) => (text += d));
    child.on('error', (e) => done({ status: 1, text: `npr test:cpp: could not run ${exe}: ${e.message}\n` }));
    child.on('close', (status, signal) => done({ status: status ?? 1, text: signal ? `${text}(killed by ${signal})\n` : text }));
  });
}

const heavy = 'emu_attention_';
if (availableParallelism() < 2 || filter.some((f) => !f.startsWith('-'))) process.exit(run(exe, filter, env));
const parts = [runCaptured([...filter, heavy]), runCaptured([...filter, `-${heavy}`])].map((p) =>
  p.then((r) => {
    process.stdout.write(r.text);
    return r;
  }),
);
const results = await Promise.all(parts);
const sum = [0, 0, 0];
for (const r of results) {
  const m = /(\d+) passed, (\d+) failed, (\d+) skipped\s*$/.exec(r.text);
  if (m) for (let i = 0; i < 3; ++i) sum[i] += Number(m[i + 1]);
}
console.log(`${sum[0]} passed, ${sum[1]} failed, ${sum[2]} skipped (two processes)`);
process.exit(results.every((r) => r.status === 0) ? 0 : 1);
