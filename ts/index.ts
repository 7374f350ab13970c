/**
 * npr-runtime: train language models to reason in native parallel and run them with a
 * parallel engine. This entry point re-exports the public API.
 */
export { backends, buildInfo, configure } from './bindings/backends.js';
export { ConfigError, NativeLoadError, NprError } from './bindings/errors.js';
export type {
  BackendsInfo,
  BuildInfo,
  CpuInfo,
  CudaInfo,
  GemmOptions,
  SimdLevel,
} from './bindings/native.js';
export * from './engine/index.js';
export { gemm, gemmAsync } from './kernels/gemm.js';
export { causalBatch, type PackedBatch, type Structure, scoredCount } from './model/batch.js';
export { expectedParameters, Qwen3Config } from './model/config.js';
export * from './model/errors.js';
export { type HfModelDirectory, loadHfDirectory, saveHfDirectory, type TokenizerFiles } from './model/hf_dir.js';
export { type AdamWOptions, type ForwardResult, Model } from './model/model.js';
export { addNprSpecialTokens, NPR_TAGS } from './model/special_tokens.js';
export { HfTokenizer } from './model/tokenizer.js';
export * from './parallel/index.js';
export * from './trainer/index.js';
