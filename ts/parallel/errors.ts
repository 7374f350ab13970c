/**
 * The named ways a response can fail the structure grammar. The builder returns one of these
 * (it never throws on a malformed response); the streaming validator records them and goes on.
 * Each kind has a one-line meaning, used by docs/structure.md, `npr inspect` and messages.
 *
 * Deliberately not here: format-score faults (format_score.ts grades style, not structure).
 */

export const REJECTION_KINDS = {
  'unclosed-block': 'the response ends inside a block (a guideline, plan, step or takeaway is still open)',
  'step-outside-guideline': '<step> where no guideline precedes it (outside any block)',
  'plan-outside-guideline': '<plan> outside a <guideline> ... </guideline>',
  'nested-step': '<step> while a step is open (a step inside a step needs its own guideline, and nesting on)',
  'nested-guideline': '<guideline> inside a guideline, between steps, or inside a step while nesting is off',
  'depth-limit': '<guideline> inside a step would nest deeper than maxDepth',
  'guideline-without-plans': '</guideline> closes a guideline that has no <plan>',
  'tag-in-guideline': 'a tag other than <plan> inside a guideline (e.g. <step> before </guideline>)',
  'tag-in-plan': 'a tag other than </plan> inside a plan',
  'step-count-mismatch': 'the block has a different number of steps than plans',
  'close-step-without-open': '</step> with no open step',
  'takeaway-in-step': '<takeaway> while a step is open',
  'takeaway-before-step': '<takeaway> before any step of its block, or outside any block',
  'tag-in-takeaway': 'a tag other than </takeaway> inside a takeaway',
  'stray-close-tag': 'a closing tag (</guideline>, </plan>, </takeaway>) with nothing of its kind open',
  'empty-region': 'text mode only: no token starts inside a step (or before the first step), so it has no first token',
  'bad-input': 'the arguments are unusable: prompt length outside the sequence, pieces not matching ids, two tags with one id',
} as const;

export type RejectionKind = keyof typeof REJECTION_KINDS;

/** A structural fault: its kind, the token index it was found at, and a sentence for people. */
export interface StructureFault {
  reason: RejectionKind;
  /** Token index (builder) or character/token offset in the stream (validator). */
  at: number;
  message: string;
}
