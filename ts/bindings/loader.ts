/**
 * Finds and loads the native addon (build/Release/npr.node, via node-gyp-build) from the
 * package root, found by walking up from this file to our package.json, so it works from ts/
 * (tests), dist/ts/ (compiled) and an installed node_modules copy alike. The environment's
 * runtime settings are applied once, on first load.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveRuntimeConfig } from './config.js';
import { NativeLoadError } from './errors.js';
import { EXPECTED_ABI_VERSION, type NativeAddon } from './native.js';

const require = createRequire(import.meta.url);
const PACKAGE_NAME = 'npr-runtime';

/** The directory holding npr-runtime's package.json, from `start` upwards. */
export function findPackageRoot(start: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = start;
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === PACKAGE_NAME) return dir;
      } catch {
        // an unreadable package.json is not ours; keep walking
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new NativeLoadError(`could not find the ${PACKAGE_NAME} package.json above ${start}`);
    dir = parent;
  }
}

let cached: NativeAddon | undefined;

/** The loaded addon (loaded and configured on first call). */
export function native(): NativeAddon {
  if (cached) return cached;
  const root = findPackageRoot();
  let addon: NativeAddon;
  try {
    const load = require('node-gyp-build') as (dir: string) => unknown;
    addon = load(root) as NativeAddon;
  } catch (cause) {
    throw new NativeLoadError(
      `the native addon of ${PACKAGE_NAME} is not built or failed to load (${(cause as Error).message}).\n` +
        `Build it from ${root} with \`npm run build:addon\` or \`npx npr build\`. If it was installed as a dependency ` +
        `with npm >= 11, its install script may have been blocked: approve it (\`npm install-scripts approve ${PACKAGE_NAME}\`) ` +
        `and run \`npm rebuild ${PACKAGE_NAME}\`.`,
      { cause },
    );
  }
  if (addon.abiVersion !== EXPECTED_ABI_VERSION) {
    throw new NativeLoadError(
      `the native addon at ${root} has ABI version ${addon.abiVersion}, this code expects ${EXPECTED_ABI_VERSION}: ` +
        'it is a stale build; rebuild it with `npm run build:addon`',
    );
  }
  const config = resolveRuntimeConfig(process.env);
  if (config.threads !== undefined || config.simd !== undefined) addon.configure(config);
  cached = addon;
  return addon;
}
