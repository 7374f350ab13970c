/**
 * The synthetic pretraining corpus of the demo's base model (teacher-free, as NPR): the
 * evaluated families only with sequential solutions and a plain prompt; the tag grammar only
 * through the other families (`fib-smallest`, `ramp-*`, `hop-*`), whose examples are in the NPR
 * format when the
 * prompt carries the instruction word and sequential when it does not; half of the tag-format
 * examples are trained in the parallel layout (siblings isolated, steps sharing positions), so
 * the base has met that layout - on other families - before stage 2 distils its own samples of
 * the evaluated ones into it (measured without: after SFT, steps 2..5 copied the wrong plan's
 * operand ~75% of the time). `fib-smallest` is among the grammar families because with only
 * other chain rules in steps the base ran those rules inside the steps of `fib` prompts (steps
 * 2..5 wrong under the instruction prompt; stage-1 accuracy 14% against 100% sequential, and 16
 * steps of format RL at lr 1e-3 did not fix it). Only train-split problems. Each example is the chat-rendered prompt and the response, with the loss on the
 * response and its end-of-turn token.
 */
import type { HfTokenizer } from '../model/tokenizer.js';
import { FAMILIES, parallelSolution, sequentialSolution, type TaskFamily } from './families.js';
import { splitOf } from './split.js';

/** The instruction that asks for the NPR format (prompt: question, blank line, instruction). */
export const PARALLEL_INSTRUCTION = 'parallel';

export interface CorpusMix {
  /** Weight of each family. */
  weights: Record<string, number>;
  /** Probability that a grammar-family example is in the tag format (with the instruction). */
  parallelShare: number;
  /**
   * Probability that a tag-format example is trained in the parallel layout (NPR attention mask
   * and positions, as the engine decodes it) rather than as plain causal text.
   */
  parallelLayoutShare: number;
}

export const DEFAULT_MIX: CorpusMix = {
  weights: {
    'fib-largest': 3,
    'fib-choose': 3,
    'fib-smallest': 1,
    'ramp-largest': 1,
    'ramp-smallest': 1,
    'ramp-choose': 1,
    'hop-largest': 1,
    'hop-smallest': 1,
    'hop-choose': 1,
  },
  parallelShare: 0.6,
  parallelLayoutShare: 0.5,
};

export interface CorpusExample {
  family: string;
  /** In the tag format. */
  parallel: boolean;
  /** Train it in the parallel layout (only tag-format examples). */
  parallelLayout: boolean;
  ids: number[];
  /** Tokens before the response (no loss on them). */
  promptLength: number;
}

export function promptText(question: string, parallel: boolean): string {
  return parallel ? `${question}\n\n${PARALLEL_INSTRUCTION}` : question;
}

export function corpusExample(rand: () => number, tokenizer: HfTokenizer, mix: CorpusMix = DEFAULT_MIX): CorpusExample {
  const fams = FAMILIES.filter((f) => (mix.weights[f.name] ?? 0) > 0);
  const total = fams.reduce((a, f) => a + (mix.weights[f.name] as number), 0);
  let r = rand() * total;
  let fam = fams[0] as TaskFamily;
  for (const f of fams) {
    r -= mix.weights[f.name] as number;
    if (r < 0) {
      fam = f;
      break;
    }
  }
  for (;;) {
    const p = fam.generate(rand);
    if (splitOf(p.question) !== 'train') continue;
    const parallel = !fam.evaluated && rand() < mix.parallelShare;
    const prompt = tokenizer.encodeChat([{ role: 'user', content: promptText(p.question, parallel) }], { addGenerationPrompt: true });
    const text = `${parallel ? parallelSolution(p) : sequentialSolution(p)}<|im_end|>`;
    const response = tokenizer.encode(text, { addSpecialTokens: false });
    // A character the vocabulary lacks would vanish silently from the training text.
    if (tokenizer.decode(response) !== text) throw new Error(`corpus: the tokenizer does not round-trip ${JSON.stringify(text)}`);
    const parallelLayout = parallel && rand() < mix.parallelLayoutShare;
    return { family: fam.name, parallel, parallelLayout, ids: [...prompt, ...response], promptLength: prompt.length };
  }
}
