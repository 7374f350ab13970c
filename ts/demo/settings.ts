/**
 * The demo's settings, resolved once from the command line: the full run (what `npm start`
 * does: sized to finish within 15 minutes on 2 cores of the slowest machine kind we know) and
 * the `--quick` miniature (plumbing only, well under 2 minutes). Every number the run uses is
 * here and is written into summary.json.
 */
import { join } from 'node:path';
import { findPackageRoot } from '../bindings/loader.js';

export interface DemoOptions {
  out?: string;
  seed?: number;
  quick?: boolean;
  /** Base model directory (default: the shipped tiny base). */
  model?: string;
}

export interface RlBudget {
  steps: number;
  prompts: number;
  samples: number;
  lr: number;
}

export interface DemoSettings {
  out: string;
  seed: number;
  quick: boolean;
  model: string;
  trainProblems: number;
  testProblems: number;
  k: number;
  latencyProblems: number;
  maxNewTokens: number;
  stage1: RlBudget;
  stage3: RlBudget;
  /** SR: the same rollouts as stages 1 + 3 together. */
  sr: RlBudget;
  rejection: { maxSamples: number; maxProblems: number };
  sft: { epochs: number; batch: number; lr: number };
}

/** The shipped models directory of this package (found from ts/ and from dist/ts/ alike). */
export const SHIPPED_MODELS = join(findPackageRoot(), 'models');
export const SHIPPED_BASE = join(SHIPPED_MODELS, 'npr-tiny-base');
export const SHIPPED_NPR = join(SHIPPED_MODELS, 'npr-tiny');

export function resolveDemo(o: DemoOptions): DemoSettings {
  const quick = Boolean(o.quick);
  const seed = o.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0) throw new RangeError(`--seed must be an integer >= 0 (got ${o.seed})`);
  const stage1: RlBudget = quick ? { steps: 2, prompts: 2, samples: 4, lr: 1e-4 } : { steps: 12, prompts: 8, samples: 8, lr: 1e-4 };
  const stage3: RlBudget = quick ? { steps: 2, prompts: 2, samples: 4, lr: 5e-5 } : { steps: 12, prompts: 8, samples: 8, lr: 5e-5 };
  return {
    out: o.out ?? (quick ? 'npr-demo-quick' : 'npr-demo'),
    seed,
    quick,
    model: o.model ?? SHIPPED_BASE,
    trainProblems: quick ? 64 : 4000,
    testProblems: quick ? 6 : 64,
    k: quick ? 2 : 8,
    latencyProblems: quick ? 2 : 16,
    maxNewTokens: 320,
    stage1,
    stage3,
    sr: { ...stage3, steps: stage1.steps + stage3.steps },
    rejection: quick ? { maxSamples: 2, maxProblems: 8 } : { maxSamples: 4, maxProblems: 256 },
    sft: quick ? { epochs: 1, batch: 4, lr: 1e-3 } : { epochs: 6, batch: 8, lr: 1e-3 },
  };
}
