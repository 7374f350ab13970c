/**
 * Answer checking: extract the final answer of a response, normalise it, and decide whether it
 * equals a reference answer. Measured against the Python math-verify library's own test suite
 * (test/trainer-answer.test.ts, `npm run bench -- answer-check`).
 *
 * Extraction (latex targets): the last `\boxed{}`/`\fbox{}` (several boxes joined only by
 * commas/"and"/spacing form one list), else the text after "final answer", else the last math
 * environment ($..$, $$..$$, \(..\), \[..\]; inline ones may not span lines); (expr target) the
 * last number not glued to a preceding letter (thousands separators and decimal commas read).
 * Normalisation: \dfrac/\tfrac/\cfrac, \frac12, \sqrt3, \left/\right, spacing commands, \text
 * units, degrees, \%/percent, currency, `x =` prefixes and `=`/`\approx` chains.
 * Equivalence: lists, sets, tuples, intervals (bracket kinds must match), matrices, relations
 * (equations equal up to a non-zero factor, inequalities up to a positive one) are compared
 * structurally; their scalars through @cortex-js/compute-engine: numbers by value (rounded to
 * the decimals a literal decimal shows), expressions with unknowns at random points.
 *
 * Deliberately not here: rewards (reward.ts), format (ts/parallel/format_score.ts).
 */
import { ComputeEngine } from '@cortex-js/compute-engine';

export interface ExtractOptions {
  /** Look for \boxed{} and math environments (default true). */
  latex?: boolean;
  /** Fall back to the last number (default true). */
  expr?: boolean;
}

let engine: ComputeEngine | undefined;
const ce = (): ComputeEngine => {
  engine ??= new ComputeEngine();
  return engine;
};

/** Contents of every balanced `\boxed{...}` / `\fbox{...}` with its [start, end) span. */
function boxes(s: string): { text: string; start: number; end: number }[] {
  const out: { text: string; start: number; end: number }[] = [];
  const re = /\\(?:boxed|fbox)\s*\{/g;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    let depth = 1;
    let j = m.index + m[0].length;
    for (; j < s.length && depth > 0; j++) {
      if (s[j] === '{') depth++;
      else if (s[j] === '}') depth--;
    }
    if (depth === 0) out.push({ text: s.slice(m.index + m[0].length, j - 1), start: m.index, end: j });
  }
  return out;
}

const MATH_ENV = /\$\$([\s\S]+?)\$\$|\\\[([\s\S]+?)\\\]|\\\(([^\n]+?)\\\)|(?<!\\)\$((?:\\\$|[^\n$])+?)(?<!\\)\$/g;
const CONNECTOR = /^(?:\s|,|;|\.|\band\b|\bor\b)*$/;
const NUMBER = /(?<![A-Za-z\d])-?(?:\d{1,3}(?:,\d{3})+|\d+(?: \d{3})+(?!\d)|\d+)?(?:[.,]\d+)?(?:\/\d+)?(?![\d])/g;

function lastNumber(s: string): { text: string; at: number } | undefined {
  let best: { text: string; at: number } | undefined;
  for (const m of s.matchAll(NUMBER)) if (/\d/.test(m[0])) best = { text: m[0], at: m.index ?? 0 };
  return best;
}

/** The last math environment; environments joined only by connectors (`$1$ and $2$`) form one list. */
function lastMath(s: string): { text: string; at: number; end: number } | undefined {
  const all: { text: string; at: number; end: number }[] = [];
  for (const m of s.matchAll(MATH_ENV)) {
    const text = (m[1] ?? m[2] ?? m[3] ?? m[4] ?? '').trim();
    if (text) all.push({ text, at: m.index ?? 0, end: (m.index ?? 0) + m[0].length });
  }
  if (all.length === 0) return undefined;
  let k = all.length - 1;
  while (k > 0 && CONNECTOR.test(s.slice((all[k - 1] as { end: number }).end, (all[k] as { at: number }).at))) k--;
  const last = all[all.length - 1] as { end: number };
  return {
    text: all
      .slice(k)
      .map((m) => m.text)
      .join(','),
    at: (all[k] as { at: number }).at,
    end: last.end,
  };
}

/** The final answer of `text` (un-normalised), or undefined when none is found. */
export function extractAnswer(text0: string, options: ExtractOptions = {}): string | undefined {
  // Doubly escaped LaTeX (`\\frac` in the text) reads as single.
  const text = text0.replace(/<\|im_(?:start|end)\|>[\s\S]*$/, '').replace(/\\\\(?=[a-zA-Z{}])/g, '\\');
  const latex = options.latex ?? true;
  const expr = options.expr ?? true;
  if (latex) {
    const bs = boxes(text);
    const fin = [...text.matchAll(/final answer(?: is)?\s*:?/gi)].pop();
    // A box wins unless a "final answer is" statement comes after it.
    if (bs.length > 0 && !(fin && (fin.index ?? 0) > (bs[bs.length - 1] as { end: number }).end)) {
      // Boxes joined only by separators form one answer list: \boxed{1}, \boxed{2}.
      let k = bs.length - 1;
      while (k > 0) {
        const gap = text.slice((bs[k - 1] as { end: number }).end, (bs[k] as { start: number }).start);
        if (!/^(?:\s|,|;|\$|\\quad|\\qquad|\\,|\\text\{\s*and\s*\}|and|\\\)|\\\(|\\\]|\\\[)*$/.test(gap)) break;
        k--;
      }
      return bs
        .slice(k)
        .map((b) => b.text)
        .join(',');
    }
    const tail = fin ? text.slice(fin.index + fin[0].length) : text;
    const math = lastMath(tail);
    // A bare LaTeX answer with no environment around it (`\frac{10}{9}`): the whole text.
    if (
      !math &&
      !tail.includes('\\boxed') &&
      /\\[a-zA-Z]/.test(tail) &&
      !/[A-Za-z]{3,}\s+[A-Za-z]{3,}/.test(tail.replace(/\\[a-zA-Z]+/g, ''))
    )
      return tail.trim();
    const num = expr || fin ? lastNumber(tail) : undefined;
    if (math && (!num || num.at < math.end)) return math.text;
    if (num) return num.text;
    if (fin && tail.trim()) return tail.trim().replace(/\.$/, '');
  }
  if (expr) return lastNumber(text)?.text;
  return undefined;
}

const UNIT_WORDS =
  /^(?:cm|m|km|mm|meters?|metres?|miles?|feet|foot|ft|inches|inch|in|yards?|kg|g|grams?|pounds?|lbs?|seconds?|s|minutes?|min|hours?|hrs?|days?|weeks?|years?|units?|degrees?|dollars?|cents?|yuan|euros?|points?|people|students?|sq|square|cubic)(?:\s*\^?\s*\{?[23]\}?)?$/i;

/** Canonical LaTeX of an extracted answer (no semantics yet). */
export function normalizeAnswer(raw: string): string {
  let s = raw
    .replace(/^(\s*-?)\.(\d)/, '$10.$2')
    .replace(/\r|\n|\t/g, ' ')
    .replace(/\{,\}/g, ',')
    .replace(/,\\!\s*/g, ',');
  s = s.replace(/\\(?:left|right|big|Big|bigg|Bigg)(?![a-zA-Z])\s*/g, '');
  s = s.replace(/\\(?:displaystyle|!|,|;|:|quad|qquad)(?![a-zA-Z])|(?<!\\)\\ /g, ' ');
  s = s
    .replace(/\\[dtc]frac/g, '\\frac')
    .replace(/\\frac\s*(\d)\s*(\d)/g, '\\frac{$1}{$2}')
    .replace(/\\frac\s*(\d)\s*\{/g, '\\frac{$1}{');
  s = s.replace(/\\frac\s*\{([^{}]*)\}\s*(\d)/g, '\\frac{$1}{$2}');
  s = s.replace(/\\sqrt\s*(\d+|[a-zA-Z])/g, '\\sqrt{$1}');
  s = s.replace(/\^\s*\{?\\circ\}?|°/g, '');
  s = s.replace(/\\%|%|\bpercentage\b|\bpercent\b|\bpct\b/g, '');
  s = s.replace(/\\\$|€|£|¥/g, '').replace(/\$/g, '');
  // \text{...}: a unit is dropped (with a following ^2/^3), anything else unwrapped.
  s = s.replace(
    /\\(?:text|textbf|textit|textnormal|mbox|mathrm|mathbf|operatorname)\s*\{([^{}]*)\}(\s*\^\s*\{?[23]\}?)?/g,
    (_m, t: string) => (UNIT_WORDS.test(t.trim()) ? ' ' : ` ${t.trim()} `),
  );
  s = s.replace(/\s+(?:cm|meters?|metres?|miles?|yuan|units?|degrees?|dollars?)(?:\s*\^\s*\{?[23]\}?)?\s*$/i, '');
  s = s.replace(/\\geq?(?![a-zA-Z])|>=|≥/g, '\\ge ').replace(/\\leq?(?![a-zA-Z])|<=|≤/g, '\\le ');
  s = s
    .replace(/\\neq?(?![a-zA-Z])|!=|≠/g, '\\ne ')
    .replace(/\\gt(?![a-zA-Z])/g, '>')
    .replace(/\\lt(?![a-zA-Z])/g, '<');
  s = s.replace(/\\dots|\\ldots|\\cdots/g, '');
  s = s
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/^[.,;:\s]+|[.,;:\s]+$/g, '');
  // Bare numbers: thousands separators, spaces, decimal commas.
  if (/^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$/.test(s) && !/^-?0,/.test(s)) s = s.replace(/,/g, '');
  else if (/^-?\d+(?: \d{3})+(?:\.\d+)?$/.test(s)) s = s.replace(/ /g, '');
  else if (/^-?\d+,\d{2,}$/.test(s)) s = s.replace(',', '.');
  s = s.replace(/^\((\w)\)$/, '$1').replace(/^(-?)\.(\d)/, '$10.$2');
  return s;
}

// --- structure --------------------------------------------------------------------------------

type Node =
  | { kind: 'scalar'; text: string }
  | { kind: 'list'; ordered: boolean; open: string; close: string; items: Node[] }
  | { kind: 'union'; items: Node[] }
  | { kind: 'matrix'; rows: Node[][] }
  | { kind: 'rel'; ops: string[]; sides: string[]; chain?: boolean };

/** Splits at top-level occurrences of `sep` (outside brackets and braces). */
function splitTop(s: string, sep: RegExp): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) depth--;
    else if (depth === 0) {
      sep.lastIndex = i;
      const m = sep.exec(s);
      if (m && m.index === i && m[0].length > 0) {
        parts.push(s.slice(cur, i));
        cur = i + m[0].length;
        i = cur - 1;
      }
    }
  }
  parts.push(s.slice(cur));
  return parts.map((p) => p.trim());
}

function closingOf(s: string): number {
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    if ('([{'.includes(s[i] as string) && s[i - 1] !== '\\') depth++;
    else if (')]}'.includes(s[i] as string) && s[i - 1] !== '\\' && --depth === 0) return i;
  }
  return -1;
}

const REL = /\\ge |\\le |\\ne |<|>|=(?!=)|\\approx/y;

function parseNode(s0: string): Node {
  let s = s0.trim();
  const env = /^\\begin\{([pbvBV]?matrix|array)\}(?:\{[^}]*\})?([\s\S]*)\\end\{\1\}$/.exec(s.replace(/^\[(.*)\]$/, '$1').trim());
  if (env) {
    const rows = (env[2] as string)
      .split(/\\\\/)
      .map((r) => r.trim())
      .filter(Boolean);
    return { kind: 'matrix', rows: rows.map((r) => r.split('&').map((c) => parseNode(c))) };
  }
  if (/^\\in /.test(s)) s = s.slice(4);
  const inMatch = /^[a-zA-Z](?:_\{?\w+\}?)? ?\\in (.+)$/.exec(s);
  if (inMatch) s = inMatch[1] as string;
  const unions = splitTop(s, /\\cup|∪/y);
  if (unions.length > 1) return { kind: 'union', items: unions.map(parseNode) };
  const semis = splitTop(s, /;|\bor\b|\band\b/y).filter(Boolean);
  if (semis.length > 1) return { kind: 'list', ordered: false, open: '', close: '', items: semis.map(parseNode) };
  const commas = splitTop(s, /,/y);
  if (commas.length > 1) return { kind: 'list', ordered: false, open: '', close: '', items: commas.map(parseNode) };
  const first = s[0];
  if (first === '\\' && s.startsWith('\\{') && s.endsWith('\\}')) {
    return { kind: 'list', ordered: false, open: '{', close: '}', items: splitTop(s.slice(2, -2), /,/y).map(parseNode) };
  }
  if ((first === '(' || first === '[') && (s.endsWith(')') || s.endsWith(']')) && closingOf(s) === s.length - 1) {
    const inner = splitTop(s.slice(1, -1), /,/y);
    if (inner.length > 1)
      return { kind: 'list', ordered: true, open: first, close: s[s.length - 1] as string, items: inner.map(parseNode) };
    if (first === '(' && s.endsWith(')')) return parseNode(s.slice(1, -1));
  }
  if (first === '{' && closingOf(s) === s.length - 1) return parseNode(s.slice(1, -1));
  const pieces: string[] = [];
  const ops: string[] = [];
  let depth = 0;
  let cur = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) depth--;
    else if (depth === 0) {
      REL.lastIndex = i;
      const m = REL.exec(s);
      if (m) {
        pieces.push(s.slice(cur, i).trim());
        ops.push(m[0].trim());
        cur = i + m[0].length;
        i = cur - 1;
      }
    }
  }
  pieces.push(s.slice(cur).trim());
  if (ops.length > 0) return simplifyRelation(pieces, ops);
  return { kind: 'scalar', text: s };
}

const isLoneSymbol = (t: string) => !/\d/.test(t.replace(/_\{[^}]*\}|_\w/g, ''));
/** A left side that names the answer (`x`, `f(x)`, `|AB|`, `A:B`), not an expression with it. */
const namesAnswer = (t: string) => !/[+-]/.test(t) && !/^\s*[\d.]+\s*$/.test(t);

/** `x = a = b` -> `x = b`; `a \approx b` keeps a; `a < x < b` -> interval. */
function simplifyRelation(sides: string[], ops: string[]): Node {
  // \approx: keep what precedes it (unless that is only a name).
  const approx = ops.indexOf('\\approx');
  if (approx >= 0) {
    const before = sides.slice(0, approx + 1);
    const beforeOps = ops.slice(0, approx);
    if (before.length === 1 && /^[a-zA-Z]$/.test(before[0] as string)) return parseNode(sides.slice(approx + 1).join(' '));
    return before.length === 1 ? parseNode(before[0] as string) : simplifyRelation(before, beforeOps);
  }
  if (ops.every((o) => o === '=') && sides.length > 2)
    return { kind: 'rel', ops: ['='], sides: [sides[0] as string, sides[sides.length - 1] as string], chain: true };
  if (ops.length === 2 && ops.every((o) => o === '<' || o === '\\le') && isLoneSymbol(sides[1] as string)) {
    return {
      kind: 'list',
      ordered: true,
      open: ops[0] === '<' ? '(' : '[',
      close: ops[1] === '<' ? ')' : ']',
      items: [parseNode(sides[0] as string), parseNode(sides[2] as string)],
    };
  }
  return { kind: 'rel', ops, sides };
}

// --- equivalence ------------------------------------------------------------------------------

const decimals = (t: string): number | undefined => {
  const m = /^-?\d*\.(\d+)$/.exec(t.trim());
  return m ? (m[1] as string).length : undefined;
};

function valueAt(text: string, point: Record<string, number>): number {
  try {
    const e = ce().parse(text);
    if (!e.isValid) return Number.NaN;
    const v = Object.keys(point).length ? e.subs(point).N() : e.N();
    const re = v.re;
    return typeof re === 'number' ? re : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

function unknowns(text: string): string[] {
  try {
    const e = ce().parse(text);
    return e.isValid ? [...e.unknowns] : [];
  } catch {
    return [];
  }
}

const POINTS = [0.3719, 1.4307, -0.6531, 2.2087];

function close(a: number, b: number, ta?: string, tb?: string): boolean {
  if (!Number.isFinite(a) || !Number.isFinite(b)) return false;
  const da = ta ? decimals(ta) : undefined;
  const db = tb ? decimals(tb) : undefined;
  const k = da !== undefined && db !== undefined ? Math.min(da, db) : (da ?? db);
  if (k !== undefined && k < 12) {
    const f = 10 ** k;
    if (Math.abs(Math.round(a * f) - Math.round(b * f)) <= 1 && Math.abs(a - b) <= 1 / f) return true;
  }
  return Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(a), Math.abs(b));
}

function scalarEqual(a: string, b: string): boolean {
  if (a === b) return true;
  const vars = [...new Set([...unknowns(a), ...unknowns(b)])];
  if (vars.length === 0) return close(valueAt(a, {}), valueAt(b, {}), a, b);
  if (vars.length !== new Set(unknowns(a)).size || vars.length !== new Set(unknowns(b)).size) return false;
  return POINTS.every((_, i) => {
    const point: Record<string, number> = {};
    vars.forEach((v, j) => {
      point[v] = POINTS[(i + j) % POINTS.length] as number;
    });
    return close(valueAt(a, point), valueAt(b, point));
  });
}

/** a = k * b for one non-zero k (sign of k > 0 when `positive`), at random points. */
function proportional(a: string, b: string, positive: boolean): boolean {
  const vars = [...new Set([...unknowns(a), ...unknowns(b)])];
  let k: number | undefined;
  for (let i = 0; i < POINTS.length; i++) {
    const point: Record<string, number> = {};
    vars.forEach((v, j) => {
      point[v] = (POINTS[(i + j) % POINTS.length] as number) + 0.1 * j;
    });
    const va = valueAt(a, point);
    const vb = valueAt(b, point);
    if (!Number.isFinite(va) || !Number.isFinite(vb)) return false;
    if (Math.abs(vb) < 1e-12) {
      if (Math.abs(va) > 1e-9) return false;
      continue;
    }
    const r = va / vb;
    if (k === undefined) k = r;
    else if (!close(r, k)) return false;
  }
  return k !== undefined && Math.abs(k) > 1e-12 && (!positive || k > 0);
}

/** Relation as `d op 0` with op in {=, <, \le, \ne} (> and \ge flipped). */
function canonicalRelation(n: Extract<Node, { kind: 'rel' }>): { op: string; diff: string } | undefined {
  if (n.ops.length !== 1) return undefined;
  const [l, r] = n.sides as [string, string];
  const op = n.ops[0] as string;
  if (op === '>' || op === '\\ge') return { op: op === '>' ? '<' : '\\le', diff: `(${r})-(${l})` };
  return { op, diff: `(${l})-(${r})` };
}

/** `pred` against `gold`: a predicted equation's right side answers a plain gold; a gold equation gives its right side only when its left side names the answer. */
function nodesEqual(a: Node, b: Node): boolean {
  if (a.kind === 'rel' && b.kind !== 'rel' && a.ops.length === 1 && a.ops[0] === '=') return nodesEqual(parseNode(a.sides[1] as string), b);
  if (b.kind === 'rel' && a.kind !== 'rel' && b.ops.length === 1 && b.ops[0] === '=' && (b.chain || namesAnswer(b.sides[0] as string)))
    return nodesEqual(a, parseNode(b.sides[1] as string));
  if (a.kind === 'list' && a.items.length === 1) return nodesEqual(a.items[0] as Node, b);
  if (b.kind === 'list' && b.items.length === 1) return nodesEqual(a, b.items[0] as Node);
  if (a.kind !== b.kind) {
    if (a.kind === 'matrix' && b.kind === 'list')
      return nodesEqual({ kind: 'list', ordered: true, open: '(', close: ')', items: a.rows.flat() }, b);
    if (b.kind === 'matrix' && a.kind === 'list') return nodesEqual(b, a);
    return false;
  }
  switch (a.kind) {
    case 'scalar':
      return scalarEqual(a.text, (b as typeof a).text);
    case 'matrix': {
      const m = b as typeof a;
      return (
        a.rows.length === m.rows.length &&
        a.rows.every((r, i) => r.length === m.rows[i]?.length && r.every((c, j) => nodesEqual(c, m.rows[i]?.[j] as Node)))
      );
    }
    case 'union': {
      const u = b as typeof a;
      return a.items.length === u.items.length && a.items.every((x, i) => nodesEqual(x, u.items[i] as Node));
    }
    case 'list': {
      const l = b as typeof a;
      if (a.ordered || l.ordered) {
        if (a.items.length !== l.items.length) return false;
        if (a.ordered && l.ordered && (a.open !== l.open || a.close !== l.close)) return false;
        return a.items.every((x, i) => nodesEqual(x, l.items[i] as Node));
      }
      return a.items.every((x) => l.items.some((y) => nodesEqual(x, y))) && l.items.every((y) => a.items.some((x) => nodesEqual(x, y)));
    }
    case 'rel': {
      const r = b as typeof a;
      if (a.ops.join() === r.ops.join() && a.sides.every((s, i) => s === r.sides[i])) return true;
      const ca = canonicalRelation(a);
      const cb = canonicalRelation(r);
      if (!ca || !cb || ca.op !== cb.op) return false;
      if (ca.op === '=' || ca.op === '\\ne') {
        // x = 2 vs x = 2: same left side, compare right sides; otherwise a non-zero factor.
        if (a.sides[0] === r.sides[0] && scalarEqual(a.sides[1] as string, r.sides[1] as string)) return true;
        return proportional(ca.diff, cb.diff, false);
      }
      return proportional(ca.diff, cb.diff, true);
    }
  }
}

export interface CheckOptions extends ExtractOptions {
  /** Look only at the last N characters of the prediction (NPR uses 300); default all. */
  tailChars?: number;
}

/** Does `prediction` (a response) answer `gold` (a reference answer or solution)? */
export function checkAnswer(prediction: string, gold: string, options: CheckOptions = {}): boolean {
  const text = options.tailChars ? prediction.slice(-options.tailChars) : prediction;
  const p = extractAnswer(text, options);
  // A reference is usually the bare answer; a worked solution (boxes, math) is extracted from.
  const g = /\\boxed|\\fbox|\$|\\\(|\\\[/.test(gold) ? (extractAnswer(gold, options) ?? gold) : gold;
  if (p === undefined) return false;
  return answersEqual(p, g);
}

/** Are two extracted answers the same? */
export function answersEqual(pred: string, gold: string): boolean {
  const a = normalizeAnswer(pred);
  const b = normalizeAnswer(gold);
  if (a === '' || b === '') return false;
  if (a === b) return true;
  try {
    return nodesEqual(parseNode(a), parseNode(b));
  } catch {
    return false;
  }
}
