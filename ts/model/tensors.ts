/**
 * Host tensors: a dtype, a shape and one typed array holding the elements in row-major order,
 * plus the dtype conversions the model layer needs (bf16 <-> f32 and f16 <-> f32, bit-exact
 * round to nearest even like PyTorch's CPU casts, NaN stays NaN).
 *
 * dtype -> typed array (element i of the tensor is data[i]):
 *   f64 Float64Array | f32 Float32Array | f16 Uint16Array (IEEE half bits) | bf16 Uint16Array
 *   (bfloat16 bits = top 16 bits of an f32) | i64 BigInt64Array | u64 BigUint64Array | i32 Int32Array
 *   | u32 Uint32Array | i16 Int16Array | u16 Uint16Array | i8 Int8Array | u8 Uint8Array | bool
 *   Uint8Array (0 or 1).
 *
 * Deliberately not here: device memory, strides/views (always contiguous), fp8 dtypes (the
 * safetensors reader rejects them by name), and any arithmetic beyond casts.
 */
import { endianness } from 'node:os';

export interface DTypeArrays {
  f64: Float64Array;
  f32: Float32Array;
  f16: Uint16Array;
  bf16: Uint16Array;
  i64: BigInt64Array;
  u64: BigUint64Array;
  i32: Int32Array;
  u32: Uint32Array;
  i16: Int16Array;
  u16: Uint16Array;
  i8: Int8Array;
  u8: Uint8Array;
  bool: Uint8Array;
}

export type DType = keyof DTypeArrays;
export type FloatDType = 'f64' | 'f32' | 'f16' | 'bf16';

/** One tensor in host memory. `HostTensor` alone is the union over dtypes, discriminated by `dtype`. */
export type HostTensor<D extends DType = DType> = D extends DType
  ? {
      dtype: D;
      /** Dimensions, outermost first; [] is a scalar (one element). */
      shape: number[];
      /** numel(shape) elements, row-major, in the typed array of the dtype (see module header). */
      data: DTypeArrays[D];
    }
  : never;

type AnyArray = DTypeArrays[DType];

interface DTypeInfo {
  /** Bytes per element. */
  bytes: number;
  /** The name in a safetensors header. */
  safetensors: string;
  make: (buffer: ArrayBuffer, byteOffset: number, length: number) => AnyArray;
  ctor: abstract new (...args: never[]) => AnyArray;
}

const info = (bytes: number, safetensors: string, ctor: DTypeInfo['ctor'], make: DTypeInfo['make']): DTypeInfo => ({
  bytes,
  safetensors,
  ctor,
  make,
});

export const DTYPES: Readonly<Record<DType, DTypeInfo>> = {
  f64: info(8, 'F64', Float64Array, (b, o, n) => new Float64Array(b, o, n)),
  f32: info(4, 'F32', Float32Array, (b, o, n) => new Float32Array(b, o, n)),
  f16: info(2, 'F16', Uint16Array, (b, o, n) => new Uint16Array(b, o, n)),
  bf16: info(2, 'BF16', Uint16Array, (b, o, n) => new Uint16Array(b, o, n)),
  i64: info(8, 'I64', BigInt64Array, (b, o, n) => new BigInt64Array(b, o, n)),
  u64: info(8, 'U64', BigUint64Array, (b, o, n) => new BigUint64Array(b, o, n)),
  i32: info(4, 'I32', Int32Array, (b, o, n) => new Int32Array(b, o, n)),
  u32: info(4, 'U32', Uint32Array, (b, o, n) => new Uint32Array(b, o, n)),
  i16: info(2, 'I16', Int16Array, (b, o, n) => new Int16Array(b, o, n)),
  u16: info(2, 'U16', Uint16Array, (b, o, n) => new Uint16Array(b, o, n)),
  i8: info(1, 'I8', Int8Array, (b, o, n) => new Int8Array(b, o, n)),
  u8: info(1, 'U8', Uint8Array, (b, o, n) => new Uint8Array(b, o, n)),
  bool: info(1, 'BOOL', Uint8Array, (b, o, n) => new Uint8Array(b, o, n)),
};

const FROM_SAFETENSORS = new Map<string, DType>(Object.entries(DTYPES).map(([d, i]) => [i.safetensors, d as DType]));

/** Our dtype for a safetensors dtype name ('BF16' -> 'bf16'), or undefined when we do not know it. */
export function dtypeFromSafetensors(name: string): DType | undefined {
  return FROM_SAFETENSORS.get(name);
}

export function isFloatDType(d: DType): d is FloatDType {
  return d === 'f64' || d === 'f32' || d === 'f16' || d === 'bf16';
}

/** Number of elements of a shape; RangeError when a dim is not a non-negative integer or the product overflows. */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new RangeError(`shape [${shape.join(', ')}]: dim ${d} is not a non-negative integer`);
    n *= d;
    if (!Number.isSafeInteger(n)) throw new RangeError(`shape [${shape.join(', ')}] has more elements than a safe integer`);
  }
  return n;
}

/** Zero-filled tensor. */
export function allocTensor<D extends DType>(dtype: D, shape: number[]): HostTensor<D> {
  const n = numel(shape);
  const data = DTYPES[dtype].make(new ArrayBuffer(n * DTYPES[dtype].bytes), 0, n);
  return { dtype, shape: [...shape], data } as HostTensor<D>;
}

/** Wraps `data` (not copied) after checking its array type and length against dtype and shape. */
export function makeTensor<D extends DType>(dtype: D, shape: number[], data: DTypeArrays[D]): HostTensor<D> {
  const t = { dtype, shape, data } as HostTensor<D>;
  checkTensor(t, 'tensor');
  return t;
}

/** TypeError/RangeError naming `what` unless `t` is a consistent HostTensor. */
export function checkTensor(t: HostTensor, what: string): void {
  const i = DTYPES[t.dtype];
  if (i === undefined) throw new TypeError(`${what}: unknown dtype '${String(t.dtype)}'`);
  if (!(t.data instanceof i.ctor))
    throw new TypeError(`${what}: dtype ${t.dtype} needs a ${i.ctor.name}, got ${t.data?.constructor?.name}`);
  const n = numel(t.shape);
  if (t.data.length !== n) throw new RangeError(`${what}: shape [${t.shape.join(', ')}] needs ${n} elements, data has ${t.data.length}`);
}

function assertLittleEndian(): void {
  if (endianness() !== 'LE') throw new Error('npr-runtime reads and writes tensor bytes as little-endian and needs a little-endian host');
}

/** The tensor's elements as little-endian bytes (a view, no copy). */
export function tensorBytes(t: HostTensor): Uint8Array {
  assertLittleEndian();
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** A tensor whose elements are a copy of `bytes` (little-endian, exactly numel * size bytes). */
export function tensorFromBytes<D extends DType>(dtype: D, shape: number[], bytes: Uint8Array): HostTensor<D> {
  assertLittleEndian();
  const t = allocTensor(dtype, shape);
  if (bytes.byteLength !== t.data.byteLength) {
    throw new RangeError(`tensorFromBytes: ${dtype} [${shape.join(', ')}] needs ${t.data.byteLength} bytes, got ${bytes.byteLength}`);
  }
  new Uint8Array(t.data.buffer).set(bytes);
  return t;
}

/** bf16 bits -> f32 (exact: bf16 is the top half of an f32). */
export function bf16ToF32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  const out = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < src.length; i++) out[i] = (src[i] as number) << 16;
  return dst;
}

/** f32 -> bf16 bits, round to nearest even; any NaN becomes the quiet NaN 0x7fc0 (as PyTorch does). */
export function f32ToBf16(src: Float32Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const x = bits[i] as number;
    if ((x & 0x7fffffff) > 0x7f800000) dst[i] = 0x7fc0;
    else dst[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16; // the sum stays below 2^32
  }
  return dst;
}

let f16Table: Uint32Array | undefined;

/** f32 bits of every f16 value: 65,536 entries, built once. Subnormals exact, NaN payloads kept. */
function halfTable(): Uint32Array {
  if (f16Table) return f16Table;
  const table = new Uint32Array(65536);
  const f = new Float32Array(table.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) f[h] = (sign ? -1 : 1) * mant * 2 ** -24;
    else if (exp === 31) table[h] = (sign | 0x7f800000 | (mant << 13)) >>> 0;
    else table[h] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  }
  f16Table = table;
  return table;
}

/** IEEE half bits -> f32 (exact). */
export function f16ToF32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  const table = halfTable();
  const out = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < src.length; i++) out[i] = table[src[i] as number] as number;
  return dst;
}

/** f32 -> IEEE half bits, round to nearest even, overflow to +-inf, NaN -> sign | 0x7e00 (as PyTorch). */
export function f32ToF16(src: Float32Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const x = bits[i] as number;
    const sign = (x >>> 16) & 0x8000;
    const abs = x & 0x7fffffff;
    if (abs > 0x7f800000) dst[i] = sign | 0x7e00;
    else if (abs >= 0x477ff000)
      dst[i] = sign | 0x7c00; // >= 65520 rounds to inf
    else if (abs < 0x38800000) {
      // below the smallest normal (2^-14): subnormal, units of 2^-24
      const m = Math.abs(src[i] as number) * 2 ** 24;
      let q = Math.floor(m);
      const rest = m - q;
      if (rest > 0.5 || (rest === 0.5 && (q & 1) === 1)) q++;
      dst[i] = sign | q; // q == 1024 is the smallest normal, which is also its bit pattern
    } else {
      let h = (((abs >>> 23) - 112) << 10) | ((abs >>> 13) & 0x3ff);
      const rest = abs & 0x1fff;
      if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++; // a carry moves into the exponent, as it should
      dst[i] = sign | h;
    }
  }
  return dst;
}

/**
 * The tensor as f32. An f32 tensor is returned as is (same data, no copy); floats are converted
 * exactly (f64 rounds); integers and bool become their values (i64/u64 beyond 2^24 round).
 */
export function toF32(t: HostTensor): HostTensor<'f32'> {
  switch (t.dtype) {
    case 'f32':
      return t;
    case 'bf16':
      return { dtype: 'f32', shape: [...t.shape], data: bf16ToF32(t.data) };
    case 'f16':
      return { dtype: 'f32', shape: [...t.shape], data: f16ToF32(t.data) };
    case 'i64':
    case 'u64': {
      const out = new Float32Array(t.data.length);
      for (let i = 0; i < out.length; i++) out[i] = Number(t.data[i]);
      return { dtype: 'f32', shape: [...t.shape], data: out };
    }
    default:
      return { dtype: 'f32', shape: [...t.shape], data: Float32Array.from(t.data) };
  }
}

/** A float tensor cast to f32, bf16 or f16 (rounding to nearest even). Same dtype: returned as is. */
export function castFloat<D extends 'f32' | 'bf16' | 'f16'>(t: HostTensor, dtype: D): HostTensor<D> {
  if (!isFloatDType(t.dtype)) throw new TypeError(`castFloat: ${t.dtype} is not a float dtype`);
  if (t.dtype === dtype) return t as HostTensor<D>;
  const f = toF32(t);
  if (dtype === 'f32') return f as HostTensor<D>;
  const data = dtype === 'bf16' ? f32ToBf16(f.data) : f32ToF16(f.data);
  return { dtype, shape: [...t.shape], data } as HostTensor<D>;
}

/** Same dtype, same shape and the same bytes (so NaN == NaN and -0 != +0). */
export function sameBits(a: HostTensor, b: HostTensor): boolean {
  if (a.dtype !== b.dtype || a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) return false;
  return Buffer.compare(tensorBytes(a), tensorBytes(b)) === 0;
}
