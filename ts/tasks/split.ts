/**
 * Train / held-out split by a hash of the problem's question (FNV-1a, 32 bit): a problem is
 * held out iff hash % 10 == 0, whatever generator, seed or run produced it, so the splits never
 * overlap - the pretraining corpus, the RL prompts and the evaluation all obey it.
 */
export type Split = 'train' | 'test';

export function questionHash(question: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < question.length; i++) {
    h ^= question.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export function splitOf(question: string): Split {
  return questionHash(question) % 10 === 0 ? 'test' : 'train';
}
