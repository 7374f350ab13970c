/**
 * The digit chains the demo's tasks are made of: from a two-digit seed `ab`, each next digit is
 * a fixed function of the two before it (a local, fixed-offset rule a tiny model learns in
 * minutes). `fib` is Fibonacci mod 10 (the evaluated families); `ramp` (Fibonacci plus one)
 * and `hop` (2a + b) mod 10 are the rules of the families that teach the tag grammar, so that
 * the evaluated families' work never appears in the parallel format before stage 1. Two grammar
 * rules, not one: with a single one, "inside a step the rule is ramp" was a shortcut the base
 * took (measured: in the tag format it ran ramp chains for fib prompts, 100% of the time).
 */
export type ChainRule = 'fib' | 'ramp' | 'hop';

export const CHAIN_RULES: Record<ChainRule, (a: number, b: number) => number> = {
  fib: (a, b) => (a + b) % 10,
  ramp: (a, b) => (a + b + 1) % 10,
  hop: (a, b) => (2 * a + b) % 10,
};

/** The `length` digits after seed `seed` (two digits). */
export function chainDigits(rule: ChainRule, seed: string, length: number): string {
  if (!/^[0-9]{2}$/.test(seed)) throw new RangeError(`chain seed must be two digits (got '${seed}')`);
  const f = CHAIN_RULES[rule];
  let a = Number(seed[0]);
  let b = Number(seed[1]);
  let out = '';
  for (let i = 0; i < length; i++) {
    const c = f(a, b);
    out += String(c);
    a = b;
    b = c;
  }
  return out;
}
