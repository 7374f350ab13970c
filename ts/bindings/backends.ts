/**
 * What this installation can run on: the CPU (always) and CUDA (when compiled in and a
 * device answers), and the knobs of the CPU runtime.
 */
import { native } from './loader.js';
import type { BackendsInfo, BuildInfo, SimdLevel } from './native.js';

/** `{cpu: {threads, simd, ...}, cuda: {compiled, devices, reason, ...}}`. */
export function backends(): BackendsInfo {
  return native().backends();
}

/** Resizes the CPU thread pool and/or forces a SIMD level (for tests of the AVX2 path). */
export function configure(options: { threads?: number; simd?: SimdLevel }): BackendsInfo {
  return native().configure(options);
}

export function buildInfo(): BuildInfo {
  return native().buildInfo();
}
