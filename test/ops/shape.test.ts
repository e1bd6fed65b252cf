import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as ops from '../../src/ops/shape.js';
import * as ref from '../ref/core.js';
import * as sref from '../ref/shape.js';
import { checkOp, randArray } from '../helpers/parity.js';
import { tensor } from '../../src/tensor/tensor.js';
import { getGpu } from '../../src/gpu/index.js';
import { noGrad } from '../../src/autograd/tape.js';
import { copyStats, setCopyVariant, type CopyVariant } from '../../src/ops/copy.js';

/** Registers a test once per copy-kernel variant (auto takes vec4 where a copy allows it). */
function both(name: string, fn: () => Promise<void>): void {
  for (const v of ['auto', 'scalar'] as CopyVariant[]) {
    test(`${name} [${v}]`, async () => {
      const prev = setCopyVariant(v);
      const vec0 = copyStats.vec4;
      try {
        await fn();
      } finally {
        setCopyVariant(prev);
      }
      if (v === 'scalar') assert.is(copyStats.vec4, vec0, 'scalar variant forced but vec4 ran');
    });
  }
}

const P = (s: readonly number[]) => JSON.stringify(s);

test('reshape is a view; -1 is inferred; backward reshapes back', async () => {
  const gpu = await getGpu();
  const x = tensor(new Float32Array(24).map((_, i) => i), [2, 3, 4], 'f32', gpu);
  const y = noGrad(() => ops.reshape(x, [4, -1]));
  assert.equal([...y.shape], [4, 6]);
  assert.ok(y.storage === x.storage, 'reshape shares storage');
  assert.equal([...(await y.read())], [...(await x.read())]);
  y.dispose();
  x.dispose();
  for (const [from, to, resolved] of [
    [[2, 3, 4], [6, -1], [6, 4]],
    [[1], [1, 1, 1], [1, 1, 1]],
    [[7, 11], [77], [77]],
    [[5, 1, 3], [-1], [15]],
  ] as const) {
    await checkOp({ name: `reshape ${P(from)}->${P(to)}`, inputs: [{ shape: from }], gpu: (a) => ops.reshape(a, to), ref: (a) => ref.reshape(a, resolved) });
  }
});

test('reshape used twice inside one graph: gradients accumulate, nothing leaks', async () => {
  await checkOp({
    name: 'concat(reshape(x), reshape(x))',
    inputs: [{ shape: [3, 4] }],
    gpu: (a) => ops.concat([ops.reshape(a, [1, 12]), ops.reshape(ops.reshape(a, [4, 3]), [1, -1])], 0),
    ref: (a) => ref.concat([ref.reshape(a, [1, 12]), ref.reshape(a, [1, 12])], 0),
  });
});

const perms: [number[], number[]][] = [
  [[5], [0]],
  [[1, 1], [1, 0]],
  [[7, 13], [1, 0]],
  [[2, 3, 5], [2, 0, 1]],
  [[3, 1, 4, 2], [3, 1, 0, 2]],
  [[2, 3, 2, 5, 3], [4, 2, 0, 3, 1]],
  [[2, 3, 2, 1, 3, 2], [5, 4, 3, 2, 1, 0]],
  [[3, 2, 5, 7], [0, 2, 1, 3]],
  [[2, 3, 5, 8], [1, 0, 2, 3]],
  [[2, 7, 4, 16], [0, 2, 1, 3]],
];

both('permute forward and backward, ranks 1 to 6', async () => {
  for (const [shape, perm] of perms) {
    await checkOp({ name: `permute ${P(shape)} ${P(perm)}`, inputs: [{ shape }], gpu: (a) => ops.permute(a, perm), ref: (a) => ref.permute(a, perm) });
  }
  await checkOp({ name: 'permute negative axes', inputs: [{ shape: [3, 4, 5] }], gpu: (a) => ops.permute(a, [-1, 0, -2]), ref: (a) => ref.permute(a, [2, 0, 1]) });
});

both('transpose defaults to the last two dims; explicit dims', async () => {
  await checkOp({ name: 'transpose [4,7,3]', inputs: [{ shape: [4, 7, 3] }], gpu: (a) => ops.transpose(a), ref: ref.transpose });
  await checkOp({ name: 'transpose(0, 2) [4,7,3]', inputs: [{ shape: [4, 7, 3] }], gpu: (a) => ops.transpose(a, 0, 2), ref: (a) => ref.permute(a, [2, 1, 0]) });
  await checkOp({ name: 'transpose [1,31]', inputs: [{ shape: [1, 31] }], gpu: (a) => ops.transpose(a), ref: ref.transpose });
});

both('slice forward and backward (axes, negatives, size 1, full, empty)', async () => {
  const cases: [number[], number, number, number | undefined][] = [
    [[10], 0, 3, 7],
    [[7, 13], 1, 2, 11],
    [[7, 13], 0, -3, undefined],
    [[3, 5, 11], 1, 4, 5],
    [[3, 5, 11], -1, 0, 11],
    [[1, 1, 1], 2, 0, 1],
    [[2, 77, 5], 1, 0, 1],
    [[4, 6], 1, 3, 3],
    [[3, 5, 12], 1, 1, 4],
    [[3, 16], 1, 4, 12],
  ];
  for (const [shape, axis, s, e] of cases) {
    const ax = axis < 0 ? axis + shape.length : axis;
    const dim = shape[ax]!;
    const rs = s < 0 ? s + dim : s;
    const re = e === undefined ? dim : e < 0 ? e + dim : e;
    await checkOp({ name: `slice ${P(shape)} axis ${axis} [${s},${e})`, inputs: [{ shape }], gpu: (a) => ops.slice(a, axis, s, e), ref: (a) => ref.slice(a, ax, rs, re) });
  }
});

both('concat forward and backward (axes, 1-3 parts, a frozen part)', async () => {
  await checkOp({ name: 'concat axis 0', inputs: [{ shape: [2, 3] }, { shape: [5, 3] }], gpu: (a, b) => ops.concat([a, b], 0), ref: (a, b) => ref.concat([a, b], 0) });
  await checkOp({
    name: 'concat axis 1 x3',
    inputs: [{ shape: [3, 1, 7] }, { shape: [3, 5, 7] }, { shape: [3, 2, 7] }],
    gpu: (a, b, c) => ops.concat([a, b, c], 1),
    ref: (a, b, c) => ref.concat([a, b, c], 1),
  });
  await checkOp({ name: 'concat last axis', inputs: [{ shape: [4, 3] }, { shape: [4, 13] }], gpu: (a, b) => ops.concat([a, b], -1), ref: (a, b) => ref.concat([a, b], 1) });
  await checkOp({ name: 'concat vec4 axis 1', inputs: [{ shape: [3, 1, 8] }, { shape: [3, 4, 8] }], gpu: (a, b) => ops.concat([a, b], 1), ref: (a, b) => ref.concat([a, b], 1) });
  await checkOp({ name: 'concat one part', inputs: [{ shape: [4, 3] }], gpu: (a) => ops.concat([a], 1), ref: (a) => ref.concat([a], 1) });
  // Prompt tuning: learned context rows between frozen prefix and suffix embeddings.
  await checkOp({
    name: 'concat frozen/learned/frozen',
    inputs: [{ shape: [2, 1, 8], grad: false }, { shape: [2, 4, 8] }, { shape: [2, 3, 8], grad: false }],
    gpu: (a, b, c) => ops.concat([a, b, c], 1),
    ref: (a, b, c) => ref.concat([a, b, c], 1),
  });
});

both('patchify forward and backward matches reshape+permute; conv column order', async () => {
  for (const [shape, p] of [
    [[2, 3, 8, 12], 4],
    [[1, 1, 5, 5], 5],
    [[1, 2, 14, 21], 7],
    [[3, 3, 2, 2], 1],
  ] as [number[], number][]) {
    await checkOp({ name: `patchify ${P(shape)} P=${p}`, inputs: [{ shape }], gpu: (a) => ops.patchify(a, p), ref: (a) => sref.patchify(a, p) });
  }
  // patchify(x) @ W.reshape(D, C*P*P)^T equals a direct stride-P convolution with W [D, C, P, P].
  const gpu = await getGpu();
  const [B, C, H, W, p, D] = [2, 3, 6, 9, 3, 4];
  const xv = randArray(B * C * H * W, 5);
  const wv = randArray(D * C * p * p, 6);
  const x = tensor(Float32Array.from(xv), [B, C, H, W], 'f32', gpu);
  const cols = noGrad(() => ops.patchify(x, p));
  const colv = await cols.read();
  const hp = H / p;
  const wp = W / p;
  const np = hp * wp;
  const K = C * p * p;
  let maxErr = 0;
  for (let b = 0; b < B; b++)
    for (let d = 0; d < D; d++)
      for (let oy = 0; oy < hp; oy++)
        for (let ox = 0; ox < wp; ox++) {
          let conv = 0;
          for (let c = 0; c < C; c++)
            for (let ky = 0; ky < p; ky++)
              for (let kx = 0; kx < p; kx++) conv += xv[((b * C + c) * H + oy * p + ky) * W + ox * p + kx]! * wv[((d * C + c) * p + ky) * p + kx]!;
          let mm = 0;
          for (let k = 0; k < K; k++) mm += colv[(b * np + oy * wp + ox) * K + k]! * wv[d * K + k]!;
          maxErr = Math.max(maxErr, Math.abs(mm - conv));
        }
  assert.ok(maxErr < 1e-6, `conv via patchify differs by ${maxErr}`);
  cols.dispose();
  x.dispose();
});

both('integer tensors move bit-exactly', async () => {
  const gpu = await getGpu();
  const v = Int32Array.from({ length: 60 }, (_, i) => (i * 7919) ^ -0x40000000);
  const x = tensor(v, [3, 4, 5], 'i32', gpu);
  const y = ops.permute(x, [2, 0, 1]);
  const z = ops.concat([ops.slice(y, 1, 0, 2), ops.slice(y, 1, 2, 3)], 1);
  assert.is(z.dtype, 'i32');
  const got = await z.read();
  const want = ref.permute(ref.R.from(v, [3, 4, 5]), [2, 0, 1]).data;
  assert.equal([...got], [...want]);
  for (const t of [x, y, z]) t.dispose();
});

test('the vec4 copy kernel runs where a copy allows it, the scalar one elsewhere', async () => {
  const gpu = await getGpu();
  const x = tensor(new Float32Array(2 * 7 * 4 * 16), [2, 7, 4, 16], 'f32', gpu);
  const c0 = { ...copyStats };
  const y = noGrad(() => ops.permute(x, [0, 2, 1, 3]));
  assert.equal([copyStats.vec4 - c0.vec4, copyStats.scalar - c0.scalar], [1, 0]);
  const z = noGrad(() => ops.transpose(x));
  assert.equal([copyStats.vec4 - c0.vec4, copyStats.scalar - c0.scalar], [1, 1]);
  for (const t of [x, y, z]) t.dispose();
});

both('more than 65535 workgroups in x (transpose of 4.7M elements)', async () => {
  // 3*1201*1301 = 4.69M elements > 64 * 65535: the grid splits over y.
  await checkOp({ name: 'transpose large', inputs: [{ shape: [3, 1201, 1301] }], gpu: (a) => ops.transpose(a), ref: ref.transpose, fdCoords: 3 });
});

test('determinism: a permute backward runs bit-identically twice', async () => {
  const gpu = await getGpu();
  const run = async () => {
    const x = tensor(Float32Array.from(randArray(210, 3)), [5, 6, 7], 'f32', gpu).param();
    const y = ops.permute(x, [1, 2, 0]);
    y.backward({ gradient: tensor(Float32Array.from(randArray(210, 4)), y.shape, 'f32', gpu) });
    const g = await x.grad!.read();
    x.dispose();
    y.dispose();
    return g;
  };
  assert.equal([...(await run())], [...(await run())]);
});

test('bad inputs are clear errors before any dispatch', async () => {
  const gpu = await getGpu();
  const x = tensor(new Float32Array(24), [2, 3, 4], 'f32', gpu);
  const big = tensor(new Float32Array(64), [1, 2, 1, 2, 2, 2, 2, 2], 'f32', gpu);
  const before = gpu.counters.dispatches;
  assert.throws(() => ops.reshape(x, [5, -1]), /reshape tensor#\d+ f32\[2,3,4\] to \[5,-1\]: cannot infer -1/);
  assert.throws(() => ops.reshape(x, [-1, -1]), /more than one -1/);
  assert.throws(() => ops.reshape(x, [5, 5]), /sizes 24 and 25 differ/);
  assert.throws(() => ops.permute(x, [0, 0, 1]), /permute tensor#\d+ f32\[2,3,4\]: \[0,0,1\] is not a permutation of 3 axes/);
  assert.throws(() => ops.permute(x, [0, 1]), /not a permutation of 3 axes/);
  assert.throws(() => ops.permute(x, [0, 1, 3]), /not a permutation/);
  assert.throws(() => ops.permute(big, [7, 6, 5, 4, 3, 2, 1, 0]), /rank 8 over 6/);
  assert.throws(() => ops.transpose(x, 0, 3), /transpose: axis 3 out of range for tensor#\d+ f32\[2,3,4\]/);
  assert.throws(() => ops.slice(x, 1, 2, 4), /slice tensor#\d+ f32\[2,3,4\]: \[2, 4\) out of range for axis 1 of size 3/);
  assert.throws(() => ops.slice(x, 1, 2, 1), /out of range/);
  assert.throws(() => ops.slice(x, 3, 0, 1), /slice: axis 3 out of range/);
  assert.throws(() => ops.concat([], 0), /concat: no tensors/);
  const y = tensor(new Float32Array(10), [2, 5], 'f32', gpu);
  const x1 = tensor(new Float32Array(6), [2, 3, 1], 'f32', gpu);
  assert.throws(() => ops.concat([x1, y], 0), /concat along axis 0: tensor#\d+ f32\[2,5\] does not match tensor#\d+ f32\[2,3,1\]/);
  assert.throws(() => ops.concat([x1, x], 1), /concat along axis 1: tensor#\d+ f32\[2,3,4\] does not match/);
  const i = tensor(new Int32Array(24), [2, 3, 4], 'i32', gpu);
  assert.throws(() => ops.concat([x, i], 2), /concat along axis 2: tensor#\d+ i32\[2,3,4\] does not match/);
  assert.throws(() => ops.patchify(x, 2), /patchify: tensor#\d+ f32\[2,3,4\] must be \[B, C, H, W\]/);
  const img = tensor(new Float32Array(3 * 10 * 12), [1, 3, 10, 12], 'f32', gpu);
  assert.throws(() => ops.patchify(img, 4), /patchify tensor#\d+ f32\[1,3,10,12\]: H=10 and W=12 must be multiples of the patch size 4/);
  assert.throws(() => ops.slice(x, 0, -3, 1), /out of range/);
  assert.throws(() => ops.slice(x, 0, 0.5, 1), /out of range/);
  assert.is(gpu.counters.dispatches, before);
  x.dispose();
  assert.throws(() => ops.permute(x, [1, 0, 2]), /permute: tensor#\d+ f32\[2,3,4\] was disposed/);
  for (const t of [big, y, x1, i, img]) t.dispose();
});

test.run();
