/**
 * The trainer: DAPO format-follow RL, rejection-sampled parallel SFT and PAPO as a resumable
 * stage curriculum, the algorithms in registries, rewards and answer checking.
 */
export * from './algos/index.js';
export { checkpointPath, loadCheckpoint, readTrainerState, saveCheckpoint, type TrainerState } from './checkpoint.js';
export * from './config.js';
export { TrainingAborted } from './context.js';
export { Curriculum, type RunOptions, type StageOutput } from './curriculum.js';
export { loadProblems, type Problem, parseProblems } from './data.js';
export type { StepMetrics, TrainerEvents } from './events.js';
export { answersEqual, checkAnswer, extractAnswer, normalizeAnswer } from './rewards/answer.js';
export * from './rewards/reward.js';
export { checkRecordedStructure, RolloutStructureError, rolloutSequence, structuralFilter, type TrainSequence } from './rollouts.js';
export { learningRate, type ScheduleConfig } from './schedule.js';
export { type AcceptedTrajectory, readAccepted } from './stages/rejection.js';
export { NonFiniteError, type OptimizerConfig, packSequences, policyStep, sftStep } from './update.js';
