// safetensors reader and writer, runtime-agnostic (bytes and RandomAccess only;
// the Node file layer is safetensors-node.ts).
//
// Format: u64 little-endian N, then N bytes of UTF-8 JSON
//   { "__metadata__"?: {str: str}, "<tensor>": {dtype, shape, data_offsets: [begin, end]} ... }
// then the data section; offsets are relative to its start (byte 8 + N).
//
// The reader validates everything a hostile or truncated file could lie about
// before any tensor is touched, and every error names the file and the tensor.
// It tolerates gaps between tensors and trailing bytes (the reference
// implementation does not), but never overlaps.
//
// The writer emits files the reference implementation accepts: tensors packed
// back to back with no gaps, 8-byte-element dtypes first then 4, 2, 1 (a stable
// sort), and the JSON padded with spaces so the data section starts on an
// 8-byte boundary. Hence every tensor's offset is a multiple of its element
// size and can be viewed in place, as in the golden files.

import {
  DTYPE_SIZE, bytesToF32, bytesToI32, formatShape, isDType, numel,
  type DType, type TensorData, type TensorInfo, type TensorSource,
} from './dtypes.js';
import type { RandomAccess } from './random-access.js';

/** Largest JSON header we accept (real headers are well under 1 MB). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface SafetensorsEntry {
  name: string;
  dtype: DType;
  shape: number[];
  /** Byte range relative to the start of the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** JSON length N from the 8-byte prefix. */
  headerBytes: number;
  /** Absolute file offset of the data section (8 + N). */
  dataStart: number;
  /** Entries in header order. */
  entries: SafetensorsEntry[];
  metadata: Record<string, string>;
}

export interface SafeTensorFile extends TensorSource {
  readonly metadata: Readonly<Record<string, string>>;
  readonly header: SafetensorsHeader;
}

/**
 * Reads and bounds-checks the 8-byte length prefix. `fileSize` is the whole
 * file's size; the header must fit in it and under MAX_HEADER_BYTES.
 */
export function readHeaderLength(prefix: Uint8Array, fileSize: number, name: string): number {
  if (fileSize < 8 || prefix.byteLength < 8) {
    throw new Error(`${name}: file is ${fileSize} bytes, too short for a safetensors header (needs at least 8)`);
  }
  const dv = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const lo = dv.getUint32(0, true), hi = dv.getUint32(4, true);
  const n = hi * 2 ** 32 + lo;
  if (n > MAX_HEADER_BYTES) {
    throw new Error(`${name}: header length ${n} is over the ${MAX_HEADER_BYTES}-byte limit (not a safetensors file, or corrupt)`);
  }
  if (8 + n > fileSize) {
    throw new Error(`${name}: header length ${n} runs past the end of the file (${fileSize} bytes; truncated or not a safetensors file)`);
  }
  if (n < 2) throw new Error(`${name}: header length ${n} is too short for a JSON object`);
  return n;
}

const ENTRY_KEYS = new Set(['dtype', 'shape', 'data_offsets']);

function isCount(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/**
 * Parses and validates a header. `bytes` must hold at least the first 8 + N
 * bytes of the file; `fileSize` (default: `bytes.byteLength`) bounds the data
 * section.
 */
export function parseSafetensorsHeader(bytes: Uint8Array, name = 'safetensors', fileSize = bytes.byteLength): SafetensorsHeader {
  const n = readHeaderLength(bytes, fileSize, name);
  if (bytes.byteLength < 8 + n) throw new Error(`${name}: header needs ${8 + n} bytes but only ${bytes.byteLength} were given`);
  let json: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${name}: header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new Error(`${name}: header is not a JSON object`);
  }
  const dataSize = fileSize - 8 - n;
  const metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [key, value] of Object.entries(json as Record<string, unknown>)) {
    if (key === '__metadata__') {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw new Error(`${name}: "__metadata__" must be an object of strings`);
      }
      for (const [mk, mv] of Object.entries(value as Record<string, unknown>)) {
        if (typeof mv !== 'string') throw new Error(`${name}: "__metadata__" value for "${mk}" is not a string`);
        metadata[mk] = mv;
      }
      continue;
    }
    entries.push(parseEntry(key, value, dataSize, name));
  }
  // Overlap check: sort by start; each tensor must begin at or after the previous end.
  // Zero-byte tensors occupy nothing and cannot overlap.
  const sorted = entries.filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1]!, b = sorted[i]!;
    if (b.begin < a.end) {
      throw new Error(`${name}: tensors "${a.name}" data_offsets [${a.begin}, ${a.end}] and "${b.name}" [${b.begin}, ${b.end}] overlap`);
    }
  }
  return { headerBytes: n, dataStart: 8 + n, entries, metadata };
}

function parseEntry(key: string, value: unknown, dataSize: number, name: string): SafetensorsEntry {
  const where = `${name}: tensor "${key}"`;
  if (key === '') throw new Error(`${name}: header has a tensor with an empty name`);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error(`${where}: entry is not an object`);
  const v = value as Record<string, unknown>;
  for (const k of Object.keys(v)) if (!ENTRY_KEYS.has(k)) throw new Error(`${where}: unexpected field "${k}"`);
  if (!isDType(v.dtype)) {
    throw new Error(`${where}: unknown dtype ${JSON.stringify(v.dtype)} (supported: ${Object.keys(DTYPE_SIZE).join(', ')})`);
  }
  const dtype = v.dtype;
  if (!Array.isArray(v.shape) || !v.shape.every(isCount)) {
    throw new Error(`${where}: shape must be an array of non-negative integers, got ${JSON.stringify(v.shape)}`);
  }
  const shape = v.shape as number[];
  const off = v.data_offsets;
  if (!Array.isArray(off) || off.length !== 2 || !isCount(off[0]) || !isCount(off[1]) || off[0] > off[1]) {
    throw new Error(`${where}: data_offsets must be [begin, end] with 0 <= begin <= end, got ${JSON.stringify(off)}`);
  }
  const [begin, end] = off as [number, number];
  if (end > dataSize) {
    throw new Error(`${where}: data_offsets [${begin}, ${end}] run past the end of the data section (${dataSize} bytes; truncated file?)`);
  }
  const need = numel(shape) * DTYPE_SIZE[dtype];
  if (end - begin !== need) {
    throw new Error(`${where}: data_offsets [${begin}, ${end}] span ${end - begin} bytes but shape ${formatShape(shape)} x ${dtype} needs ${need}`);
  }
  return { name: key, dtype, shape, begin, end };
}

/** Tensor access on a parsed header plus a positional reader. Shared by the in-memory and file readers. */
class SafetensorsSource implements SafeTensorFile {
  readonly names: readonly string[];
  readonly metadata: Readonly<Record<string, string>>;
  private readonly byName = new Map<string, SafetensorsEntry>();

  constructor(
    readonly name: string,
    readonly header: SafetensorsHeader,
    private readonly readAt: (offset: number, length: number) => Promise<Uint8Array>,
    private readonly closeFn: () => Promise<void>,
  ) {
    for (const e of header.entries) this.byName.set(e.name, e);
    this.names = header.entries.map((e) => e.name);
    this.metadata = header.metadata;
  }

  has(tensor: string): boolean {
    return this.byName.has(tensor);
  }

  private entry(tensor: string): SafetensorsEntry {
    const e = this.byName.get(tensor);
    if (!e) throw new Error(`${this.name}: no tensor "${tensor}"`);
    return e;
  }

  info(tensor: string): TensorInfo {
    const e = this.entry(tensor);
    return { dtype: e.dtype, shape: [...e.shape] };
  }

  getBytes(tensor: string): Promise<Uint8Array> {
    const e = this.entry(tensor);
    return this.readAt(this.header.dataStart + e.begin, e.end - e.begin);
  }

  async getF32(tensor: string): Promise<Float32Array> {
    const e = this.entry(tensor);
    return bytesToF32(await this.getBytes(tensor), e.dtype, `${this.name}: tensor "${tensor}"`);
  }

  async getI32(tensor: string): Promise<Int32Array> {
    const e = this.entry(tensor);
    return bytesToI32(await this.getBytes(tensor), e.dtype, `${this.name}: tensor "${tensor}"`);
  }

  close(): Promise<void> {
    return this.closeFn();
  }
}

/** Reads a safetensors file held in memory (browsers, tests). Tensor reads copy their bytes. */
export function readSafetensors(bytes: Uint8Array, name = 'safetensors'): SafeTensorFile {
  const header = parseSafetensorsHeader(bytes, name);
  return new SafetensorsSource(name, header, async (o, n) => bytes.slice(o, o + n), async () => {});
}

/**
 * Opens a safetensors file through positional reads: the prefix and header now,
 * each tensor when asked. Takes ownership of `ra` (closed by `close()`, or on a
 * header error).
 */
export async function openSafetensorsFrom(ra: RandomAccess, name: string): Promise<SafeTensorFile> {
  try {
    const n = readHeaderLength(await ra.read(0, Math.min(8, ra.size)), ra.size, name);
    const head = await ra.read(0, 8 + n);
    const header = parseSafetensorsHeader(head, name, ra.size);
    return new SafetensorsSource(name, header, (o, len) => ra.read(o, len), () => ra.close());
  } catch (e) {
    await ra.close();
    throw e;
  }
}

// ---------------------------------------------------------------- writing

/** A tensor to encode: data is a typed array matching dtype, or raw bytes (Uint8Array). */
export interface EncodeTensor {
  dtype: DType;
  shape: readonly number[];
  data: TensorData;
}

/** A tensor to write to a file; data may be produced lazily, one tensor at a time. */
export interface WriteTensor {
  dtype: DType;
  shape: readonly number[];
  data: TensorData | (() => TensorData | Promise<TensorData>);
}

export type TensorEntries<T> = Record<string, T> | Map<string, T> | Iterable<readonly [string, T]>;

export interface PlannedTensor<T> {
  name: string;
  tensor: T;
  begin: number;
  end: number;
}

export interface SafetensorsPlan<T> {
  /** The 8-byte prefix plus the padded JSON: the first bytes of the file. */
  head: Uint8Array;
  /** Tensors in data-section order. */
  order: PlannedTensor<T>[];
  /** Total file size. */
  fileSize: number;
}

function entriesOf<T>(tensors: TensorEntries<T>): [string, T][] {
  if (tensors instanceof Map) return [...tensors.entries()];
  if (Symbol.iterator in (tensors as object)) return [...(tensors as Iterable<readonly [string, T]>)].map(([k, v]) => [k, v]);
  return Object.entries(tensors as Record<string, T>);
}

/**
 * Lays out a file: validates names, dtypes, shapes and metadata, orders the
 * tensors (8-byte elements first so offsets stay aligned without padding) and
 * builds the header bytes.
 */
export function planSafetensors<T extends { dtype: DType; shape: readonly number[] }>(
  tensors: TensorEntries<T>, metadata: Record<string, string> | undefined, name: string,
): SafetensorsPlan<T> {
  const list = entriesOf(tensors);
  const seen = new Set<string>();
  for (const [key, t] of list) {
    if (key === '' || key === '__metadata__') throw new Error(`${name}: invalid tensor name ${JSON.stringify(key)}`);
    if (seen.has(key)) throw new Error(`${name}: tensor "${key}" given twice`);
    seen.add(key);
    if (!isDType(t.dtype)) throw new Error(`${name}: tensor "${key}": unknown dtype ${JSON.stringify(t.dtype)}`);
    if (!Array.isArray(t.shape) || !t.shape.every(isCount)) {
      throw new Error(`${name}: tensor "${key}": shape must be an array of non-negative integers, got ${JSON.stringify(t.shape)}`);
    }
  }
  const sorted = list.map((e, i) => ({ e, i }))
    .sort((a, b) => DTYPE_SIZE[b.e[1].dtype] - DTYPE_SIZE[a.e[1].dtype] || a.i - b.i)
    .map(({ e }) => e);
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`${name}: metadata value for "${k}" is not a string`);
    }
    header['__metadata__'] = metadata;
  }
  const order: PlannedTensor<T>[] = [];
  let off = 0;
  for (const [key, t] of sorted) {
    const bytes = numel(t.shape) * DTYPE_SIZE[t.dtype];
    header[key] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [off, off + bytes] };
    order.push({ name: key, tensor: t, begin: off, end: off + bytes });
    off += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const pad = (8 - (json.byteLength % 8)) % 8;
  const head = new Uint8Array(8 + json.byteLength + pad);
  new DataView(head.buffer).setUint32(0, json.byteLength + pad, true);
  new DataView(head.buffer).setUint32(4, Math.floor((json.byteLength + pad) / 2 ** 32), true);
  head.set(json, 8);
  head.fill(0x20, 8 + json.byteLength); // JSON allows trailing spaces
  return { head, order, fileSize: head.byteLength + off };
}

type ArrayCtor = abstract new (...args: never[]) => ArrayBufferView;
const ARRAY_FOR: Readonly<Record<DType, ArrayCtor>> = {
  F64: Float64Array, F32: Float32Array, F16: Uint16Array, BF16: Uint16Array, I64: BigInt64Array,
  I32: Int32Array, U32: Uint32Array, I16: Int16Array, U16: Uint16Array, I8: Int8Array, U8: Uint8Array, BOOL: Uint8Array,
};

/**
 * The bytes of one tensor's data, checked against its dtype and shape: a typed
 * array of the matching kind (Uint16Array holds F16/BF16 bits), or a
 * Uint8Array of raw little-endian bytes for any dtype.
 */
export function tensorBytes(t: { dtype: DType; shape: readonly number[] }, data: unknown, file: string, tensor: string): Uint8Array {
  const where = `${file}: tensor "${tensor}"`;
  if (!ArrayBuffer.isView(data) || data instanceof DataView) throw new Error(`${where}: data is not a typed array`);
  const want = ARRAY_FOR[t.dtype];
  // Uint8Array (Node Buffers included) is always accepted as raw bytes.
  if (!(data instanceof Uint8Array) && !(data instanceof want)) {
    throw new Error(`${where}: ${t.dtype} data must be a ${want.name} (or raw bytes in a Uint8Array), got a ${(data as object).constructor.name}`);
  }
  const need = numel(t.shape) * DTYPE_SIZE[t.dtype];
  if (data.byteLength !== need) {
    throw new Error(`${where}: data has ${data.byteLength} bytes but shape ${formatShape(t.shape)} x ${t.dtype} needs ${need}`);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Encodes tensors and string metadata into safetensors bytes. */
export function encodeSafetensors(
  tensors: TensorEntries<EncodeTensor>, metadata?: Record<string, string>, name = 'safetensors',
): Uint8Array {
  const plan = planSafetensors(tensors, metadata, name);
  const out = new Uint8Array(plan.fileSize);
  out.set(plan.head, 0);
  for (const p of plan.order) out.set(tensorBytes(p.tensor, p.tensor.data, name, p.name), plan.head.byteLength + p.begin);
  return out;
}
