/**
 * The whole NPR curriculum from your own TypeScript, through the package's public API:
 * build a curriculum from a config object, subscribe to typed events for progress and metrics,
 * abort with an AbortSignal, and read the outputs. `npr train --config FILE` is a thin layer
 * over exactly this.
 *
 *   import { runExample } from './examples/train.js';
 *   await runExample({ model: 'models/tiny-base', data: 'data/train.jsonl', out: 'runs/npr' });
 */
import { Curriculum, type CurriculumConfig, Model, type StageOutput, type StepMetrics } from 'npr-runtime';

export interface ExampleOptions {
  /** Base model directory (Hugging Face Qwen3). */
  model: string;
  /** JSONL of {question, answer}. */
  data: string;
  out: string;
  /** 'char' for the character-level test models; 'tokenizer' for a model with tokenizer.json. */
  codec?: 'char' | 'tokenizer';
  /** Steps per RL stage (tiny by default). */
  steps?: number;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

export async function runExample(o: ExampleOptions): Promise<{ outputs: StageOutput[]; steps: StepMetrics[] }> {
  const log = o.log ?? console.log;
  const steps = o.steps ?? 2;
  const config: CurriculumConfig = {
    model: o.model,
    codec: o.codec ?? 'tokenizer',
    data: o.data,
    out: o.out,
    seed: 1,
    sampling: { maxNewTokens: 24, kvBlocks: 512, blockTokens: 8 },
    stages: [
      // Stage 1: format-follow RL with DAPO (sequential rollouts) -> NPR-ZERO.
      { kind: 'format-rl', name: 'npr-zero', steps, prompts: 2, samples: 4, schedule: { lr: 1e-3 } },
      // Stage 2: rejection sampling from NPR-ZERO, then parallel SFT from the ORIGINAL base -> NPR-BETA.
      { kind: 'rejection', maxSamples: 2, maxProblems: 4 },
      { kind: 'sft', name: 'npr-beta', batch: 2, schedule: { lr: 1e-3 } },
      // Stage 3: PAPO with native parallel rollouts -> NPR.
      { kind: 'papo', name: 'npr', steps, prompts: 2, samples: 3, schedule: { lr: 1e-3 } },
    ],
  };
  const run = new Curriculum(config);
  const seen: StepMetrics[] = [];
  run.on('stage-start', (e) => log(`stage ${e.stage} (${e.kind})`));
  run.on('step', (m) => {
    seen.push(m);
    log(`  ${m.stage} ${m.step}/${m.steps} reward ${m.reward ?? '-'} loss ${m.loss ?? '-'}`);
  });
  run.on('warning', (e) => log(`  warning: ${e.message}`));
  const outputs = await run.run(o.signal ? { signal: o.signal } : {});
  // The outputs are ordinary model directories: load NPR and look at it.
  const npr = await Model.load(outputs[outputs.length - 1]?.dir as string);
  log(`NPR: ${npr.paramCount} parameters at ${outputs[outputs.length - 1]?.dir}`);
  return { outputs, steps: seen };
}
