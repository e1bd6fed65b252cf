import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as ops from '../../src/ops/elementwise.js';
import * as ref from '../ref/core.js';
import { checkOp } from '../helpers/parity.js';
import { tensor } from '../../src/tensor/tensor.js';
import { getGpu } from '../../src/gpu/index.js';

const binaries = [
  ['add', ops.add, ref.add],
  ['sub', ops.sub, ref.sub],
  ['mul', ops.mul, ref.mul],
  ['div', ops.div, ref.div],
] as const;

const shapePairs: [number[], number[]][] = [
  [[1], [1]],
  [[7, 13], [7, 13]],
  [[3, 5, 7], [7]],
  [[3, 1, 7], [5, 1]],
  [[2, 3, 4, 5], [1, 3, 1, 5]],
  [[13], [3, 1]],
];

for (const [name, gop, rop] of binaries) {
  test(`${name} forward and backward with broadcasting`, async () => {
    for (const [sa, sb] of shapePairs) {
      await checkOp({
        name: `${name} ${JSON.stringify(sa)} ${JSON.stringify(sb)}`,
        inputs: [{ shape: sa }, { shape: sb, range: name === 'div' ? [0.5, 2] : [-1, 1] }],
        gpu: gop,
        ref: rop,
      });
    }
  });
}

const unaries = [
  ['neg', ops.neg, ref.neg, [-2, 2]],
  ['exp', ops.exp, ref.exp, [-3, 3]],
  ['log', ops.log, ref.log, [0.1, 4]],
  ['sqrt', ops.sqrt, ref.sqrt, [0.1, 4]],
  ['square', ops.square, ref.square, [-2, 2]],
  ['sigmoid', ops.sigmoid, ref.sigmoid, [-6, 6]],
  ['quickGelu', ops.quickGelu, ref.quickGelu, [-6, 6]],
  ['gelu', ops.gelu, ref.gelu, [-6, 6]],
] as const;

for (const [name, gop, rop, range] of unaries) {
  test(`${name} forward and backward`, async () => {
    for (const shape of [[1], [97], [4, 33]]) {
      await checkOp({ name: `${name} ${JSON.stringify(shape)}`, inputs: [{ shape, range: [...range] }], gpu: gop, ref: rop });
    }
  });
}

test('scale and addScalar', async () => {
  await checkOp({ name: 'scale', inputs: [{ shape: [5, 6] }], gpu: (x) => ops.scale(x, -2.5), ref: (x) => ref.scale(x, -2.5) });
  await checkOp({ name: 'addScalar', inputs: [{ shape: [5, 6] }], gpu: (x) => ops.addScalar(x, 0.75), ref: (x) => ref.addScalar(x, 0.75) });
});

test('more than 65535 workgroups in x', async () => {
  // 64 * 70000 elements: the grid splits over y.
  const n = 64 * 70000;
  await checkOp({ name: 'mul large', inputs: [{ shape: [n] }, { shape: [n] }], gpu: ops.mul, ref: ref.mul, fdCoords: 4 });
});

test('gradient accumulates over multiple uses', async () => {
  const gpu = await getGpu();
  await checkOp({
    name: 'x*x + x',
    inputs: [{ shape: [9] }],
    gpu: (x) => ops.add(ops.mul(x, x), x),
    ref: (x) => ref.add(ref.mul(x, x), x),
  });
  assert.ok(gpu);
});

test('shape mismatch is a clear error before dispatch', async () => {
  const gpu = await getGpu();
  const a = tensor(new Float32Array(6), [2, 3]);
  const b = tensor(new Float32Array(4), [4]);
  const before = gpu.counters.dispatches;
  assert.throws(() => ops.add(a, b), /add: shapes \[2,3\] and \[4\] do not broadcast/);
  assert.is(gpu.counters.dispatches, before);
  a.dispose();
  assert.throws(() => ops.exp(a), /exp: tensor#\d+ f32\[2,3\] was disposed/);
  b.dispose();
});

test.run();
