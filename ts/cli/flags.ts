/** Parsing of numeric command-line flags, with a ConfigError naming the flag and what it takes. */
import { ConfigError } from '../bindings/errors.js';

export function integerFlag(name: string, text: string, min: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new ConfigError(`${name} must be an integer >= ${min} (got '${text}')`);
  return n;
}

export function numberFlag(name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < min || n > max) throw new ConfigError(`${name} must be a number in [${min}, ${max}] (got '${text}')`);
  return n;
}
