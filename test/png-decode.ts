/**
 * A test-side PNG reader, written independently of ts/eval/report/png.ts so that it can judge it:
 * chunks with a bitwise CRC-32 (no table), and 8-bit RGB/RGBA decoding with all five scanline
 * filters (None, Sub, Up, Average, Paeth), which Chromium's screenshots use.
 */
import { inflateSync } from 'node:zlib';

export interface Chunk {
  type: string;
  data: Buffer;
  /** The CRC stored in the file and the one computed here over type + data. */
  stored: number;
  computed: number;
}

export const PNG_SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

/** CRC-32 (reflected, polynomial 0xEDB88320) one bit at a time. */
export function bitwiseCrc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

/** The chunks after the signature; throws if the signature is wrong or a chunk runs past the end. */
export function readChunks(png: Buffer): Chunk[] {
  if (!PNG_SIGNATURE.every((b, i) => png[i] === b)) throw new Error('not a PNG signature');
  const chunks: Chunk[] = [];
  let at = 8;
  while (at < png.length) {
    const len = png.readUInt32BE(at);
    if (at + 12 + len > png.length) throw new Error(`chunk at ${at} runs past the end`);
    chunks.push({
      type: png.toString('latin1', at + 4, at + 8),
      data: png.subarray(at + 8, at + 8 + len),
      stored: png.readUInt32BE(at + 8 + len),
      computed: bitwiseCrc32(png.subarray(at + 4, at + 8 + len)),
    });
    at += 12 + len;
  }
  return chunks;
}

export interface Decoded {
  width: number;
  height: number;
  colourType: number;
  /** Filter type byte of each row, as stored. */
  filters: number[];
  /** (height, width, 4) RGBA, alpha 255 for RGB images. */
  rgba: Uint8Array;
}

/** Decodes an 8-bit, non-interlaced RGB (2) or RGBA (6) PNG, checking every CRC. */
export function decodePng(png: Buffer): Decoded {
  const chunks = readChunks(png);
  for (const c of chunks) if (c.stored !== c.computed) throw new Error(`bad CRC in ${c.type}`);
  const ihdr = chunks[0];
  if (ihdr?.type !== 'IHDR') throw new Error('first chunk is not IHDR');
  const width = ihdr.data.readUInt32BE(0);
  const height = ihdr.data.readUInt32BE(4);
  const [depth, colourType, , , interlace] = [...ihdr.data.subarray(8, 13)];
  if (depth !== 8 || (colourType !== 2 && colourType !== 6) || interlace !== 0) {
    throw new Error(`unsupported PNG: depth ${depth}, colour type ${colourType}, interlace ${interlace}`);
  }
  const bpp = colourType === 6 ? 4 : 3;
  const raw = inflateSync(Buffer.concat(chunks.filter((c) => c.type === 'IDAT').map((c) => c.data)));
  const stride = width * bpp;
  if (raw.length !== height * (stride + 1)) throw new Error(`IDAT holds ${raw.length} bytes, expected ${height * (stride + 1)}`);
  const out = new Uint8Array(height * stride);
  const filters: number[] = [];
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)] as number;
    filters.push(f);
    for (let i = 0; i < stride; i++) {
      const x = raw[y * (stride + 1) + 1 + i] as number;
      const a = i >= bpp ? (out[y * stride + i - bpp] as number) : 0;
      const b = y > 0 ? (out[(y - 1) * stride + i] as number) : 0;
      const c = i >= bpp && y > 0 ? (out[(y - 1) * stride + i - bpp] as number) : 0;
      let pred: number;
      if (f === 0) pred = 0;
      else if (f === 1) pred = a;
      else if (f === 2) pred = b;
      else if (f === 3) pred = (a + b) >> 1;
      else if (f === 4) pred = paeth(a, b, c);
      else throw new Error(`row ${y}: unknown filter ${f}`);
      out[y * stride + i] = (x + pred) & 0xff;
    }
  }
  const rgba = new Uint8Array(width * height * 4);
  for (let p = 0; p < width * height; p++) {
    for (let k = 0; k < bpp; k++) rgba[p * 4 + k] = out[p * bpp + k] as number;
    if (bpp === 3) rgba[p * 4 + 3] = 255;
  }
  return { width, height, colourType, filters, rgba };
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Pixels of `rgba` whose RGB differs from `bg` (alpha ignored). */
export function countNot(rgba: Uint8Array, bg: readonly number[]): number {
  let n = 0;
  for (let i = 0; i < rgba.length; i += 4) if (rgba[i] !== bg[0] || rgba[i + 1] !== bg[1] || rgba[i + 2] !== bg[2]) n++;
  return n;
}
