/**
 * Runtime configuration read from the environment, resolved once at the edge (when the addon
 * is first loaded) and passed down; nothing deeper reads process.env.
 *
 * NPR_THREADS: size of the CPU thread pool (default: the cores this process may use).
 * NPR_SIMD: 'avx512' | 'avx2' | 'scalar' to force a lower SIMD level (default: the best).
 */
import { ConfigError } from './errors.js';
import type { SimdLevel } from './native.js';

export interface RuntimeConfig {
  threads?: number;
  simd?: SimdLevel;
}

const SIMD_LEVELS: readonly SimdLevel[] = ['scalar', 'avx2', 'avx512'];

export function resolveRuntimeConfig(env: NodeJS.ProcessEnv): RuntimeConfig {
  const config: RuntimeConfig = {};
  const threads = env.NPR_THREADS?.trim();
  if (threads) {
    const n = Number(threads);
    if (!Number.isInteger(n) || n < 1 || n > 1024) {
      throw new ConfigError(`NPR_THREADS must be an integer in [1, 1024] (got '${threads}'); unset it to use every core`);
    }
    config.threads = n;
  }
  const simd = env.NPR_SIMD?.trim().toLowerCase();
  if (simd) {
    if (!SIMD_LEVELS.includes(simd as SimdLevel)) {
      throw new ConfigError(`NPR_SIMD must be one of ${SIMD_LEVELS.join(', ')} (got '${env.NPR_SIMD}'); unset it to use the best level`);
    }
    config.simd = simd as SimdLevel;
  }
  return config;
}
