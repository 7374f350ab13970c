#!/usr/bin/env node
// Compiles every Hopper kernel file (cpp/**/*_sm90a.cu) for sm_90a with nvcc and fails when
// ptxas reports that it had to serialise the warpgroup MMAs (C7513: "wgmma.mma_async
// instructions are serialized", C7512 the same for want of registers, C7519: "warpgroup.arrive
// is injected") or that it ignored a register hand-over (C7508: "'setmaxnreg' ignored", which
// leaves a warp-specialised kernel's consumers at the entry count). ptxas still builds such
// code, and it still computes the right numbers, just without the overlap (or the registers)
// the kernels are written for: no test would notice. Also prints each kernel's registers and spill bytes, and
// fails where the one-kernel decode step's static shared memory passes what its streamed form
// leaves for it when it sizes its ring (kStaticSmemBytes, model/qwen3_step_kernel.cuh).
// Skips (exit 0, with a line) where nvcc is absent.
// Usage: node scripts/wgmma-check.mjs
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const nvcc = ['nvcc', '/usr/local/cuda/bin/nvcc'].find((n) => spawnSync(n, ['--version']).status === 0);
if (!nvcc) {
  console.log('wgmma-check: no nvcc on this machine, skipped');
  process.exit(0);
}

function sources(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (name.endsWith('_sm90a.cu')) out.push(p);
  }
  return out;
}

// Each entry function's registers and spill bytes as ptxas reported them (for the log only: a
// session without a GPU sees what a change did to the kernels' register budget).
function kernelResources(text) {
  const out = [];
  let kernel = null;
  let spill = '';
  for (const line of text.split('\n')) {
    const entry = /Compiling entry function '([^']+)'/.exec(line);
    if (entry) {
      kernel = entry[1];
      spill = '';
      continue;
    }
    const s = /(\d+) bytes spill stores, (\d+) bytes spill loads/.exec(line);
    if (s) spill = `, spill ${s[1]}/${s[2]} B`;
    const regs = /Used (\d+) registers/.exec(line);
    if (regs && kernel) {
      const short = /(\d*[A-Za-z_]+_kernel|\d*attn_fwd_[A-Za-z_]+|\d*[a-z_]+probe[a-z_]*)(I.*?E)?E/.exec(kernel);
      // Template arguments (Itanium mangling: I Li128E Lb0E E) as <128, 0>.
      const args = short?.[2] ? `<${[...short[2].matchAll(/L[ib](\d+)E/g)].map((m) => m[1]).join(', ')}>` : '';
      out.push(`${short ? short[1].replace(/^\d+/, '') + args : kernel}: ${regs[1]} registers${spill}`);
      kernel = null;
    }
  }
  return out;
}

// The one-kernel step's entry functions whose static shared memory passes `limit` bytes.
function stepSmemOver(text, limit) {
  const out = [];
  let kernel = null;
  for (const line of text.split('\n')) {
    const entry = /Compiling entry function '([^']+)'/.exec(line);
    if (entry) kernel = entry[1];
    const smem = /Used \d+ registers.*?(\d+) bytes smem/.exec(line);
    if (smem && kernel?.includes('step_kernel') && Number(smem[1]) > limit) out.push(`${kernel}: ${smem[1]} bytes`);
  }
  return out;
}
const stepHeader = readFileSync(join(root, 'cpp', 'model', 'qwen3_step_kernel.cuh'), 'utf8');
const stepStaticLimit = Number(/kStaticSmemBytes = (\d+);/.exec(stepHeader)?.[1]);
if (!Number.isFinite(stepStaticLimit)) {
  console.log('wgmma-check: no kStaticSmemBytes = N; in cpp/model/qwen3_step_kernel.cuh');
  process.exit(1);
}

// nvcc for one file: its exit status and ptxas' text (files compile side by side: CI's time).
function compile(file, out) {
  const args = ['-std=c++17', '-arch=sm_90a', `-I${join(root, 'cpp')}`, '--expt-relaxed-constexpr'];
  args.push('-Xptxas', '-v', '-c', file, '-o', out);
  return new Promise((done) => {
    const child = spawn(nvcc, args);
    let text = '';
    child.stdout.on('data', (d) => (text += d));
    child.stderr.on('data', (d) => (text += d));
    child.on('close', (status) => done({ status, text }));
  });
}

const tmp = mkdtempSync(join(tmpdir(), 'wgmma-check-'));
let failed = false;
try {
  const files = sources(join(root, 'cpp'));
  const results = new Array(files.length);
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const i = next++;
      results[i] = await compile(files[i], join(tmp, `k${i}.o`));
    }
  };
  const width = Math.max(1, Math.min(4, availableParallelism()));
  await Promise.all(Array.from({ length: width }, worker));
  files.forEach((file, i) => {
    const { status, text } = results[i];
    const name = relative(root, file);
    if (status !== 0) {
      console.log(`wgmma-check: ${name} does not compile:\n${text}`);
      failed = true;
      return;
    }
    const serialised = text
      .split('\n')
      .filter((l) => /C7508|C7512|C7513|C7519|serialized|warpgroup\.arrive is injected|setmaxnreg' ignored/.test(l));
    for (const l of serialised) console.log(`wgmma-check: ${name}: ${l.trim()}`);
    failed ||= serialised.length > 0;
    console.log(`wgmma-check: ${name}: ${serialised.length === 0 ? 'no serialised wgmma' : 'SERIALISED'}`);
    for (const k of kernelResources(text)) console.log(`  ${k}`);
    for (const k of stepSmemOver(text, stepStaticLimit)) {
      console.log(`wgmma-check: ${name}: static shared memory over kStaticSmemBytes (${stepStaticLimit}): ${k}`);
      failed = true;
    }
  });
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
