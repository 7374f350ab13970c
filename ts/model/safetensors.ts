/**
 * safetensors files, read and written by our own code.
 *
 * Format: u64 little-endian header length N, then N bytes of UTF-8 JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {string: string}}`, then the
 * data buffer; offsets are relative to the start of the data buffer (file offset 8 + N).
 *
 * Reading validates the whole header against the file size before any tensor byte is read:
 * header length within the file, UTF-8 JSON object, known dtypes, shapes of non-negative integers,
 * offsets in bounds, end - begin == numel * dtype size, no two tensors overlapping. Tensors are then
 * read one at a time at their offsets through a file handle, so an 8 GB file never has to fit in
 * one Buffer. Every problem is a SafetensorsError naming the file (and the tensor).
 *
 * Writing sorts tensors by name (data laid out in that order), pads the header with spaces to a
 * multiple of 8 bytes, optionally casts float tensors to one dtype on the way out, and writes a temp
 * file in the same directory that is fsynced and renamed into place (atomic on POSIX).
 *
 * Deliberately not done: gaps between tensors and bytes after the last one are tolerated (unused,
 * never read); fp8 and other dtypes we have no typed array for are rejected; no mmap.
 */
import { randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { SafetensorsError } from './errors.js';
import {
  allocTensor,
  castFloat,
  checkTensor,
  DTYPES,
  type DType,
  dtypeFromSafetensors,
  type HostTensor,
  isFloatDType,
  numel,
  tensorBytes,
} from './tensors.js';

/** Largest header we accept (the reference implementation's limit as well). */
export const MAX_HEADER_BYTES = 100_000_000;
/** Largest single read/write call (Node rejects lengths of 2 GiB and more). */
const IO_CHUNK = 1 << 30;

export interface SafetensorsEntry {
  name: string;
  dtype: DType;
  shape: number[];
  /** Byte range [begin, end) relative to the start of the data buffer. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  file: string;
  fileSize: number;
  /** File offset of the data buffer: 8 + header length. */
  dataStart: number;
  /** Tensors in header order. */
  entries: Map<string, SafetensorsEntry>;
  /** The `__metadata__` map ({} when absent). */
  metadata: Record<string, string>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const known = Object.values(DTYPES)
  .map((i) => i.safetensors)
  .join(', ');

function parseEntry(file: string, name: string, raw: unknown, dataSize: number): SafetensorsEntry {
  const fail = (what: string) => new SafetensorsError(file, `tensor '${name}' ${what}`, name);
  if (!isObject(raw)) throw fail('is not an object {dtype, shape, data_offsets} in the header');
  if (typeof raw.dtype !== 'string') throw fail('has no dtype string');
  const dtype = dtypeFromSafetensors(raw.dtype);
  if (dtype === undefined)
    throw fail(`has dtype '${raw.dtype}', which npr-runtime does not read (known: ${known}); convert it to BF16 or F32`);
  const shape = raw.shape;
  if (!Array.isArray(shape) || !shape.every(isIndex))
    throw fail(`has shape ${JSON.stringify(shape)}: expected an array of non-negative integers`);
  const offsets = raw.data_offsets;
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex) || (offsets[0] as number) > (offsets[1] as number)) {
    throw fail(`has data_offsets ${JSON.stringify(offsets)}: expected [begin, end] with 0 <= begin <= end`);
  }
  const [begin, end] = offsets as [number, number];
  let n: number;
  try {
    n = numel(shape);
  } catch {
    throw fail(`has shape [${shape.join(', ')}] with too many elements`);
  }
  const need = n * DTYPES[dtype].bytes;
  if (end - begin !== need) {
    throw fail(
      `has data_offsets [${begin}, ${end}] (${end - begin} bytes) but shape [${shape.join(', ')}] ${raw.dtype} needs ${need} bytes`,
    );
  }
  if (end > dataSize)
    throw fail(`has data_offsets [${begin}, ${end}] past the end of the data (${dataSize} bytes); the file is truncated or corrupt`);
  return { name, dtype, shape, begin, end };
}

/**
 * Validates a header (the N JSON bytes) against the size of the file it came from. Pure: no I/O.
 * `fileSize` is the whole file, including the 8-byte prefix and the header itself.
 */
export function parseSafetensorsHeader(file: string, headerBytes: Uint8Array, fileSize: number): SafetensorsHeader {
  const dataStart = 8 + headerBytes.byteLength;
  const dataSize = fileSize - dataStart;
  if (dataSize < 0)
    throw new SafetensorsError(file, `header of ${headerBytes.byteLength} bytes does not fit in a file of ${fileSize} bytes`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new SafetensorsError(file, 'header is not valid UTF-8; this is not a safetensors file or it is corrupt');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(file, `header is not valid JSON (${(e as Error).message}); this is not a safetensors file or it is corrupt`);
  }
  if (!isObject(json)) throw new SafetensorsError(file, 'header JSON is not an object; this is not a safetensors file');
  const entries = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isObject(raw) || !Object.values(raw).every((v) => typeof v === 'string')) {
        throw new SafetensorsError(file, '__metadata__ must be an object of string values');
      }
      metadata = raw as Record<string, string>;
      continue;
    }
    entries.set(name, parseEntry(file, name, raw, dataSize));
  }
  const byOffset = [...entries.values()].filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1] as SafetensorsEntry;
    const cur = byOffset[i] as SafetensorsEntry;
    if (cur.begin < prev.end) {
      throw new SafetensorsError(
        file,
        `tensor '${cur.name}' has data_offsets [${cur.begin}, ${cur.end}] overlapping tensor '${prev.name}' [${prev.begin}, ${prev.end}]; the header is corrupt`,
        cur.name,
      );
    }
  }
  return { file, fileSize, dataStart, entries, metadata };
}

async function readExactly(fh: FileHandle, file: string, into: Uint8Array, position: number, what: string): Promise<void> {
  let done = 0;
  while (done < into.byteLength) {
    const len = Math.min(IO_CHUNK, into.byteLength - done);
    const { bytesRead } = await fh.read(into, done, len, position + done);
    if (bytesRead === 0) {
      throw new SafetensorsError(file, `file ended at byte ${position + done} while reading ${what}; it was truncated`);
    }
    done += bytesRead;
  }
}

async function openForRead(file: string): Promise<FileHandle> {
  try {
    return await open(file, 'r');
  } catch (e) {
    throw new SafetensorsError(file, `cannot open: ${(e as Error).message}`);
  }
}

async function readHeaderFrom(fh: FileHandle, file: string): Promise<SafetensorsHeader> {
  const { size } = await fh.stat();
  if (size < 8)
    throw new SafetensorsError(file, `file is ${size} bytes, too short for the 8-byte header length; it is truncated or not safetensors`);
  const prefix = new Uint8Array(8);
  await readExactly(fh, file, prefix, 0, 'the header length');
  const n = Buffer.from(prefix).readBigUInt64LE(0);
  if (n > BigInt(size - 8)) {
    throw new SafetensorsError(
      file,
      `header length ${n} is larger than the rest of the file (${size - 8} bytes); the file is truncated or not safetensors`,
    );
  }
  if (n > BigInt(MAX_HEADER_BYTES)) throw new SafetensorsError(file, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const header = new Uint8Array(Number(n));
  await readExactly(fh, file, header, 8, 'the header');
  return parseSafetensorsHeader(file, header, size);
}

/** Reads and validates only the header of a file. */
export async function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  const fh = await openForRead(file);
  try {
    return await readHeaderFrom(fh, file);
  } finally {
    await fh.close();
  }
}

/** An open safetensors file whose header has been validated; tensors are read on demand. */
export class SafetensorsReader {
  private constructor(
    private readonly fh: FileHandle,
    readonly header: SafetensorsHeader,
  ) {}

  /** Opens `file` and validates its header (SafetensorsError on any problem; the handle is closed then). */
  static async open(file: string): Promise<SafetensorsReader> {
    const fh = await openForRead(file);
    try {
      return new SafetensorsReader(fh, await readHeaderFrom(fh, file));
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  get file(): string {
    return this.header.file;
  }

  get metadata(): Record<string, string> {
    return this.header.metadata;
  }

  /** Tensor names in header order. */
  names(): string[] {
    return [...this.header.entries.keys()];
  }

  entry(name: string): SafetensorsEntry {
    const e = this.header.entries.get(name);
    if (!e) throw new SafetensorsError(this.file, `has no tensor '${name}'`, name);
    return e;
  }

  /** One tensor, in the dtype it is stored in. */
  async read(name: string): Promise<HostTensor> {
    const e = this.entry(name);
    const t = allocTensor(e.dtype, e.shape);
    await readExactly(this.fh, this.file, tensorBytes(t), this.header.dataStart + e.begin, `tensor '${name}'`);
    return t;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/** Every tensor of a file (or only `names`), in stored dtypes, plus its metadata. */
export async function readSafetensors(
  file: string,
  names?: readonly string[],
): Promise<{ tensors: Map<string, HostTensor>; metadata: Record<string, string> }> {
  const reader = await SafetensorsReader.open(file);
  try {
    const tensors = new Map<string, HostTensor>();
    for (const name of names ?? reader.names()) tensors.set(name, await reader.read(name));
    return { tensors, metadata: reader.metadata };
  } finally {
    await reader.close();
  }
}

export interface WriteSafetensorsOptions {
  /** Written as `__metadata__` (string values only). HF transformers wants `{format: 'pt'}`. */
  metadata?: Record<string, string>;
  /** Cast every float tensor to this dtype while writing (integer tensors are written as they are). */
  dtype?: 'f32' | 'bf16' | 'f16';
}

/** Bytes a tensor takes in a file when written with `dtype` (a cast applying to float tensors only). */
export function storedBytes(t: { dtype: DType; shape: number[] }, dtype?: 'f32' | 'bf16' | 'f16'): number {
  const d = dtype && isFloatDType(t.dtype) ? dtype : t.dtype;
  return numel(t.shape) * DTYPES[d].bytes;
}

async function writeAll(fh: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const len = Math.min(IO_CHUNK, bytes.byteLength - done);
    const { bytesWritten } = await fh.write(bytes, done, len, position + done);
    done += bytesWritten;
  }
}

/**
 * Writes `tensors` to `file` atomically (temp file in the same directory, fsync, rename).
 * Returns the size of the file written.
 */
export async function writeSafetensors(
  file: string,
  tensors: Map<string, HostTensor> | Iterable<[string, HostTensor]>,
  options: WriteSafetensorsOptions = {},
): Promise<{ bytes: number }> {
  const byName = new Map<string, HostTensor>();
  for (const [name, t] of tensors) {
    if (name === '' || name === '__metadata__') throw new SafetensorsError(file, `cannot write a tensor named '${name}'`, name);
    if (byName.has(name)) throw new SafetensorsError(file, `tensor '${name}' is given twice`, name);
    try {
      checkTensor(t, `tensor '${name}'`);
    } catch (e) {
      throw new SafetensorsError(file, (e as Error).message, name);
    }
    byName.set(name, t);
  }
  for (const [k, v] of Object.entries(options.metadata ?? {})) {
    if (typeof v !== 'string') throw new SafetensorsError(file, `metadata '${k}' must be a string, got ${typeof v}`);
  }
  const names = [...byName.keys()].sort();
  const parts: string[] = [];
  if (options.metadata) parts.push(`"__metadata__":${JSON.stringify(options.metadata)}`);
  let offset = 0;
  for (const name of names) {
    const t = byName.get(name) as HostTensor;
    const dtype = options.dtype && isFloatDType(t.dtype) ? options.dtype : t.dtype;
    const size = storedBytes(t, options.dtype);
    parts.push(
      `${JSON.stringify(name)}:${JSON.stringify({ dtype: DTYPES[dtype].safetensors, shape: t.shape, data_offsets: [offset, offset + size] })}`,
    );
    offset += size;
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const padded = Buffer.alloc(Math.ceil(json.byteLength / 8) * 8, 0x20); // spaces: 8 + N stays 8-aligned
  json.copy(padded);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(padded.byteLength));

  const tmp = join(dirname(file), `.${basename(file)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const fh = await open(tmp, 'wx');
  try {
    await writeAll(fh, prefix, 0);
    await writeAll(fh, padded, 8);
    let position = 8 + padded.byteLength;
    for (const name of names) {
      const t = byName.get(name) as HostTensor;
      const out = options.dtype && isFloatDType(t.dtype) ? castFloat(t, options.dtype) : t;
      const bytes = tensorBytes(out);
      await writeAll(fh, bytes, position);
      position += bytes.byteLength;
    }
    await fh.sync();
    await fh.close();
    await rename(tmp, file);
    return { bytes: position };
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw e;
  }
}
