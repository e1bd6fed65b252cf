// PyTorch checkpoints (.pt / .pth / .bin) read without Python and without
// executing anything. Two layouts, both zip archives with stored entries:
//
//   torch.save (torch >= 1.6):  <dir>/data.pkl   pickled object (usually a dict of tensors)
//                               <dir>/data/<key> raw little-endian storage bytes
//                               <dir>/byteorder  optional, "little"
//   torch.jit.save (what clip.load downloads from OpenAI): same data.pkl/data/
//                               layout, but data.pkl pickles `__torch__.*` module
//                               objects whose state dicts hold submodules and tensors.
//
// Tensors are pickled as torch._utils._rebuild_tensor_v2(storage, offset, size,
// stride, ...) where `storage` is a persistent id
// ('storage', torch.<T>Storage, key, location, numel). We only record these
// references; tensor bytes are read from the zip when asked (gathered when
// strided), so converting a large checkpoint holds one tensor at a time.
//
// Tensor names: for a dict, its (dotted) keys; for nested dicts and TorchScript
// modules, the dotted attribute path (e.g. visual.transformer.resblocks.0.attn.
// in_proj_weight). A top-level dict with a "state_dict" (or "model") dict, as
// training checkpoints have, is read from there. Non-tensor values (epoch,
// `training` flags, ints) are skipped. TorchScript archives yield every tensor
// attribute: parameters, buffers and plain tensor attributes (OpenAI's
// attn_mask); the CLIP loader ignores the extras it knows.
//
// Legacy (pre-1.6, non-zip) torch.save files are rejected with a clear message.
// Runtime-agnostic; the Node file layer is torch-pt-node.ts.

import { DTYPE_SIZE, bytesToF32, bytesToI32, formatShape, numel, type DType, type TensorInfo, type TensorSource } from './dtypes.js';
import { unpickle, PyCallable, PyDict, PyObject } from './pickle.js';
import { bytesRandomAccess, type RandomAccess } from './random-access.js';
import { openZip, type ZipArchive } from './zip.js';

const STORAGE_DTYPES: Readonly<Record<string, DType>> = {
  DoubleStorage: 'F64', FloatStorage: 'F32', HalfStorage: 'F16', BFloat16Storage: 'BF16',
  LongStorage: 'I64', IntStorage: 'I32', ShortStorage: 'I16', CharStorage: 'I8', ByteStorage: 'U8', BoolStorage: 'BOOL',
};

/** torch.<T>Storage as named in a persistent id. */
export class TorchStorageType {
  constructor(readonly name: string, readonly dtype: DType) {}
}

/** One storage (zip entry <dir>/data/<key>), shared by every tensor viewing it. */
export class TorchStorage {
  constructor(readonly key: string, readonly entry: string, readonly dtype: DType, readonly numel: number) {}
}

/** A tensor as pickled: a strided view into a storage. Offsets and strides are in elements. */
export class TorchTensorRef {
  constructor(
    readonly storage: TorchStorage,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
  get dtype(): DType {
    return this.storage.dtype;
  }
}

export type TorchCheckpointKind = 'state_dict' | 'torchscript';

export interface TorchCheckpoint extends TensorSource {
  /** 'torchscript' when data.pkl holds `__torch__` module objects (torch.jit.save), else 'state_dict'. */
  readonly kind: TorchCheckpointKind;
}

function isCount(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/**
 * Resolves a pickle global for torch checkpoints. Only these names are
 * understood; every one maps to an inert JS placeholder. Anything else (os.system,
 * builtins.eval, a pickled nn.Module class, ...) is an error naming it.
 */
export function resolveTorchGlobal(module: string, qualname: string, file: string): unknown {
  const full = `${module}.${qualname}`;
  if (module === '__torch__' || module.startsWith('__torch__.')) {
    // TorchScript classes: data-only objects whose state BUILD fills in.
    return new PyCallable(full, (args) => new PyObject(full, args));
  }
  if (module === 'torch' && Object.prototype.hasOwnProperty.call(STORAGE_DTYPES, qualname)) {
    return new TorchStorageType(qualname, STORAGE_DTYPES[qualname]!);
  }
  const rebuild = (args: unknown[]) => rebuildTensor(args, full, file);
  const first = (args: unknown[]) => args[0];
  switch (full) {
    case 'collections.OrderedDict':
      return new PyCallable(full, (args) => {
        const d = new PyDict('OrderedDict');
        if (Array.isArray(args[0])) for (const kv of args[0]) if (Array.isArray(kv) && kv.length === 2) d.map.set(kv[0], kv[1]);
        return d;
      });
    case 'torch._utils._rebuild_tensor_v2':
    case 'torch._utils._rebuild_tensor':
      return new PyCallable(full, rebuild);
    case 'torch._utils._rebuild_parameter':
    case 'torch._utils._rebuild_parameter_with_state':
      return new PyCallable(full, (args) => {
        if (!(args[0] instanceof TorchTensorRef)) throw new Error(`${file}: ${full} of something that is not a tensor`);
        return args[0];
      });
    case 'torch._tensor._rebuild_from_type_v2':
    case 'torch._tensor._rebuild_from_type':
      // (func, new_type, args, state): a tensor with Python attributes or a subclass; keep the tensor.
      return new PyCallable(full, (args) => {
        const [fn, , fnArgs] = args;
        if (!(fn instanceof PyCallable) || !Array.isArray(fnArgs)) throw new Error(`${file}: malformed ${full}`);
        return fn.call(fnArgs);
      });
    case 'torch.Tensor':
    case 'torch._tensor.Tensor':
    case 'torch.nn.parameter.Parameter':
      return new PyCallable(full, () => { throw new Error(`${file}: cannot construct ${full} directly`); });
    case 'torch.Size':
    case 'torch.jit._pickle.restore_type_tag':
    case 'torch.jit._pickle.build_intlist':
    case 'torch.jit._pickle.build_doublelist':
    case 'torch.jit._pickle.build_boollist':
    case 'torch.jit._pickle.build_tensorlist':
      return new PyCallable(full, first);
    case 'torch.device':
      return new PyCallable(full, (args) => args.map(String).join(':'));
    // Non-tensor values that training checkpoints carry (numpy scalars in metadata):
    // kept as inert objects, never interpreted.
    case 'numpy.core.multiarray.scalar':
    case 'numpy.core.multiarray._reconstruct':
    case 'numpy.dtype':
    case 'numpy.ndarray':
    case '_codecs.encode':
      return new PyCallable(full, (args) => new PyObject(full, args));
  }
  const hint = module.startsWith('torch.nn') || module.startsWith('clip.') || module.startsWith('open_clip')
    ? ' (a whole pickled module, torch.save(model): save model.state_dict() instead)'
    : ' (a checkpoint should only reference torch tensor and storage rebuild functions)';
  throw new Error(`${file}: pickle global "${full}" is not allowed${hint}; nothing was executed`);
}

function rebuildTensor(args: unknown[], fn: string, file: string): TorchTensorRef {
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof TorchStorage)) throw new Error(`${file}: ${fn}: first argument is not a storage`);
  if (!isCount(offset) || !Array.isArray(size) || !size.every(isCount) || !Array.isArray(stride) || !stride.every(isCount) || size.length !== stride.length) {
    throw new Error(`${file}: ${fn}: malformed offset/size/stride ${JSON.stringify([offset, size, stride])}`);
  }
  return new TorchTensorRef(storage, offset, size as number[], stride as number[]);
}

/** Finds <dir>/data.pkl (the directory name varies: "archive", the file stem, a model name). */
function findRoot(zip: ZipArchive, name: string): string {
  const roots = [...zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n) || n === 'data.pkl');
  if (roots.length === 0) throw new Error(`${name}: zip has no data.pkl; not a PyTorch checkpoint`);
  if (roots.length > 1) throw new Error(`${name}: zip has several data.pkl (${roots.join(', ')})`);
  return roots[0]!.slice(0, -'data.pkl'.length);
}

/** Opens a zip PyTorch checkpoint. Takes ownership of `ra` (closed by `close()` or on error). */
export async function openTorchCheckpoint(ra: RandomAccess, name: string): Promise<TorchCheckpoint> {
  try {
    const head = await ra.read(0, Math.min(4, ra.size));
    if (head[0] === 0x80 && head.byteLength >= 2 && head[1]! <= 5) {
      throw new Error(`${name}: legacy (pre-1.6, non-zip) torch.save format is not supported; re-save it with torch >= 1.6 or convert it with Python first`);
    }
    if (!(head[0] === 0x50 && head[1] === 0x4b)) {
      throw new Error(`${name}: not a PyTorch checkpoint (not a zip archive; starts with bytes ${[...head].map((b) => b.toString(16).padStart(2, '0')).join(' ')})`);
    }
    const zip = await openZip(ra, name);
    const dir = findRoot(zip, name);
    const bo = zip.entries.get(`${dir}byteorder`);
    if (bo) {
      const order = new TextDecoder().decode(await zip.read(bo.name)).trim();
      if (order !== 'little') throw new Error(`${name}: byteorder "${order}" is not supported (only little-endian checkpoints)`);
    }
    const storages = new Map<string, TorchStorage>();
    const persistentLoad = (pid: unknown): TorchStorage => {
      if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 3) throw new Error(`${name}: unknown persistent id ${JSON.stringify(pid)}`);
      const [, type, key] = pid;
      if (!(type instanceof TorchStorageType)) throw new Error(`${name}: persistent id for storage "${String(key)}" has no storage type`);
      if (typeof key !== 'string') throw new Error(`${name}: persistent id storage key is not a string`);
      const have = storages.get(key);
      if (have) {
        if (have.dtype !== type.dtype) throw new Error(`${name}: storage "${key}" is used as both ${have.dtype} and ${type.dtype}`);
        return have;
      }
      const entry = `${dir}data/${key}`;
      const e = zip.entries.get(entry);
      if (!e) throw new Error(`${name}: storage "${key}" (${type.name}) has no zip entry ${entry}`);
      const es = DTYPE_SIZE[type.dtype];
      if (e.size % es !== 0) throw new Error(`${name}: storage "${key}": ${e.size} bytes is not a whole number of ${type.dtype} elements`);
      const st = new TorchStorage(key, entry, type.dtype, e.size / es);
      storages.set(key, st);
      return st;
    };
    const root = unpickle(await zip.read(`${dir}data.pkl`), {
      name,
      resolveGlobal: (m, q) => resolveTorchGlobal(m, q, name),
      persistentLoad,
    });
    const kind: TorchCheckpointKind = root instanceof PyObject && root.cls.startsWith('__torch__') ? 'torchscript' : 'state_dict';
    const tensors = collectTensors(root, name);
    for (const [path, t] of tensors) checkBounds(t, path, name);
    return new TorchCheckpointSource(name, kind, zip, tensors);
  } catch (e) {
    await ra.close();
    throw e;
  }
}

/** Reads a checkpoint held in memory. */
export function readTorchCheckpoint(bytes: Uint8Array, name = 'checkpoint.pt'): Promise<TorchCheckpoint> {
  return openTorchCheckpoint(bytesRandomAccess(bytes), name);
}

/** Dotted paths to every tensor under `root` (see the header comment for the rules). */
export function collectTensors(root: unknown, name: string): Map<string, TorchTensorRef> {
  const out = new Map<string, TorchTensorRef>();
  if (root instanceof PyDict) {
    for (const key of ['state_dict', 'model']) {
      const sub = root.map.get(key);
      if (sub instanceof PyDict) { root = sub; break; }
    }
  }
  const onPath = new Set<unknown>(); // cycle guard; shared submodules are walked under each name
  const walk = (v: unknown, path: string): void => {
    if (v instanceof TorchTensorRef) {
      if (out.has(path)) throw new Error(`${name}: two tensors are named "${path}"`);
      out.set(path, v);
      return;
    }
    if (v === null || typeof v !== 'object' || onPath.has(v)) return; // scalars, strings, cycles
    onPath.add(v);
    const prefix = path ? `${path}.` : '';
    if (v instanceof PyDict) {
      for (const [k, x] of v.map) if (typeof k === 'string' || typeof k === 'number') walk(x, prefix + k);
    } else if (v instanceof PyObject) {
      if (v.state instanceof PyDict) walk(v.state, path);
    } else if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, prefix + i));
    }
    onPath.delete(v);
  };
  walk(root, '');
  if (out.size === 0) throw new Error(`${name}: the checkpoint holds no tensors`);
  return out;
}

function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]!; }
  return s;
}

/** Last element index the view touches (offset when empty dims are absent). */
function lastIndex(t: TorchTensorRef): number {
  let last = t.offset;
  for (let i = 0; i < t.shape.length; i++) last += (t.shape[i]! - 1) * t.stride[i]!;
  return last;
}

function checkBounds(t: TorchTensorRef, path: string, name: string): void {
  if (numel(t.shape) === 0) return;
  const last = lastIndex(t);
  if (last >= t.storage.numel) {
    throw new Error(`${name}: tensor "${path}": shape ${formatShape(t.shape)} stride ${formatShape(t.stride)} offset ${t.offset} reaches element ${last} of storage "${t.storage.key}" which has ${t.storage.numel}`);
  }
}

function isContiguous(t: TorchTensorRef): boolean {
  const want = contiguousStrides(t.shape);
  return t.shape.every((d, i) => d === 1 || t.stride[i] === want[i]);
}

class TorchCheckpointSource implements TorchCheckpoint {
  readonly names: readonly string[];

  constructor(
    readonly name: string,
    readonly kind: TorchCheckpointKind,
    private readonly zip: ZipArchive,
    private readonly tensors: Map<string, TorchTensorRef>,
  ) {
    this.names = [...tensors.keys()];
  }

  has(tensor: string): boolean {
    return this.tensors.has(tensor);
  }

  private ref(tensor: string): TorchTensorRef {
    const t = this.tensors.get(tensor);
    if (!t) throw new Error(`${this.name}: no tensor "${tensor}"`);
    return t;
  }

  info(tensor: string): TensorInfo {
    const t = this.ref(tensor);
    return { dtype: t.dtype, shape: [...t.shape] };
  }

  async getBytes(tensor: string): Promise<Uint8Array> {
    const t = this.ref(tensor);
    const es = DTYPE_SIZE[t.dtype];
    const n = numel(t.shape);
    if (n === 0) return new Uint8Array(0);
    if (isContiguous(t)) return this.zip.readRange(t.storage.entry, t.offset * es, n * es);
    // Strided view (transposed, sliced with a step, expanded): read the span it
    // touches once, then gather row by row into contiguous order.
    const span = await this.zip.readRange(t.storage.entry, t.offset * es, (lastIndex(t) - t.offset + 1) * es);
    return gather(span, t.shape, t.stride, es);
  }

  async getF32(tensor: string): Promise<Float32Array> {
    return bytesToF32(await this.getBytes(tensor), this.ref(tensor).dtype, `${this.name}: tensor "${tensor}"`);
  }

  async getI32(tensor: string): Promise<Int32Array> {
    return bytesToI32(await this.getBytes(tensor), this.ref(tensor).dtype, `${this.name}: tensor "${tensor}"`);
  }

  close(): Promise<void> {
    return this.zip.close();
  }
}

/** Copies a strided view (element strides, `span` starting at the view's offset) into row-major order. */
export function gather(span: Uint8Array, shape: readonly number[], stride: readonly number[], es: number): Uint8Array {
  const n = numel(shape);
  const out = new Uint8Array(n * es);
  const rank = shape.length;
  if (rank === 0) { out.set(span.subarray(0, es)); return out; }
  const inner = shape[rank - 1]!, innerStride = stride[rank - 1]!;
  const idx = new Array<number>(rank - 1).fill(0);
  let src = 0; // element offset of the current row's start
  for (let o = 0; o < n * es;) {
    if (innerStride === 1) {
      out.set(span.subarray(src * es, (src + inner) * es), o);
      o += inner * es;
    } else {
      for (let j = 0; j < inner; j++, o += es) {
        const s = (src + j * innerStride) * es;
        for (let b = 0; b < es; b++) out[o + b] = span[s + b]!;
      }
    }
    // Odometer over the outer dimensions.
    for (let d = rank - 2; d >= 0; d--) {
      idx[d]!++;
      src += stride[d]!;
      if (idx[d]! < shape[d]!) break;
      src -= idx[d]! * stride[d]!;
      idx[d] = 0;
    }
  }
  return out;
}
