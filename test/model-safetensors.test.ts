/**
 * safetensors reader/writer and the dtype casts under it. Guards against: a lying or truncated
 * file read as silent zeros or crashing the process, casts that round differently from PyTorch
 * (off-by-one-ulp bf16 weights), headers that break 8-byte alignment, and writes that leave a
 * half-written file under the final name.
 */
import { readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NprError } from '../ts/bindings/errors.js';
import { SafetensorsError } from '../ts/model/errors.js';
import { readSafetensors, readSafetensorsHeader, SafetensorsReader, writeSafetensors } from '../ts/model/safetensors.js';
import {
  bf16ToF32,
  castFloat,
  type DType,
  type DTypeArrays,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  type HostTensor,
  makeTensor,
  sameBits,
  toF32,
} from '../ts/model/tensors.js';
import { tempDir } from './fixtures/model/tiny-qwen3.js';
import { randomF32, rng } from './helpers.js';

const bitsOf = (x: number) => new Uint32Array(new Float32Array([x]).buffer)[0] as number;
const fromBits = (b: number) => new Float32Array(new Uint32Array([b]).buffer)[0] as number;

/** Readable reference: the nearer of the two bf16 neighbours by exact (f64) distance, ties to even. */
function refBf16(x: number): number {
  if (Number.isNaN(x)) return 0x7fc0;
  const lo = bitsOf(x) >>> 16; // truncated toward zero
  if (!Number.isFinite(x)) return lo;
  const up = (lo + 1) & 0xffff; // next one away from zero; after the largest finite this is inf, worth 2^128 here
  const a = fromBits(lo << 16);
  const b = Number.isFinite(fromBits(up << 16)) ? fromBits(up << 16) : Math.sign(x) * 2 ** 128;
  const da = Math.abs(x - a);
  const db = Math.abs(b - x);
  if (da !== db) return da < db ? lo : up;
  return lo & 1 ? up : lo;
}

/** Every finite positive half value in ascending order (index = bit pattern). */
const HALVES = Array.from({ length: 0x7c00 }, (_, h) => (h < 0x400 ? h * 2 ** -24 : 2 ** ((h >> 10) - 15) * (1 + (h & 0x3ff) / 1024)));

/** Readable reference: binary search for the nearest half, ties to even, >= 65520 is inf. */
function refF16(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const ax = Math.abs(x);
  if (ax >= 65520) return sign | 0x7c00;
  let lo = 0;
  let hi = HALVES.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if ((HALVES[mid] as number) <= ax) lo = mid;
    else hi = mid;
  }
  const dl = ax - (HALVES[lo] as number);
  const dh = (HALVES[hi] as number) - ax;
  const pick = dl < dh ? lo : dh < dl ? hi : lo & 1 ? hi : lo;
  return sign | pick;
}

describe('dtype casts', () => {
  it('f32 -> bf16 rounds to nearest even like PyTorch, NaN stays NaN, overflow goes to inf', () => {
    const cases: Array<[number, number]> = [
      [0x3f800000, 0x3f80], // 1.0
      [0x3f808000, 0x3f80], // halfway, even below
      [0x3f818000, 0x3f82], // halfway, odd below: up
      [0x3f808001, 0x3f81], // just above halfway
      [0x80000000, 0x8000], // -0
      [0x00000001, 0x0000], // smallest subnormal
      [0x7f800000, 0x7f80], // inf
      [0xff800000, 0xff80], // -inf
      [0x7f7fffff, 0x7f80], // max finite rounds up to inf
      [0x7f800001, 0x7fc0], // signalling NaN
      [0xffc12345, 0x7fc0], // negative NaN with payload
    ];
    const src = new Float32Array(new Uint32Array(cases.map(([b]) => b)).buffer);
    expect(Array.from(f32ToBf16(src))).toEqual(cases.map(([, h]) => h));
  });

  it('f32 -> bf16 agrees with the readable reference on random and edge values', () => {
    const next = rng(7);
    const bits = new Uint32Array(20000);
    for (let i = 0; i < bits.length; i++) bits[i] = Math.floor(next() * 2 ** 32);
    for (let i = 0; i < 2000; i++) bits[i] = ((bits[i] as number) & 0xffff0000) | 0x8000; // exact ties
    const src = new Float32Array(bits.buffer);
    const got = f32ToBf16(src);
    for (let i = 0; i < src.length; i++) expect(got[i], `bits 0x${(bits[i] as number).toString(16)}`).toBe(refBf16(src[i] as number));
  });

  it('bf16 -> f32 -> bf16 is the identity on every non-NaN bit pattern', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const back = f32ToBf16(bf16ToF32(all));
    for (let h = 0; h < 65536; h++) {
      const nan = (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;
      expect(back[h]).toBe(nan ? 0x7fc0 : h);
    }
  });

  it('f16 -> f32 is exact on every bit pattern and f32 -> f16 matches the reference', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const f = f16ToF32(all);
    for (let h = 0; h < 65536; h++) {
      const e = (h >> 10) & 0x1f;
      const m = h & 0x3ff;
      const s = h & 0x8000 ? -1 : 1;
      if (e === 31) expect(m === 0 ? f[h] === s * Number.POSITIVE_INFINITY : Number.isNaN(f[h])).toBe(true);
      else expect(Object.is(f[h], s * (e === 0 ? m * 2 ** -24 : 2 ** (e - 15) * (1 + m / 1024)))).toBe(true);
    }
    const back = f32ToF16(f);
    for (let h = 0; h < 65536; h++) if (!Number.isNaN(f[h])) expect(back[h]).toBe(h);
    const next = rng(3);
    const src = new Float32Array(20000);
    for (let i = 0; i < src.length; i++) src[i] = (next() * 2 - 1) * 2 ** Math.floor(next() * 44 - 28);
    for (let i = 0; i < 500; i++) src[i] = ((HALVES[i * 60] as number) + (HALVES[i * 60 + 1] as number)) / 2; // exact ties
    const got = f32ToF16(src);
    for (let i = 0; i < src.length; i++) expect(got[i], `value ${src[i]}`).toBe(refF16(src[i] as number));
  });

  it('toF32 converts every dtype and returns f32 as is', () => {
    const f = makeTensor('f32', [2], new Float32Array([1.5, -2]));
    expect(toF32(f)).toBe(f);
    expect(Array.from(toF32(makeTensor('i64', [2], new BigInt64Array([3n, -4n]))).data)).toEqual([3, -4]);
    expect(Array.from(toF32(makeTensor('bf16', [1], new Uint16Array([0x3fc0]))).data)).toEqual([1.5]);
    expect(Array.from(toF32(makeTensor('f16', [1], new Uint16Array([0x3e00]))).data)).toEqual([1.5]);
    expect(Array.from(toF32(makeTensor('u8', [2], new Uint8Array([0, 255]))).data)).toEqual([0, 255]);
    expect(() => makeTensor('f32', [3], new Float32Array(2))).toThrow(RangeError);
    expect(() => makeTensor('bf16', [2], new Float32Array(2) as unknown as Uint16Array)).toThrow(TypeError);
  });
});

/** One tensor of every dtype, odd shapes, a scalar, an empty tensor, NaN payloads and -0. */
function everyDtype(): Map<string, HostTensor> {
  const next = rng(11);
  const f = randomF32(3 * 5 * 7, next);
  f[0] = fromBits(0x7fa00001); // NaN with payload
  f[1] = -0;
  const m = new Map<string, HostTensor>();
  const put = <D extends DType>(name: string, dtype: D, shape: number[], data: DTypeArrays[D]) =>
    m.set(name, makeTensor(dtype, shape, data));
  put('f32.3d', 'f32', [3, 5, 7], f);
  put('f64', 'f64', [4], new Float64Array([Math.PI, -1e300, 0, Number.NaN]));
  put('bf16', 'bf16', [17], f32ToBf16(randomF32(17, next)));
  put('f16', 'f16', [2, 3], f32ToF16(randomF32(6, next)));
  put('i64', 'i64', [3], new BigInt64Array([-(2n ** 63n), 0n, 2n ** 63n - 1n]));
  put('u64', 'u64', [1], new BigUint64Array([2n ** 64n - 1n]));
  put('i32', 'i32', [2, 2], new Int32Array([-2147483648, 2147483647, 0, 7]));
  put('u32', 'u32', [1], new Uint32Array([4294967295]));
  put('i16', 'i16', [3], new Int16Array([-32768, 1, 32767]));
  put('u16', 'u16', [1], new Uint16Array([65535]));
  put('i8', 'i8', [5], new Int8Array([-128, -1, 0, 1, 127]));
  put('u8', 'u8', [3], new Uint8Array([0, 128, 255]));
  put('bool', 'bool', [2], new Uint8Array([1, 0]));
  put('scalar', 'f32', [], new Float32Array([42]));
  put('empty', 'f32', [0, 3], new Float32Array(0));
  put('10', 'i32', [1], new Int32Array([10])); // an integer-like name must not reorder the header
  return m;
}

function rawFile(header: unknown, data: Uint8Array, declaredLength?: bigint): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(declaredLength ?? BigInt(json.byteLength));
  return Buffer.concat([prefix, json, data]);
}

describe('safetensors', () => {
  let dir = '';
  let cleanup: () => Promise<void> = async () => {};
  beforeEach(async () => ({ dir, cleanup } = await tempDir('npr-st-')));
  afterEach(() => cleanup());

  it('round-trips every dtype bit-exactly with metadata, in a deterministic 8-byte-aligned layout', async () => {
    const tensors = everyDtype();
    const file = join(dir, 'all.safetensors');
    const metadata = { format: 'pt', note: 'ünïcode ✓' };
    await writeSafetensors(file, tensors, { metadata });
    const back = await readSafetensors(file);
    expect(back.metadata).toEqual(metadata);
    expect([...back.tensors.keys()]).toEqual([...tensors.keys()].sort());
    for (const [name, t] of tensors) expect(sameBits(back.tensors.get(name) as HostTensor, t), name).toBe(true);

    const bytes = await readFile(file);
    const n = Number(bytes.readBigUInt64LE(0));
    expect((8 + n) % 8).toBe(0);
    const header = bytes.subarray(8, 8 + n).toString('utf8');
    expect(header.trimEnd().endsWith('}')).toBe(true);
    expect(header.indexOf('"10"')).toBeGreaterThan(header.indexOf('"__metadata__"'));
    const offsets = [...(await readSafetensorsHeader(file)).entries.values()].map((e) => e.begin);
    expect(offsets).toEqual([...offsets].sort((a, b) => a - b)); // data laid out in name order

    const again = join(dir, 'again.safetensors');
    await writeSafetensors(again, [...tensors].reverse(), { metadata });
    expect(Buffer.compare(await readFile(again), bytes)).toBe(0);
    expect((await readdir(dir)).sort()).toEqual(['again.safetensors', 'all.safetensors']); // no temp files left
  });

  it('casts float tensors on write and reads one tensor at a time', async () => {
    const file = join(dir, 'cast.safetensors');
    const w = makeTensor('f32', [4, 3], randomF32(12, rng(5)));
    await writeSafetensors(
      file,
      new Map<string, HostTensor>([
        ['w', w],
        ['ids', makeTensor('i32', [2], new Int32Array([1, 2]))],
      ]),
      { dtype: 'bf16' },
    );
    const reader = await SafetensorsReader.open(file);
    try {
      expect(reader.names().sort()).toEqual(['ids', 'w']);
      expect(reader.entry('w').dtype).toBe('bf16');
      expect(sameBits(await reader.read('w'), castFloat(w, 'bf16'))).toBe(true);
      expect((await reader.read('ids')).dtype).toBe('i32');
      await expect(reader.read('nope')).rejects.toThrow(/has no tensor 'nope'/);
    } finally {
      await reader.close();
    }
    expect((await stat(file)).size).toBe(8 + Number((await readFile(file)).readBigUInt64LE(0)) + 4 * 3 * 2 + 2 * 4);
  });

  it('replaces an existing file atomically and leaves nothing behind when a write is refused', async () => {
    const file = join(dir, 'x.safetensors');
    await writeSafetensors(file, [['a', makeTensor('f32', [1], new Float32Array([1]))]]);
    await writeSafetensors(file, new Map([['b', makeTensor('f32', [1], new Float32Array([2]))]]));
    expect([...(await readSafetensors(file)).tensors.keys()]).toEqual(['b']);
    const bad = { dtype: 'f32', shape: [3], data: new Float32Array(2) } as HostTensor;
    await expect(writeSafetensors(join(dir, 'bad.safetensors'), new Map([['bad', bad]]))).rejects.toThrow(SafetensorsError);
    await expect(writeSafetensors(join(dir, 'bad.safetensors'), new Map([['__metadata__', bad]]))).rejects.toThrow(
      /cannot write a tensor named/,
    );
    expect(await readdir(dir)).toEqual(['x.safetensors']);
  });

  describe('bad files give a SafetensorsError naming the file and tensor', () => {
    const f32 = (shape: number[], offsets: [number, number]) => ({ dtype: 'F32', shape, data_offsets: offsets });
    const cases: Array<[string, () => Buffer, RegExp]> = [
      ['empty file', () => Buffer.alloc(0), /0 bytes, too short for the 8-byte header length/],
      [
        'header length larger than the file',
        () => rawFile({ a: f32([1], [0, 4]) }, new Uint8Array(4), 1000n),
        /header length 1000 is larger than the rest of the file/,
      ],
      ['header length of 2^64-1', () => rawFile('{}', new Uint8Array(0), 2n ** 64n - 1n), /header length 18446744073709551615 is larger/],
      ['header not JSON', () => rawFile('{"a": [', new Uint8Array(0)), /header is not valid JSON/],
      [
        'header not UTF-8',
        () => rawFile(Buffer.from([0x7b, 0xff, 0x7d]).toString('latin1'), new Uint8Array(0)),
        /header is not valid (UTF-8|JSON)/,
      ],
      ['header a JSON array', () => rawFile([1, 2], new Uint8Array(0)), /header JSON is not an object/],
      [
        'unknown dtype',
        () => rawFile({ w: { dtype: 'F8_E4M3', shape: [2], data_offsets: [0, 2] } }, new Uint8Array(2)),
        /tensor 'w' has dtype 'F8_E4M3', which npr-runtime does not read/,
      ],
      ['negative dim', () => rawFile({ w: f32([-1], [0, 4]) }, new Uint8Array(4)), /tensor 'w' has shape \[-1\]/],
      ['fractional dim', () => rawFile({ w: f32([1.5], [0, 4]) }, new Uint8Array(4)), /tensor 'w' has shape \[1.5\]/],
      ['offsets reversed', () => rawFile({ w: f32([1], [4, 0]) }, new Uint8Array(4)), /tensor 'w' has data_offsets \[4,0\]/],
      [
        'wrong byte count',
        () => rawFile({ 'model.layers.3.mlp.up_proj.weight': { dtype: 'BF16', shape: [4, 2], data_offsets: [0, 12] } }, new Uint8Array(16)),
        /tensor 'model.layers.3.mlp.up_proj.weight' has data_offsets \[0, 12\] \(12 bytes\) but shape \[4, 2\] BF16 needs 16 bytes/,
      ],
      [
        'out of bounds',
        () => rawFile({ a: f32([1], [0, 4]), b: f32([2], [4, 12]) }, new Uint8Array(8)),
        /tensor 'b' has data_offsets \[4, 12\] past the end of the data \(8 bytes\)/,
      ],
      [
        'overlap',
        () => rawFile({ a: f32([2], [0, 8]), b: f32([2], [4, 12]) }, new Uint8Array(12)),
        /tensor 'b' has data_offsets \[4, 12\] overlapping tensor 'a' \[0, 8\]/,
      ],
      ['bad metadata', () => rawFile({ __metadata__: { n: 1 } }, new Uint8Array(0)), /__metadata__ must be an object of string values/],
      ['entry not an object', () => rawFile({ w: 3 }, new Uint8Array(0)), /tensor 'w' is not an object/],
    ];
    for (const [what, make, pattern] of cases) {
      it(what, async () => {
        const file = join(dir, 'bad.safetensors');
        await writeFile(file, make());
        const err = await readSafetensors(file).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, 'expected a SafetensorsError').toBeInstanceOf(SafetensorsError);
        expect(err).toBeInstanceOf(NprError);
        expect((err as Error).message).toContain(file);
        expect((err as Error).message).toMatch(pattern);
      });
    }

    it('a truncated file', async () => {
      const file = join(dir, 'trunc.safetensors');
      await writeSafetensors(file, everyDtype());
      await truncate(file, (await stat(file)).size - 3);
      await expect(readSafetensors(file)).rejects.toThrow(/past the end of the data/);
      await truncate(file, 5);
      await expect(readSafetensors(file)).rejects.toThrow(/5 bytes, too short/);
      await expect(readSafetensors(join(dir, 'missing.safetensors'))).rejects.toThrow(/cannot open/);
    });

    it('a file truncated after it was opened reads as an error, not zeros', async () => {
      const file = join(dir, 'shrink.safetensors');
      await writeSafetensors(file, new Map([['w', makeTensor('f32', [1000], randomF32(1000, rng(1)))]]));
      const reader = await SafetensorsReader.open(file);
      try {
        await truncate(file, 200);
        await expect(reader.read('w')).rejects.toThrow(/file ended at byte 200 while reading tensor 'w'; it was truncated/);
      } finally {
        await reader.close();
      }
    });
  });
});
