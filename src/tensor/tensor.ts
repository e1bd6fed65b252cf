// Tensors live on the GPU in pooled storage buffers. A tensor is always contiguous (row-major);
// reshape shares storage, every other view is materialised by a kernel. Storage is reference
// counted so the tape can keep what backward needs after the user has disposed a tensor.
import { currentGpu, GpuError, type Gpu } from '../gpu/index.js';
import type { PooledBuffer } from '../gpu/pool.js';
import { backward as runBackward, type BackwardOptions, type TapeNode } from '../autograd/tape.js';

export type DType = 'f32' | 'i32' | 'u32' | 'f16';
export type Shape = readonly number[];
export type HostArray = Float32Array | Int32Array | Uint32Array;

export const DTYPE_BYTES: Readonly<Record<DType, number>> = { f32: 4, i32: 4, u32: 4, f16: 2 };

export function shapeSize(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeStr(shape: Shape): string {
  return `[${shape.join(',')}]`;
}

export function checkShape(shape: Shape, what: string): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new GpuError(`${what}: invalid shape ${shapeStr(shape)}`);
  }
}

/** A pooled buffer plus a reference count; returned to the pool when the count reaches zero. */
export class Storage {
  refs = 1;
  constructor(
    readonly gpu: Gpu,
    readonly pooled: PooledBuffer,
    /** Bytes actually used (the pooled buffer may be larger). */
    readonly bytes: number,
  ) {}
  get buffer(): GPUBuffer {
    return this.pooled.buffer;
  }
  retain(): void {
    this.refs++;
  }
  release(): void {
    if (--this.refs === 0) this.gpu.pool.release(this.pooled);
  }
}

// Scopes: tensors created while a scope is open are disposed when it closes, unless returned or kept.
const scopes: Set<Tensor>[] = [];
/** Set while creating handles that no scope may own (shares kept by the tape). */
let untracked = false;

let nextId = 1;

export class Tensor {
  readonly id = nextId++;
  readonly size: number;
  /** Gradient, set on leaves (tensors with requiresGrad and no producing op) by backward(). */
  grad: Tensor | null = null;
  /** The recorded op that produced this tensor (null for leaves). */
  node: TapeNode | null = null;
  name: string | undefined;
  private _disposed = false;
  private _requiresGrad = false;

  constructor(
    readonly gpu: Gpu,
    readonly shape: Shape,
    readonly dtype: DType,
    readonly storage: Storage,
  ) {
    this.size = shapeSize(shape);
    const top = scopes[scopes.length - 1];
    if (top && !untracked) top.add(this);
  }

  get requiresGrad(): boolean {
    return this._requiresGrad;
  }
  set requiresGrad(v: boolean) {
    if (v && this.dtype !== 'f32' && this.dtype !== 'f16') throw new GpuError(`a ${this.dtype} tensor cannot require grad`);
    this._requiresGrad = v;
  }

  get rank(): number {
    return this.shape.length;
  }
  get disposed(): boolean {
    return this._disposed;
  }
  get buffer(): GPUBuffer {
    this.assertAlive('use');
    return this.storage.buffer;
  }
  get bytes(): number {
    return this.size * DTYPE_BYTES[this.dtype];
  }

  /** A label for errors: name or id, dtype and shape. */
  describe(): string {
    return `${this.name ?? `tensor#${this.id}`} ${this.dtype}${shapeStr(this.shape)}`;
  }

  assertAlive(op: string): void {
    if (this._disposed) throw new GpuError(`${op}: ${this.describe()} was disposed`);
  }

  /** Marks this tensor as a trainable leaf and returns it. */
  param(name?: string): this {
    this.requiresGrad = true;
    if (name) this.name = name;
    return this;
  }

  /** A new handle on the same storage (reference counted). Not tracked by scopes. */
  share(shape: Shape = this.shape): Tensor {
    this.assertAlive('share');
    if (shapeSize(shape) !== this.size) throw new GpuError(`reshape ${this.describe()} to ${shapeStr(shape)}: sizes differ`);
    this.storage.retain();
    untracked = true;
    try {
      return new Tensor(this.gpu, shape, this.dtype, this.storage);
    } finally {
      untracked = false;
    }
  }

  dispose(): void {
    if (this._disposed) return;
    this._disposed = true;
    this.storage.release();
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  /** Reads the values back (waits for the GPU). */
  async read(): Promise<HostArray> {
    this.assertAlive('read');
    const buf = await this.gpu.read(this.storage.buffer, 0, this.bytes, this.describe());
    switch (this.dtype) {
      case 'f32':
        return new Float32Array(buf);
      case 'i32':
        return new Int32Array(buf);
      case 'u32':
        return new Uint32Array(buf);
      case 'f16':
        throw new GpuError('read(): f16 tensors are read through a cast to f32');
    }
  }

  async readF32(): Promise<Float32Array> {
    const v = await this.read();
    return v instanceof Float32Array ? v : Float32Array.from(v);
  }

  /** Reads a scalar (size-1 tensor). */
  async item(): Promise<number> {
    if (this.size !== 1) throw new GpuError(`item(): ${this.describe()} is not a scalar`);
    return (await this.read())[0]!;
  }

  /** Backpropagates from this scalar through the recorded tape. */
  backward(opts?: BackwardOptions): void {
    runBackward(this, opts);
  }
}

function gpuOf(gpu?: Gpu): Gpu {
  return gpu ?? currentGpu();
}

/** Uninitialised tensor (contents are whatever the pooled buffer held). */
export function empty(shape: Shape, dtype: DType = 'f32', gpu?: Gpu, label = 'empty'): Tensor {
  const g = gpuOf(gpu);
  checkShape(shape, label);
  const bytes = Math.max(4, Math.ceil((shapeSize(shape) * DTYPE_BYTES[dtype]) / 4) * 4);
  const pooled = g.pool.acquire(bytes, `${label} ${dtype}${shapeStr(shape)}`);
  return new Tensor(g, [...shape], dtype, new Storage(g, pooled, bytes));
}

export function zeros(shape: Shape, dtype: DType = 'f32', gpu?: Gpu): Tensor {
  const t = empty(shape, dtype, gpu, 'zeros');
  t.gpu.clear(t.storage.buffer, 0, t.storage.bytes, `zeros ${shapeStr(shape)}`);
  return t;
}

export function tensor(data: ArrayLike<number> | HostArray, shape?: Shape, dtype?: DType, gpu?: Gpu): Tensor {
  const dt: DType = dtype ?? (data instanceof Int32Array ? 'i32' : data instanceof Uint32Array ? 'u32' : 'f32');
  const sh = shape ?? [data.length];
  if (shapeSize(sh) !== data.length) {
    throw new GpuError(`tensor(): ${data.length} values do not fill shape ${shapeStr(sh)}`);
  }
  const host: HostArray =
    dt === 'f32'
      ? data instanceof Float32Array
        ? data
        : Float32Array.from(data)
      : dt === 'i32'
        ? data instanceof Int32Array
          ? data
          : Int32Array.from(data)
        : dt === 'u32'
          ? data instanceof Uint32Array
            ? data
            : Uint32Array.from(data)
          : (() => {
              throw new GpuError('tensor(): f16 upload not supported yet');
            })();
  const t = empty(sh, dt, gpu, 'tensor');
  if (host.length) t.gpu.write(t.storage.buffer, 0, host, `upload ${t.describe()}`);
  return t;
}

/** Runs `fn`, then disposes every tensor it created except those reachable from its result. */
export function tidy<T>(fn: () => T): T {
  const created = new Set<Tensor>();
  scopes.push(created);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  const keep = new Set<Tensor>();
  collectTensors(result, keep);
  const outer = scopes[scopes.length - 1];
  for (const t of created) {
    if (keep.has(t)) outer?.add(t);
    else t.dispose();
  }
  return result;
}

/** Removes a tensor from every open scope so tidy() does not dispose it. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

function collectTensors(v: unknown, out: Set<Tensor>, depth = 0): void {
  if (depth > 4 || v === null || typeof v !== 'object') return;
  if (v instanceof Tensor) {
    out.add(v);
    return;
  }
  if (Array.isArray(v)) for (const x of v) collectTensors(x, out, depth + 1);
  else if (v instanceof Map) for (const x of v.values()) collectTensors(x, out, depth + 1);
  else if (Object.getPrototypeOf(v) === Object.prototype) for (const x of Object.values(v)) collectTensors(x, out, depth + 1);
}
