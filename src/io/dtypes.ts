// Tensor element types shared by the safetensors and .pt readers, the conversions
// to the two types the engine computes in (f32 values, i32 ids), and the
// `TensorSource` interface that every checkpoint reader implements, so that
// `src/clip/checkpoint.ts` can take weights from any of them.
// Runtime-agnostic: no Node APIs.

/** safetensors dtype names (the subset we read and write). */
export type DType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'U16' | 'I8' | 'U8' | 'BOOL' | 'U32';

/** Bytes per element. */
export const DTYPE_SIZE: Readonly<Record<DType, number>> = {
  F64: 8, I64: 8, F32: 4, I32: 4, U32: 4, F16: 2, BF16: 2, I16: 2, U16: 2, I8: 1, U8: 1, BOOL: 1,
};

export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_SIZE, s);
}

export const FLOAT_DTYPES: readonly DType[] = ['F64', 'F32', 'F16', 'BF16'];

export interface TensorInfo {
  dtype: DType;
  shape: number[];
}

/**
 * A set of named tensors whose data is read on demand (a safetensors file, a
 * .pt checkpoint, or bytes in memory). `name` is the file name used in errors.
 */
export interface TensorSource {
  readonly name: string;
  /** Tensor names in file order. */
  readonly names: readonly string[];
  has(tensor: string): boolean;
  /** dtype and shape; throws naming the file and the tensor if absent. */
  info(tensor: string): TensorInfo;
  /** Contiguous little-endian bytes in the stored dtype (a fresh, 8-byte-aligned copy). */
  getBytes(tensor: string): Promise<Uint8Array>;
  /** Values as f32: F32 as is, F16/BF16 widened exactly, F64 rounded. Other dtypes are an error. */
  getF32(tensor: string): Promise<Float32Array>;
  /** Values as i32: I32 as is, I64 range-checked, smaller integer types and BOOL widened. */
  getI32(tensor: string): Promise<Int32Array>;
  /** Releases the file handle, if any. Idempotent. */
  close(): Promise<void>;
}

/** Typed arrays accepted as tensor data by the writer. */
export type TensorData =
  | Float64Array | Float32Array | BigInt64Array | Int32Array | Uint32Array
  | Int16Array | Uint16Array | Int8Array | Uint8Array;

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

// Typed-array views below assume the platform's byte order is little-endian, as the
// formats are. Every JS engine we target is; fail loudly rather than misread.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
function assertLittleEndian(): void {
  if (!LITTLE_ENDIAN) throw new Error('cliptune io: big-endian platforms are not supported');
}

type ViewCtor<T> = { new (buffer: ArrayBuffer, byteOffset: number, length: number): T; BYTES_PER_ELEMENT: number };

/** A `T` view of `bytes` (shares memory), copying first only when `bytes` is misaligned for `T`. */
function view<T>(bytes: Uint8Array, Ctor: ViewCtor<T>): T {
  const n = bytes.byteLength / Ctor.BYTES_PER_ELEMENT;
  if (bytes.byteOffset % Ctor.BYTES_PER_ELEMENT === 0 && bytes.buffer instanceof ArrayBuffer) {
    return new Ctor(bytes.buffer, bytes.byteOffset, n);
  }
  return new Ctor(bytes.slice().buffer as ArrayBuffer, 0, n);
}

let halfTable: Uint32Array | undefined;

/** f32 bit patterns of all 65536 f16 values (built once; 256 KiB). Exact, NaN payloads kept. */
function f16Table(): Uint32Array {
  if (halfTable) return halfTable;
  const t = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >> 10) & 0x1f;
    let man = h & 0x3ff;
    if (exp === 0) {
      if (man === 0) { t[h] = sign; continue; }
      // Subnormal f16: normalise into an f32 normal number.
      let e = -1;
      do { man <<= 1; e++; } while ((man & 0x400) === 0);
      t[h] = (sign | ((127 - 15 - e) << 23) | ((man & 0x3ff) << 13)) >>> 0;
    } else if (exp === 31) {
      t[h] = (sign | 0x7f800000 | (man << 13)) >>> 0;
    } else {
      t[h] = (sign | ((exp - 15 + 127) << 23) | (man << 13)) >>> 0;
    }
  }
  return (halfTable = t);
}

export function f16BitsToF32(bits: Uint16Array): Float32Array {
  const table = f16Table();
  const out = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]!]!;
  return new Float32Array(out.buffer);
}

export function bf16BitsToF32(bits: Uint16Array): Float32Array {
  const out = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = bits[i]! << 16;
  return new Float32Array(out.buffer);
}

/** f32 → f16 bits, round to nearest even (for writers that want halved files). */
export function f32ToF16Bits(values: Float32Array): Uint16Array {
  const u = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < u.length; i++) {
    const x = u[i]!;
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    const man = x & 0x7fffff;
    let h: number;
    if (exp === 0xff) h = sign | 0x7c00 | (man ? 0x200 | (man >>> 13) : 0);
    else {
      const e = exp - 127 + 15;
      if (e >= 31) h = sign | 0x7c00;
      else if (e <= 0) {
        if (e < -10) h = sign;
        else {
          const m = man | 0x800000;
          const shift = 14 - e;
          let v = m >>> shift;
          const rem = m & ((1 << shift) - 1), half = 1 << (shift - 1);
          if (rem > half || (rem === half && (v & 1))) v++;
          h = sign | v;
        }
      } else {
        h = sign | (e << 10) | (man >>> 13);
        const rem = man & 0x1fff;
        if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
      }
    }
    out[i] = h;
  }
  return out;
}

/**
 * Converts raw little-endian bytes of `dtype` to f32. `what` prefixes errors
 * (`file: tensor "x"`). For F32 (and I32 below) the result may share memory
 * with `bytes`; readers hand over fresh copies, so that is safe for them.
 */
export function bytesToF32(bytes: Uint8Array, dtype: DType, what: string): Float32Array {
  assertLittleEndian();
  const size = DTYPE_SIZE[dtype];
  if (bytes.byteLength % size !== 0) throw new Error(`${what}: ${bytes.byteLength} bytes is not a whole number of ${dtype} elements`);
  switch (dtype) {
    case 'F32': return view(bytes, Float32Array);
    case 'F16': return f16BitsToF32(view(bytes, Uint16Array));
    case 'BF16': return bf16BitsToF32(view(bytes, Uint16Array));
    case 'F64': return Float32Array.from(view(bytes, Float64Array));
    default: throw new Error(`${what}: dtype ${dtype} is not a floating-point type; cannot read it as f32`);
  }
}

/** Converts raw little-endian bytes of an integer/bool `dtype` to i32, checking I64/U32 ranges. */
export function bytesToI32(bytes: Uint8Array, dtype: DType, what: string): Int32Array {
  assertLittleEndian();
  const size = DTYPE_SIZE[dtype];
  if (bytes.byteLength % size !== 0) throw new Error(`${what}: ${bytes.byteLength} bytes is not a whole number of ${dtype} elements`);
  const n = bytes.byteLength / size;
  switch (dtype) {
    case 'I32': return view(bytes, Int32Array);
    case 'I64': {
      // An i64 fits in i32 iff its high word is the sign extension of its low word.
      const w = view(bytes, Int32Array);
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const lo = w[2 * i]!, hi = w[2 * i + 1]!;
        if (hi !== lo >> 31) {
          const v = (BigInt(hi) << 32n) | BigInt(lo >>> 0);
          throw new Error(`${what}: I64 value ${v} at element ${i} does not fit in i32`);
        }
        out[i] = lo;
      }
      return out;
    }
    case 'U32': {
      const u = view(bytes, Uint32Array);
      for (let i = 0; i < n; i++) if (u[i]! > 0x7fffffff) throw new Error(`${what}: U32 value ${u[i]} at element ${i} does not fit in i32`);
      return new Int32Array(u.buffer, u.byteOffset, n);
    }
    case 'I16': return Int32Array.from(view(bytes, Int16Array));
    case 'U16': return Int32Array.from(view(bytes, Uint16Array));
    case 'I8': return Int32Array.from(new Int8Array(bytes.buffer, bytes.byteOffset, n));
    case 'U8': case 'BOOL': return Int32Array.from(bytes);
    default: throw new Error(`${what}: dtype ${dtype} is not an integer type; cannot read it as i32`);
  }
}
