/**
 * A picture of one built sequence for people: the (T x T) visibility mask as SVG, query rows
 * and key columns, a filled cell where the key is visible. Cells inside a step take that
 * step's colour, shared cells are grey; each token's position id runs along both axes, step
 * boundaries are dashed lines and block boundaries solid ones; hovering a row shows its token.
 * Runs of equal cells are drawn as one rectangle, so a few hundred tokens stay small.
 *
 * Deliberately not here: any layout engine or raster output; the mask comes from pack.ts.
 */
import type { BuildOk } from './builder.js';
import { isVisible } from './pack.js';

export interface PictureOptions {
  /** Text of each token, shown when hovering its row. */
  pieces?: readonly string[];
  /** Drawing width of the mask in pixels (default 720); cells are 2..14 px. */
  width?: number;
  title?: string;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The innermost step id of token t, -1 outside every step. */
function innermostStep(b: BuildOk, t: number): number {
  const d = b.structure.depth;
  let s = -1;
  for (let l = 0; l < d; l++) {
    const v = b.structure.step[t * d + l] as number;
    if (v >= 0) s = v;
  }
  return s;
}

const colour = (step: number) => (step < 0 ? '#6b6b6b' : `hsl(${(step * 67 + 200) % 360},62%,50%)`);

export function visibilitySvg(built: BuildOk, options: PictureOptions = {}): string {
  const T = built.length;
  const cell = Math.max(2, Math.min(14, Math.floor((options.width ?? 720) / Math.max(T, 1))));
  const every = Math.max(1, Math.ceil(10 / cell));
  const font = Math.min(10, Math.max(6, cell * every - 2));
  const left = 48;
  const top = 64;
  const size = T * cell;
  const W = left + size + 16;
  const H = top + size + 40;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="monospace">`);
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  const title = options.title ?? `visibility of ${T} tokens: row = query, column = key, filled = visible; numbers = position ids`;
  out.push(`<text x="4" y="14" font-size="11" fill="#222">${esc(title)}</text>`);
  out.push(`<rect x="${left}" y="${top}" width="${size}" height="${size}" fill="#f4f4f4" stroke="#ccc"/>`);
  const steps = Array.from({ length: T }, (_, t) => innermostStep(built, t));
  out.push('<g shape-rendering="crispEdges">');
  for (let q = 0; q < T; q++) {
    let k = 0;
    while (k <= q) {
      if (!isVisible(built.structure, q, k)) {
        k++;
        continue;
      }
      const s = steps[k] as number;
      let e = k + 1;
      while (e <= q && steps[e] === s && isVisible(built.structure, q, e)) e++;
      out.push(`<rect x="${left + k * cell}" y="${top + q * cell}" width="${(e - k) * cell}" height="${cell}" fill="${colour(s)}"/>`);
      k = e;
    }
  }
  out.push('</g>');
  // boundaries: steps dashed, blocks solid, the prompt dotted
  const line = (t: number, style: string) => {
    const p = left + t * cell;
    const o = top + t * cell;
    out.push(`<line x1="${p}" y1="${top}" x2="${p}" y2="${top + size}" ${style}/>`);
    out.push(`<line x1="${left}" y1="${o}" x2="${left + size}" y2="${o}" ${style}/>`);
  };
  if (built.promptLength > 0 && built.promptLength < T) line(built.promptLength, 'stroke="#999" stroke-dasharray="1,2"');
  for (const b of built.blocks) {
    for (const [s] of b.steps) line(s, 'stroke="#d33" stroke-width="0.8" stroke-dasharray="3,2"');
    line(b.steps[b.steps.length - 1]?.[1] ?? b.end, 'stroke="#d33" stroke-width="0.8" stroke-dasharray="3,2"');
    line(b.start, 'stroke="#000" stroke-width="1.2"');
    line(b.end, 'stroke="#000" stroke-width="1.2"');
  }
  // position ids along both axes (every `every`-th token)
  for (let t = 0; t < T; t += every) {
    const c = (t + 0.5) * cell;
    const p = built.positions[t];
    out.push(`<text x="${left - 3}" y="${top + c + font / 3}" font-size="${font}" text-anchor="end" fill="#333">${p}</text>`);
    out.push(
      `<text x="${left + c + font / 3}" y="${top - 3}" font-size="${font}" fill="#333" transform="rotate(-90 ${left + c + font / 3} ${top - 3})">${p}</text>`,
    );
  }
  // hover: the token of each row
  if (options.pieces) {
    out.push('<g fill="transparent">');
    for (let t = 0; t < T; t++) {
      const label = `token ${t} ${JSON.stringify(options.pieces[t] ?? '')} position ${built.positions[t]}`;
      out.push(`<rect x="${left}" y="${top + t * cell}" width="${size}" height="${cell}"><title>${esc(label)}</title></rect>`);
    }
    out.push('</g>');
  }
  out.push(
    `<text x="4" y="${H - 12}" font-size="10" fill="#444">grey = shared context; colour = a step; dashed red = step boundary; black = block boundary</text>`,
  );
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
