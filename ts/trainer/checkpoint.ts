/**
 * Atomic checkpoints: a Hugging Face model directory plus the trainer state (step, stage, data
 * cursor, metrics so far) and the AdamW moments (optimizer.bin: m then v, f32), written to a
 * temporary directory and renamed into place. The previous checkpoint is moved aside first and
 * removed last, so a kill at any moment leaves one whole checkpoint (`dir` or `dir.old`);
 * `loadCheckpoint` reads whichever is whole.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { native } from '../bindings/loader.js';
import { Model } from '../model/model.js';

export interface TrainerState {
  stage: string;
  /** Optimizer steps done in this stage. */
  step: number;
  /** Problems drawn so far in this stage (the data cursor). */
  cursor: number;
  /** Seed the stage's randomness derives from (with step and cursor it is the whole RNG state). */
  seed: number;
  /** The model's AdamW step count and whether optimizer.bin holds its moments. */
  optimizerStep: number;
  optimizerSaved: boolean;
  /** Stage-specific state (rejection: accepted so far, etc.). */
  extra?: Record<string, unknown>;
}

const STATE = 'trainer-state.json';
const OPTIMIZER = 'optimizer.bin';

/** Writes model + state atomically to `dir`. */
export async function saveCheckpoint(
  dir: string,
  model: Model,
  state: Omit<TrainerState, 'optimizerStep' | 'optimizerSaved'>,
): Promise<void> {
  await mkdir(dirname(dir), { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  await rm(tmp, { recursive: true, force: true });
  await model.save(tmp, { overwrite: true });
  const n = model.paramCount;
  const moments = new Float32Array(2 * n);
  let optimizerStep = 0;
  let optimizerSaved = false;
  if (model.backend === 'cpu') {
    optimizerStep = native().optimizerState(model.nativeHandle, moments.subarray(0, n), moments.subarray(n));
    await writeFile(`${tmp}/${OPTIMIZER}`, new Uint8Array(moments.buffer));
    optimizerSaved = true;
  }
  const full: TrainerState = { ...state, optimizerStep, optimizerSaved };
  await writeFile(`${tmp}/${STATE}`, `${JSON.stringify(full, null, 2)}\n`);
  const old = `${dir}.old`;
  if (existsSync(dir)) {
    await rm(old, { recursive: true, force: true });
    await rename(dir, old);
  }
  await rename(tmp, dir);
  await rm(old, { recursive: true, force: true });
}

/** The whole checkpoint at `dir` (or its `.old` twin after a kill mid-swap), or undefined. */
export function checkpointPath(dir: string): string | undefined {
  if (existsSync(`${dir}/${STATE}`)) return dir;
  if (existsSync(`${dir}.old/${STATE}`)) return `${dir}.old`;
  return undefined;
}

export async function readTrainerState(dir: string): Promise<TrainerState | undefined> {
  const p = checkpointPath(dir);
  if (!p) return undefined;
  return JSON.parse(await readFile(`${p}/${STATE}`, 'utf8')) as TrainerState;
}

/** Loads the model of a checkpoint and restores its optimizer moments. */
export async function loadCheckpoint(dir: string, backend: 'cpu' | 'cuda' | 'auto'): Promise<{ model: Model; state: TrainerState }> {
  const p = checkpointPath(dir);
  if (!p) throw new Error(`no whole checkpoint at ${dir}`);
  const state = JSON.parse(await readFile(`${p}/${STATE}`, 'utf8')) as TrainerState;
  const model = await Model.load(p, { backend });
  if (state.optimizerSaved && model.backend === 'cpu') {
    const buf = await readFile(`${p}/${OPTIMIZER}`);
    const n = model.paramCount;
    const all = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    if (all.length !== 2 * n) throw new Error(`${p}/${OPTIMIZER} holds ${all.length} floats; the model needs ${2 * n}`);
    native().setOptimizerState(model.nativeHandle, all.subarray(0, n), all.subarray(n), state.optimizerStep);
  }
  return { model, state };
}
