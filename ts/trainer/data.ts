/**
 * Problems for training: a JSONL file of `{question, answer}` lines (the format users bring
 * their own data in), read with a clear message for every bad line (the line is skipped and
 * reported, never silently used), a seeded order per epoch, and prompt rendering.
 */
import { readFile } from 'node:fs/promises';
import { ConfigError } from '../bindings/errors.js';
import type { PromptConfig } from './config.js';

export interface Problem {
  /** 0-based line-derived id (stable across runs). */
  id: number;
  question: string;
  answer: string;
}

export interface LoadedProblems {
  problems: Problem[];
  /** One message per skipped line. */
  skipped: string[];
}

export async function loadProblems(file: string): Promise<LoadedProblems> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read the data file ${file}: ${(e as Error).message}`);
  }
  return parseProblems(text, file);
}

export function parseProblems(text: string, file = '(data)'): LoadedProblems {
  const problems: Problem[] = [];
  const skipped: string[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      skipped.push(`${file}:${i + 1}: not valid JSON (${(e as Error).message}); line skipped`);
      return;
    }
    const o = v as Record<string, unknown>;
    if (typeof o?.question !== 'string' || !o.question.trim()) {
      skipped.push(`${file}:${i + 1}: no "question" string; line skipped`);
      return;
    }
    if ((typeof o.answer !== 'string' && typeof o.answer !== 'number') || String(o.answer).trim() === '') {
      skipped.push(`${file}:${i + 1}: no "answer" (string or number); line skipped`);
      return;
    }
    problems.push({ id: i, question: o.question, answer: String(o.answer) });
  });
  if (problems.length === 0)
    throw new ConfigError(`${file} holds no usable {question, answer} line${skipped.length ? ` (${skipped[0]})` : ''}`);
  return { problems, skipped };
}

/** Mulberry32 over a 32-bit seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The problem at global draw index `cursor`: epoch e = floor(cursor / n) uses a shuffle seeded by (seed, e). */
export function problemAt(problems: readonly Problem[], seed: number, cursor: number): Problem {
  const n = problems.length;
  const epoch = Math.floor(cursor / n);
  const order = problems.map((_, i) => i);
  const rand = seededRandom(seed * 7919 + epoch * 104729 + 1);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  return problems[order[cursor % n] as number] as Problem;
}

export function renderPrompt(p: Problem, cfg: Required<PromptConfig>): string {
  return cfg.template.replaceAll('{question}', p.question).replaceAll('{instruction}', cfg.instruction);
}
