/**
 * `npr build [--cuda auto|on|off] [--portable]`: (re)builds the native addon in the installed
 * package, for installs where npm skipped the install script or to switch backends.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../bindings/errors.js';
import { findPackageRoot } from '../bindings/loader.js';

export function registerBuildCommand(program: Command): void {
  program
    .command('build')
    .description('rebuild the native addon from source (CPU always, CUDA when nvcc is found)')
    .option('--cuda <mode>', 'auto | on | off', 'auto')
    .option('--portable', 'build without -march=native (NPR_NATIVE=off)')
    .action((opts: { cuda: string; portable?: boolean }) => {
      if (!['auto', 'on', 'off'].includes(opts.cuda)) {
        throw new ConfigError(`--cuda must be auto, on or off (got '${opts.cuda}')`);
      }
      const root = findPackageRoot();
      const env = { ...process.env, NPR_CUDA: opts.cuda, NPR_NATIVE: opts.portable ? 'off' : 'on' };
      const result = spawnSync(process.execPath, [join(root, 'scripts', 'build-addon.mjs'), '--rebuild'], {
        cwd: root,
        env,
        stdio: 'inherit',
      });
      if (result.status !== 0) process.exitCode = result.status ?? 1;
    });
}
