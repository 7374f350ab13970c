/**
 * The NPR engine: continuous batching over requests and their branches, fork at `</guideline>`
 * and join before `<takeaway>`, a branch-aware token budget, rollouts that training can score
 * exactly as they were decoded.
 */
export { Branch, type BranchState } from './branch.js';
export { DEFAULT_FORK_RESERVE, type ForkReserve, forkCost, maxBlocksPerRequest, TokenLedger } from './budget.js';
export { type Choice, type ChooseRow, logSoftmaxAt, NativeChooser, ScriptedChooser, type TokenChooser } from './chooser.js';
export { CharCodec, codecFromTokenizer, JOIN_TEXT, stepPrefixText, type TokenCodec } from './codec.js';
export { Engine, type EngineOptions } from './engine.js';
export { assembleRollout, rolloutBatch, rolloutToJson } from './rollout.js';
export { StepLogits } from './step-logits.js';
export type * from './types.js';
