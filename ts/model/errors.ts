/**
 * Named errors of the model-directory layer (safetensors, config.json, HF directories, tokenizer
 * files). Each message names the file (and the tensor or field) that is wrong and says what to do.
 * Every class derives from NprError so callers can catch the whole package's errors at once.
 *
 * Deliberately not here: errors of the native addon (TypeError/RangeError with a `code`) and of the
 * engine; a programming error in our own code is still allowed to surface as a plain Error.
 */
import { NprError } from '../bindings/errors.js';

/** A safetensors file is malformed: truncated, bad header, unknown dtype, lying offsets, I/O. */
export class SafetensorsError extends NprError {
  override name = 'SafetensorsError';
  constructor(
    /** The file the problem was found in. */
    readonly file: string,
    message: string,
    /** The tensor concerned, when there is one. */
    readonly tensor?: string,
  ) {
    super(`${file}: ${message}`);
  }
}

/** config.json is missing, is not a Qwen3 config, or has a field with a bad value. */
export class ModelConfigError extends NprError {
  override name = 'ModelConfigError';
  constructor(
    readonly file: string,
    message: string,
    /** The config.json field concerned (snake_case, as written in the file). */
    readonly field?: string,
  ) {
    super(`${file}: ${message}`);
  }
}

/** A tensor the config requires is not in the checkpoint. */
export class MissingTensorError extends NprError {
  override name = 'MissingTensorError';
  constructor(
    readonly file: string,
    readonly tensor: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
  }
}

/** A tensor is present but its shape disagrees with what config.json implies. */
export class ShapeMismatchError extends NprError {
  override name = 'ShapeMismatchError';
  constructor(
    readonly file: string,
    readonly tensor: string,
    readonly expected: readonly number[],
    readonly actual: readonly number[],
    hint: string,
  ) {
    super(`${file}: tensor '${tensor}' has shape [${actual.join(', ')}] but config.json implies [${expected.join(', ')}]; ${hint}`);
  }
}

/** A tensor is in the checkpoint that a Qwen3ForCausalLM does not have (and is not known to be harmless). */
export class UnexpectedTensorError extends NprError {
  override name = 'UnexpectedTensorError';
  constructor(
    readonly file: string,
    readonly tensor: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
  }
}

/** A Hugging Face model directory is incomplete or inconsistent (no weights, bad index, target exists). */
export class HfDirectoryError extends NprError {
  override name = 'HfDirectoryError';
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
  }
}

/** tokenizer.json / tokenizer_config.json could not be loaded, or the chat template failed to render. */
export class TokenizerError extends NprError {
  override name = 'TokenizerError';
}
