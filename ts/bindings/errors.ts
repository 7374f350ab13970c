/**
 * Named errors of the package. Each message says what was wrong and what to do about it.
 * Errors raised by the native addon are plain TypeError / RangeError / Error with a `code`
 * (the native status name, e.g. "CUDA_ERROR"); these classes cover the TypeScript side.
 */

export class NprError extends Error {
  override name = 'NprError';
}

/** The native addon could not be found or loaded. */
export class NativeLoadError extends NprError {
  override name = 'NativeLoadError';
}

/** An environment variable or option could not be understood. */
export class ConfigError extends NprError {
  override name = 'ConfigError';
}
