/**
 * A minimal PNG encoder: 8-bit RGBA, no interlace, every scanline with filter type 0 (None),
 * the pixel stream deflated by node:zlib. CRC-32 (ISO-HDLC, polynomial 0xEDB88320) comes from a
 * table built here on first use.
 *
 * Deliberately not here: decoding, palettes, other bit depths, adaptive filters (charts are flat
 * colour, so deflate alone already compresses them well) and any ancillary chunk (no gAMA/sRGB:
 * browsers treat the pixels as sRGB).
 */
import { deflateSync } from 'node:zlib';
import { PixelBufferError, ReportSizeError } from './errors.js';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** PNG caps each dimension at 2^31 - 1; far below that a chart is a mistake, so cap at 32768. */
const MAX_SIDE = 32768;

let crcTable: Uint32Array | undefined;

function table(): Uint32Array {
  if (crcTable) return crcTable;
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  crcTable = t;
  return t;
}

/** CRC-32 of `bytes` as PNG uses it (over chunk type + data). */
export function crc32(bytes: Uint8Array): number {
  const t = table();
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = (t[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** One chunk: length (4, big-endian), type (4 ASCII), data, CRC-32 of type + data. */
function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/**
 * Encodes an image as PNG bytes.
 * @param width  pixels per row, 1..32768
 * @param height rows, 1..32768
 * @param rgba   (height, width, 4) bytes, row-major, non-premultiplied RGBA
 */
export function encodePng(width: number, height: number, rgba: Uint8Array): Buffer {
  for (const [what, v] of [
    ['width', width],
    ['height', height],
  ] as const) {
    if (!Number.isInteger(v) || v < 1 || v > MAX_SIDE) {
      throw new ReportSizeError(`encodePng: ${what} must be an integer in 1..${MAX_SIDE}; got ${v}`);
    }
  }
  const stride = width * 4;
  if (rgba.length !== stride * height) {
    throw new PixelBufferError(`encodePng: expected ${stride * height} bytes (${width} x ${height} x 4 RGBA); got ${rgba.length}`);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // colour type: RGBA
  ihdr[10] = 0; // compression: deflate
  ihdr[11] = 0; // filter method 0
  ihdr[12] = 0; // no interlace
  // (height, 1 + width * 4): a filter-type byte (0, None) before each row.
  const raw = Buffer.alloc(height * (stride + 1));
  for (let y = 0; y < height; y++) raw.set(rgba.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw, { level: 9 })), chunk('IEND', new Uint8Array(0))]);
}
