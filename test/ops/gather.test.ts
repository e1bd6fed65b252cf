import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as ix from '../../src/ops/index-ops.js';
import { setLinkMethod, type LinkMethod } from '../../src/ops/index-ops.js';
import * as ref from '../ref/core.js';
import * as sref from '../ref/shape.js';
import { checkOp, randArray, rng } from '../helpers/parity.js';
import { tensor } from '../../src/tensor/tensor.js';
import { getGpu, type Gpu } from '../../src/gpu/index.js';
import { clearTape } from '../../src/autograd/tape.js';
import { setCopyVariant, type CopyVariant } from '../../src/ops/copy.js';

/** Registers a test once per kernel variant (auto takes the vec4 kernels where rows are whole vec4s). */
function both(name: string, fn: () => Promise<void>): void {
  for (const v of ['auto', 'scalar'] as CopyVariant[]) {
    test(`${name} [${v}]`, async () => {
      const prev = setCopyVariant(v);
      try {
        await fn();
      } finally {
        setCopyVariant(prev);
      }
    });
  }
}

const ints = (n: number, hi: number, seed: number) => {
  const r = rng(seed);
  return Array.from({ length: n }, () => Math.floor(r() * hi));
};
const idxInput = (data: readonly number[]) => ({ shape: [data.length], dtype: 'i32' as const, grad: false, data });

both('indexSelect forward and backward with repeated indices, every axis', async () => {
  const cases: [number[], number, number[]][] = [
    [[5, 4, 3], 0, [4, 0, 4, 2, 4]],
    [[5, 4, 3], 1, [3, 3, 0, 1, 2, 3]],
    [[5, 4, 3], -1, [2, 0, 2]],
    [[1], 0, [0, 0, 0]],
    [[13, 7], 0, ints(31, 13, 1)],
    [[2, 11, 5], 1, [7]],
    [[3, 9, 8], 1, [8, 0, 8, 3]],
  ];
  for (const [shape, axis, idx] of cases) {
    const ax = axis < 0 ? axis + shape.length : axis;
    await checkOp({
      name: `indexSelect ${JSON.stringify(shape)} axis ${axis} [${idx.length} idx]`,
      inputs: [{ shape }, idxInput(idx)],
      gpu: (x, i) => ix.indexSelect(x, axis, i),
      ref: (x, i) => ref.indexSelect(x, sref.ints(i), ax),
    });
  }
});

both('embedding forward and backward: repeated ids (padding), any ids shape', async () => {
  const ids = [49, 3, 3, 0, 0, 0, 0, 17, 3, 0];
  await checkOp({
    name: 'embedding [50,6] ids [2,5]',
    inputs: [{ shape: [50, 6] }, { shape: [2, 5], dtype: 'i32', grad: false, data: ids }],
    gpu: ix.embedding,
    ref: sref.embedding,
  });
  await checkOp({
    name: 'embedding [9,8] ids [2,6]',
    inputs: [{ shape: [9, 8] }, { shape: [2, 6], dtype: 'i32', grad: false, data: [8, 0, 0, 0, 3, 8, 1, 1, 0, 0, 0, 0] }],
    gpu: ix.embedding,
    ref: sref.embedding,
  });
  await checkOp({ name: 'embedding [1,1] ids [1]', inputs: [{ shape: [1, 1] }, idxInput([0])], gpu: ix.embedding, ref: sref.embedding });
  await checkOp({
    name: 'embedding [23,13] ids [3,7]',
    inputs: [{ shape: [23, 13] }, { shape: [3, 7], dtype: 'i32', grad: false, data: ints(21, 23, 2) }],
    gpu: ix.embedding,
    ref: sref.embedding,
  });
});

both('gatherRows forward and backward (EOT pooling)', async () => {
  const cases: [number[], number[]][] = [
    [[3, 7, 5], [6, 0, 3]],
    [[1, 1, 1], [0]],
    [[4, 5, 2, 3], [4, 4, 1, 0]],
    [[2, 77, 11], [76, 13]],
    [[2, 5, 8], [4, 0]],
  ];
  for (const [shape, idx] of cases) {
    await checkOp({
      name: `gatherRows ${JSON.stringify(shape)}`,
      inputs: [{ shape }, idxInput(idx)],
      gpu: ix.gatherRows,
      ref: (x, i) => sref.gatherRows(x, sref.ints(i)),
    });
  }
});

both('scatterAdd forward and backward, with a base tensor and with a shape', async () => {
  await checkOp({
    name: 'scatterAdd base [6,4] axis 0',
    inputs: [{ shape: [6, 4] }, idxInput([5, 1, 5, 5, 0]), { shape: [5, 4] }],
    gpu: (b, i, s) => ix.scatterAdd(b, 0, i, s),
    ref: (b, i, s) => sref.scatterAdd(b, b.shape, 0, sref.ints(i), s),
  });
  await checkOp({
    name: 'scatterAdd base [3,5,2] axis 1',
    inputs: [{ shape: [3, 5, 2] }, idxInput([4, 4, 0]), { shape: [3, 3, 2] }],
    gpu: (b, i, s) => ix.scatterAdd(b, -2, i, s),
    ref: (b, i, s) => sref.scatterAdd(b, b.shape, 1, sref.ints(i), s),
  });
  await checkOp({
    name: 'scatterAdd shape [7] frozen base',
    inputs: [idxInput([6, 2, 6, 6, 1, 2]), { shape: [6] }],
    gpu: (i, s) => ix.scatterAdd([7], 0, i, s),
    ref: (i, s) => sref.scatterAdd(null, [7], 0, sref.ints(i), s),
  });
  await checkOp({
    name: 'scatterAdd base without grad',
    inputs: [{ shape: [4, 3], grad: false }, idxInput([1, 1]), { shape: [4, 2] }],
    gpu: (b, i, s) => ix.scatterAdd(b, 1, i, s),
    ref: (b, i, s) => sref.scatterAdd(b, b.shape, 1, sref.ints(i), s),
  });
});

/** dW of an embedding with heavily repeated ids, read back. */
async function embeddingGrad(gpu: Gpu, V: number, D: number, ids: number[], seedVals: Float32Array): Promise<Float32Array> {
  const w = tensor(Float32Array.from(randArray(V * D, 9)), [V, D], 'f32', gpu).param();
  const t = tensor(Int32Array.from(ids), [ids.length], 'i32', gpu);
  const y = ix.embedding(w, t);
  const g = tensor(seedVals, y.shape, 'f32', gpu);
  y.backward({ gradient: g });
  const out = (await w.grad!.read()) as Float32Array;
  for (const x of [w, t, y, g]) x.dispose();
  return out;
}

both('scatter-add is deterministic and sums in index order (bit-exact vs a float32 host loop)', async () => {
  const gpu = await getGpu();
  for (const D of [33, 32]) {
    const V = 7;
    const ids = ints(300, V, 3);
    const seedVals = Float32Array.from(randArray(300 * D, 8, -10, 10));
    const a = await embeddingGrad(gpu, V, D, ids, seedVals);
    const b = await embeddingGrad(gpu, V, D, ids, seedVals);
    assert.equal(Buffer.from(a.buffer).equals(Buffer.from(b.buffer)), true, 'two runs differ');
    const host = new Float32Array(V * D);
    for (let k = 0; k < ids.length; k++) for (let j = 0; j < D; j++) host[ids[k]! * D + j] = Math.fround(host[ids[k]! * D + j]! + seedVals[k * D + j]!);
    assert.equal([...a], [...host]);
  }
});

test('link table: scan and bitonic sort agree, bit-exact vs a float32 host loop', async () => {
  const gpu = await getGpu();
  const cases: number[][] = [
    [3, 3],
    [0, 1, 2],
    [4, -1, 4, 9, 4, 2, 2, 12, 0],
    ints(77, 6, 21),
    ints(1000, 900, 22),
    ints(1500, 40, 23).map((v, i) => (i % 11 === 0 ? -5 : i % 13 === 0 ? 1000 : v)),
  ];
  for (const ids of cases) {
    const V = 50;
    const D = 3;
    const seedVals = Float32Array.from(randArray(ids.length * D, 24, -10, 10));
    const host = new Float32Array(V * D);
    for (let k = 0; k < ids.length; k++) {
      if (ids[k]! < 0 || ids[k]! >= V) continue;
      for (let j = 0; j < D; j++) host[ids[k]! * D + j] = Math.fround(host[ids[k]! * D + j]! + seedVals[k * D + j]!);
    }
    for (const method of ['scan', 'sort'] as LinkMethod[]) {
      const prev = setLinkMethod(method);
      try {
        const got = await embeddingGrad(gpu, V, D, ids, seedVals);
        assert.equal([...got], [...host], `${method}, ${ids.length} ids`);
      } finally {
        setLinkMethod(prev);
      }
    }
  }
});

test('long id lists (2000 ids, few distinct) and a big sparse table', async () => {
  const gpu = await getGpu();
  const ids = ints(2000, 5, 4).map((v, i) => (i % 97 === 0 ? 49000 + i : v));
  const D = 4;
  const seedVals = Float32Array.from(randArray(2000 * D, 10));
  const t0 = performance.now();
  const got = await embeddingGrad(gpu, 52000, D, ids, seedVals);
  const ms = performance.now() - t0;
  const host = new Float32Array(52000 * D);
  for (let k = 0; k < ids.length; k++) for (let j = 0; j < D; j++) host[ids[k]! * D + j] = Math.fround(host[ids[k]! * D + j]! + seedVals[k * D + j]!);
  assert.equal([...got], [...host]);
  assert.ok(ms < 20000, `took ${ms} ms`);
});

both('out-of-range ids: zero rows, no gradient; checkIds reports them', async () => {
  const gpu = await getGpu();
  const V = 11;
  const D = 4;
  const wv = Float32Array.from(randArray(V * D, 11));
  const w = tensor(wv, [V, D], 'f32', gpu).param();
  const ids = tensor(Int32Array.from([-1, 3, 11, 2, 3, 1 << 30]), [2, 3], 'i32', gpu);
  const y = ix.embedding(w, ids);
  const yv = await y.read();
  const want = [-1, 3, 11, 2, 3, 1 << 30].flatMap((id) => (id >= 0 && id < V ? [...wv.subarray(id * D, id * D + D)] : [0, 0, 0, 0]));
  assert.equal([...yv], want);
  const seed = tensor(new Float32Array(6 * D).fill(1), [2, 3, D], 'f32', gpu);
  y.backward({ gradient: seed });
  const gw = await w.grad!.read();
  const wantG = new Array(V * D).fill(0);
  for (const id of [3, 2, 3]) for (let j = 0; j < D; j++) wantG[id * D + j] += 1;
  assert.equal([...gw], wantG);
  try {
    await ix.checkIds(ids, V);
    assert.unreachable('checkIds accepted -1');
  } catch (e) {
    assert.match((e as Error).message, /checkIds: tensor#\d+ i32\[2,3\] holds -1 at \[0,0\], outside \[0, 11\)/);
  }
  const ok = tensor(Int32Array.from([0, 10]), [2], 'i32', gpu);
  await ix.checkIds(ok, V);
  // gatherRows and indexSelect follow the same rule.
  const x = tensor(Float32Array.from([1, 2, 3, 4]), [2, 2, 1], 'f32', gpu);
  const rows = tensor(Int32Array.from([2, 1]), [2], 'i32', gpu);
  const r = ix.gatherRows(x, rows);
  assert.equal([...(await r.read())], [0, 4]);
  const cols = tensor(Int32Array.from([1, -2, 2]), [3], 'i32', gpu);
  const sel = ix.indexSelect(x, 1, cols);
  assert.equal([...(await sel.read())], [2, 0, 0, 4, 0, 0]);
  for (const t of [w, ids, y, seed, ok, x, rows, r, cols, sel]) t.dispose();
  clearTape();
});

test('integer tables gather bit-exactly (indexSelect and gatherRows of i32)', async () => {
  const gpu = await getGpu();
  const v = Int32Array.from({ length: 24 }, (_, i) => (i * 7919) ^ -0x40000000);
  const x = tensor(v, [4, 6], 'i32', gpu);
  const i = tensor(Int32Array.from([3, 0, 3]), [3], 'i32', gpu);
  const y = ix.indexSelect(x, 0, i);
  assert.is(y.dtype, 'i32');
  assert.equal([...(await y.read())], [...v.subarray(18, 24), ...v.subarray(0, 6), ...v.subarray(18, 24)]);
  const x3 = x.share([2, 2, 6]);
  const rows = tensor(Int32Array.from([1, 0]), [2], 'i32', gpu);
  const r = ix.gatherRows(x3, rows);
  assert.equal([...(await r.read())], [...v.subarray(6, 12), ...v.subarray(12, 18)]);
  for (const t of [x, x3, rows, i, y, r]) t.dispose();
});

test('more than 65535 workgroups in x (indexSelect of 4.6M elements and its scatter, scalar kernels)', async () => {
  // Scalar kernels: one invocation per element, 72k workgroups (vec4 would need 4x the size).
  const prev = setCopyVariant('scalar');
  try {
    await checkOp({
      name: 'indexSelect large',
      inputs: [{ shape: [300, 1024] }, idxInput(ints(4500, 300, 5))],
      gpu: (x, i) => ix.indexSelect(x, 0, i),
      ref: (x, i) => ref.indexSelect(x, sref.ints(i), 0),
      fdCoords: 2,
    });
  } finally {
    setCopyVariant(prev);
  }
});

test('bad inputs are clear errors before any dispatch', async () => {
  const gpu = await getGpu();
  const w = tensor(new Float32Array(20), [5, 4], 'f32', gpu);
  const fid = tensor(Float32Array.from([1, 2]), [2], 'f32', gpu);
  const id2 = tensor(Int32Array.from([1, 2, 3, 4]), [2, 2], 'i32', gpu);
  const id3 = tensor(Int32Array.from([1, 2, 3]), [3], 'i32', gpu);
  const x3 = tensor(new Float32Array(24), [2, 3, 4], 'f32', gpu);
  const before = gpu.counters.dispatches;
  assert.throws(() => ix.embedding(w, fid), /embedding: indices tensor#\d+ f32\[2\] must be i32/);
  assert.throws(() => ix.embedding(x3, id3), /embedding: weight tensor#\d+ f32\[2,3,4\] must be \[V, D\]/);
  assert.throws(() => ix.indexSelect(w, 0, id2), /indexSelect: indices tensor#\d+ i32\[2,2\] must be 1-D/);
  assert.throws(() => ix.indexSelect(w, 2, id3), /indexSelect: axis 2 out of range for tensor#\d+ f32\[5,4\]/);
  assert.throws(() => ix.gatherRows(x3, id3), /gatherRows: indices tensor#\d+ i32\[3\] must be \[2\] for tensor#\d+ f32\[2,3,4\]/);
  assert.throws(() => ix.gatherRows(x3, fid), /gatherRows: indices tensor#\d+ f32\[2\] must be i32/);
  assert.throws(() => ix.scatterAdd(w, 0, id3, x3), /scatterAdd: tensor#\d+ f32\[2,3,4\] must be \[3,4\] for base \[5,4\], axis 0/);
  assert.throws(() => ix.scatterAdd([5, 4], 0, fid, w), /scatterAdd: indices tensor#\d+ f32\[2\] must be i32/);
  assert.throws(() => ix.scatterAdd(id3, 0, id3, w), /scatterAdd: base tensor#\d+ i32\[3\] must be f32/);
  assert.is(gpu.counters.dispatches, before);
  for (const t of [w, fid, id2, id3, x3]) t.dispose();
  assert.throws(() => ix.embedding(w, id3), /embedding: tensor#\d+ f32\[5,4\] was disposed/);
});

test.run();
