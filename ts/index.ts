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
export { gemm, gemmAsync } from './kernels/gemm.js';
