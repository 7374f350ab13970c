/**
 * The parallel-structure layer: the tag schema, the structure builder (Algorithms 1 and 2 in
 * our convention, docs/structure.md), packing into a PackedBatch, the stage-1 format score,
 * the streaming pre-branch validator, and an SVG picture of the visibility mask.
 */
export {
  type BlockInfo,
  type BuildOk,
  type BuildOptions,
  type BuildRejected,
  type BuildResult,
  buildFromIds,
  buildFromScan,
  buildFromText,
  buildStructure,
} from './builder.js';
export { REJECTION_KINDS, type RejectionKind, type StructureFault } from './errors.js';
export {
  FORMAT_PENALTIES,
  type FormatFault,
  type FormatFaultKind,
  type FormatReport,
  formatScore,
  lastBoxed,
} from './format_score.js';
export { type GrammarAction, type GrammarOptions, TagGrammar, type Transition } from './grammar.js';
export { branchPath, isVisible, packStructured, type StructuredSequence, visibilityMask } from './pack.js';
export { findTags, type ScannedTokens, scanIds, scanText, type TagHit, tokenPieces } from './scan.js';
export { type PictureOptions, visibilitySvg } from './svg.js';
export { isNprTag, MAX_TAG_LENGTH, PLAN_LABEL, planLabel, type TagIds, tagIdsFromTokenizer } from './tags.js';
export {
  type ForkDecision,
  type ForkRefusal,
  PreBranchValidator,
  type ValidatorEvent,
  type ValidatorOptions,
} from './validator.js';
