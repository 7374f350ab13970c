/**
 * Rewards of the NPR stages, as pure functions over one response:
 *
 *   stage 1  format passes (score exactly 0): accuracy +1 / -1; format fails: the format
 *            penalty in [-2, 0) alone (accuracy does not count), as the paper states (NPR's
 *            release has this combination commented out and scores accuracy only).
 *   stage 3  accuracy +1 / -1 after the structural filter (the builder decides validity).
 *   DAPO overlong shaping: min(-(len - (maxLen - buffer)) / buffer * factor, 0), added.
 *
 * DAPO dynamic sampling keeps only groups whose rewards disagree (`informativeGroups`).
 * Not here: answer extraction (answer.ts), the format rules (ts/parallel/format_score.ts).
 */
import { formatScore } from '../../parallel/format_score.js';
import { checkAnswer } from './answer.js';

export interface RewardOptions {
  /** Look only at the last N characters for the answer (NPR: 300). Default 300. */
  answerTailChars?: number;
  /** Overlong shaping; omitted = off. */
  overlong?: { maxLength: number; buffer: number; factor?: number };
}

export interface RewardResult {
  reward: number;
  correct: boolean;
  formatValid: boolean;
  formatScore: number;
}

export function accuracyReward(correct: boolean): number {
  return correct ? 1 : -1;
}

/** DAPO's soft overlong penalty for a response of `length` tokens (0 until the buffer). */
export function overlongPenalty(length: number, o: { maxLength: number; buffer: number; factor?: number }): number {
  const expected = o.maxLength - o.buffer;
  if (length <= expected || o.buffer <= 0) return 0;
  return Math.min((-(length - expected) / o.buffer) * (o.factor ?? 1), 0);
}

/** Stage 1: format gate, then accuracy; plus overlong shaping. */
export function formatFollowReward(response: string, gold: string, length: number, options: RewardOptions = {}): RewardResult {
  const format = formatScore(response);
  const correct = checkAnswer(response, gold, { tailChars: options.answerTailChars ?? 300 });
  const base = format.valid ? accuracyReward(correct) : format.score;
  const shaped = options.overlong ? overlongPenalty(length, options.overlong) : 0;
  return { reward: base + shaped, correct, formatValid: format.valid, formatScore: format.score };
}

/** Stage 3 / SR: accuracy only (validity is the structural filter's decision). */
export function accuracyOnlyReward(response: string, gold: string, length: number, options: RewardOptions = {}): RewardResult {
  const correct = checkAnswer(response, gold, { tailChars: options.answerTailChars ?? 300 });
  const format = formatScore(response);
  const shaped = options.overlong ? overlongPenalty(length, options.overlong) : 0;
  return { reward: accuracyReward(correct) + shaped, correct, formatValid: format.valid, formatScore: format.score };
}

/** Group ids whose rewards are not all equal (DAPO's filter_groups, metric = reward). */
export function informativeGroups(rewards: ArrayLike<number>, groups: ArrayLike<number>): Set<number> {
  const seen = new Map<number, { first: number; differs: boolean }>();
  for (let i = 0; i < rewards.length; i++) {
    const g = groups[i] as number;
    const r = rewards[i] as number;
    const s = seen.get(g);
    if (!s) seen.set(g, { first: r, differs: false });
    else if (s.first !== r) s.differs = true;
  }
  return new Set([...seen].filter(([, s]) => s.differs).map(([g]) => g));
}
