/** `npr backends [--json]`: what this installation can run on. */
import type { Command } from 'commander';
import { backends, buildInfo } from '../bindings/backends.js';

export function registerBackendsCommand(program: Command): void {
  program
    .command('backends')
    .description('show the CPU and CUDA backends of this installation')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) => {
      const b = backends();
      const build = buildInfo();
      if (opts.json) {
        console.log(JSON.stringify({ ...b, build }));
        return;
      }
      console.log(`cpu:  ${b.cpu.threads} threads (of ${b.cpu.cores} cores), SIMD ${b.cpu.simd} (best ${b.cpu.simdBest})`);
      const cuda = b.cuda.compiled
        ? b.cuda.devices > 0
          ? `${b.cuda.devices} device(s), ${b.cuda.deviceName ?? 'unknown'}`
          : `compiled (${build.cudaArchitectures}), no device: ${b.cuda.reason}`
        : (b.cuda.reason ?? 'not compiled');
      console.log(`cuda: ${cuda}`);
      console.log(`build: ${build.compiler}${build.native ? ', -march=native' : ', portable'}`);
    });
}
