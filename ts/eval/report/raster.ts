/**
 * A small RGBA raster for drawing charts: rectangles, thick anti-aliased lines, discs, and text
 * in the built-in 5x7 font (font.ts), all clipped to the image and to an optional clip rectangle.
 * Colours are non-premultiplied sRGB bytes; partial coverage blends with "source over".
 *
 * Coordinates: x grows right, y grows down; pixel (x, y) covers [x, x+1) x [y, y+1), so its
 * centre is (x + 0.5, y + 0.5). Integer-aligned rectangles therefore cover whole pixels.
 *
 * Deliberately not here: paths, curves, gradients, real fonts. Every operation is plain integer
 * or double arithmetic, so the same calls give the same bytes on every machine.
 */
import { ReportSizeError } from './errors.js';
import { ADVANCE, GLYPH_H, GLYPH_W, glyph } from './font.js';
import { encodePng } from './png.js';

/** [r, g, b] or [r, g, b, a], each 0..255. */
export type Color = readonly [number, number, number] | readonly [number, number, number, number];

interface Rect {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** Width in pixels of `text` drawn at `scale` (no trailing gap). */
export function textWidth(text: string, scale = 1): number {
  const n = [...text].length;
  return n === 0 ? 0 : (n * ADVANCE - (ADVANCE - GLYPH_W)) * scale;
}

/** Height in pixels of one line of text at `scale`. */
export const textHeight = (scale = 1): number => GLYPH_H * scale;

export class Raster {
  readonly width: number;
  readonly height: number;
  /** (height, width, 4) RGBA bytes, row-major. */
  readonly pixels: Uint8Array;
  private clip: Rect;

  constructor(width: number, height: number, background: Color = [255, 255, 255]) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width * height > 1 << 26) {
      throw new ReportSizeError(`Raster: width and height must be positive integers, at most 2^26 pixels; got ${width} x ${height}`);
    }
    this.width = width;
    this.height = height;
    this.pixels = new Uint8Array(width * height * 4);
    this.clip = { x0: 0, y0: 0, x1: width, y1: height };
    const [r, g, b, a = 255] = background;
    for (let i = 0; i < this.pixels.length; i += 4) {
      this.pixels[i] = r;
      this.pixels[i + 1] = g;
      this.pixels[i + 2] = b;
      this.pixels[i + 3] = a;
    }
  }

  /** Runs `draw` with drawing limited to the rectangle [x, x+w) x [y, y+h) (inside the image). */
  clipped(x: number, y: number, w: number, h: number, draw: () => void): void {
    const saved = this.clip;
    this.clip = {
      x0: Math.max(saved.x0, Math.floor(x)),
      y0: Math.max(saved.y0, Math.floor(y)),
      x1: Math.min(saved.x1, Math.floor(x + w)),
      y1: Math.min(saved.y1, Math.floor(y + h)),
    };
    try {
      draw();
    } finally {
      this.clip = saved;
    }
  }

  /** The colour at (x, y) as [r, g, b, a]; throws nothing, returns [0,0,0,0] outside. */
  get(x: number, y: number): [number, number, number, number] {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return [0, 0, 0, 0];
    const i = (y * this.width + x) * 4;
    const p = this.pixels;
    return [p[i] as number, p[i + 1] as number, p[i + 2] as number, p[i + 3] as number];
  }

  /** Blends `color` into pixel (x, y) with coverage 0..1; outside the clip it does nothing. */
  plot(x: number, y: number, color: Color, coverage = 1): void {
    const c = this.clip;
    if (x < c.x0 || y < c.y0 || x >= c.x1 || y >= c.y1 || !(coverage > 0)) return;
    const i = (y * this.width + x) * 4;
    const p = this.pixels;
    const sa = ((color[3] ?? 255) / 255) * Math.min(coverage, 1);
    if (sa >= 1) {
      p[i] = color[0];
      p[i + 1] = color[1];
      p[i + 2] = color[2];
      p[i + 3] = 255;
      return;
    }
    const da = (p[i + 3] as number) / 255;
    const oa = sa + da * (1 - sa);
    for (let k = 0; k < 3; k++) p[i + k] = Math.round(((color[k] as number) * sa + (p[i + k] as number) * da * (1 - sa)) / oa);
    p[i + 3] = Math.round(oa * 255);
  }

  /** Fills [x, x+w) x [y, y+h); coordinates are rounded to whole pixels. */
  fillRect(x: number, y: number, w: number, h: number, color: Color): void {
    const x0 = Math.max(this.clip.x0, Math.round(x));
    const y0 = Math.max(this.clip.y0, Math.round(y));
    const x1 = Math.min(this.clip.x1, Math.round(x + w));
    const y1 = Math.min(this.clip.y1, Math.round(y + h));
    for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) this.plot(xx, yy, color);
  }

  /** A one-pixel outline of [x, x+w) x [y, y+h). */
  strokeRect(x: number, y: number, w: number, h: number, color: Color): void {
    this.fillRect(x, y, w, 1, color);
    this.fillRect(x, y + h - 1, w, 1, color);
    this.fillRect(x, y, 1, h, color);
    this.fillRect(x + w - 1, y, 1, h, color);
  }

  /**
   * A line from (x0, y0) to (x1, y1) with round caps, `thickness` pixels wide, anti-aliased:
   * each pixel's coverage falls off over one pixel around the stroke's edge.
   */
  line(x0: number, y0: number, x1: number, y1: number, color: Color, thickness = 1): void {
    if (![x0, y0, x1, y1, thickness].every(Number.isFinite)) return;
    const r = Math.max(thickness, 0.5) / 2;
    const dx = x1 - x0;
    const dy = y1 - y0;
    const len2 = dx * dx + dy * dy;
    const pad = r + 1;
    const xa = Math.max(this.clip.x0, Math.floor(Math.min(x0, x1) - pad));
    const xb = Math.min(this.clip.x1 - 1, Math.ceil(Math.max(x0, x1) + pad));
    const ya = Math.max(this.clip.y0, Math.floor(Math.min(y0, y1) - pad));
    const yb = Math.min(this.clip.y1 - 1, Math.ceil(Math.max(y0, y1) + pad));
    for (let y = ya; y <= yb; y++) {
      for (let x = xa; x <= xb; x++) {
        const px = x + 0.5 - x0;
        const py = y + 0.5 - y0;
        const t = len2 === 0 ? 0 : Math.max(0, Math.min(1, (px * dx + py * dy) / len2));
        const d = Math.hypot(px - t * dx, py - t * dy);
        this.plot(x, y, color, r + 0.5 - d);
      }
    }
  }

  /** A disc of radius `r` centred on (cx, cy), anti-aliased; `fill` false draws a 1.5 px ring. */
  circle(cx: number, cy: number, r: number, color: Color, fill = true): void {
    if (![cx, cy, r].every(Number.isFinite) || r <= 0) return;
    const xa = Math.max(this.clip.x0, Math.floor(cx - r - 1));
    const xb = Math.min(this.clip.x1 - 1, Math.ceil(cx + r + 1));
    const ya = Math.max(this.clip.y0, Math.floor(cy - r - 1));
    const yb = Math.min(this.clip.y1 - 1, Math.ceil(cy + r + 1));
    for (let y = ya; y <= yb; y++) {
      for (let x = xa; x <= xb; x++) {
        const d = Math.hypot(x + 0.5 - cx, y + 0.5 - cy);
        this.plot(x, y, color, fill ? r + 0.5 - d : 0.75 + 0.5 - Math.abs(d - r));
      }
    }
  }

  /**
   * Text in the 5x7 font with its top-left corner at (x, y), each font cell `scale` x `scale`
   * pixels. `up` draws it rotated a quarter turn anticlockwise (reading bottom to top), with
   * pixel (x, y) as its bottom-left corner. Characters without a glyph draw as a box.
   */
  text(x: number, y: number, text: string, color: Color, scale = 1, up = false): void {
    const s = Math.max(1, Math.round(scale));
    const x0 = Math.round(x);
    const y0 = Math.round(y);
    let pen = 0;
    for (const ch of text) {
      const rows = glyph(ch);
      for (let row = 0; row < GLYPH_H; row++) {
        const bits = rows[row] ?? 0;
        for (let col = 0; col < GLYPH_W; col++) {
          if (((bits >> (GLYPH_W - 1 - col)) & 1) === 0) continue;
          const u = pen + col * s;
          const v = row * s;
          if (up) this.fillRect(x0 + v, y0 + 1 - u - s, s, s, color);
          else this.fillRect(x0 + u, y0 + v, s, s, color);
        }
      }
      pen += ADVANCE * s;
    }
  }

  /** The image as PNG bytes. */
  toPng(): Buffer {
    return encodePng(this.width, this.height, this.pixels);
  }
}
