import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createGpu, getGpu, GpuError } from '../../src/gpu/index.js';
import { bucketSize } from '../../src/gpu/pool.js';
import { tensor, tidy, zeros, empty } from '../../src/tensor/tensor.js';
import { noGrad, tapeLength, clearTape } from '../../src/autograd/tape.js';
import * as ew from '../../src/ops/elementwise.js';
import { full } from '../../src/ops/fill.js';

test('pool buckets waste at most 25% and are 4-byte multiples', () => {
  for (const n of [1, 255, 256, 257, 1000, 4096, 5000, 101187584, 3 * 2 ** 20 + 7]) {
    const b = bucketSize(n);
    assert.ok(b >= n && b % 4 === 0, `bucket ${b} for ${n}`);
    if (n > 256) assert.ok(b <= n * 1.25 + 4, `bucket ${b} for ${n} wastes > 25%`);
  }
});

test('buffers are reused from the pool and counted', async () => {
  const gpu = await getGpu();
  await gpu.sync();
  const s0 = gpu.pool.snapshot();
  const a = empty([1000], 'f32', gpu);
  const s1 = gpu.pool.snapshot();
  assert.is(s1.liveBytes - s0.liveBytes, bucketSize(4000));
  a.dispose();
  const b = empty([1000], 'f32', gpu);
  assert.is(gpu.pool.snapshot().allocatedBytes, s1.allocatedBytes, 'second buffer came from the free list');
  b.dispose();
  assert.is(gpu.pool.snapshot().liveBytes, s0.liveBytes);
});

test('forward + backward + dispose returns device bytes to the start', async () => {
  const gpu = await getGpu();
  await gpu.sync();
  const live0 = gpu.pool.snapshot().liveBytes;
  const w = tensor(Float32Array.from({ length: 64 }, (_, i) => i / 64), [8, 8]).param('w');
  for (let step = 0; step < 3; step++) {
    const loss = tidy(() => {
      const x = tensor(Float32Array.from({ length: 8 }, (_, i) => i), [8]);
      const y = ew.mul(ew.exp(ew.scale(w, 0.1)), x);
      // A scalar from a [8,8] tensor without the reduction ops: elementwise with broadcasting down.
      return ew.sumTo(y, [1]);
    });
    // sumTo itself is not recorded (it is a backward helper); use a recorded path instead:
    loss.dispose();
    const l2 = tidy(() => ew.mul(ew.mul(w, w), full([8, 8], 0.5)));
    const seed = full([8, 8], 1);
    l2.backward({ gradient: seed });
    seed.dispose();
    l2.dispose();
  }
  assert.ok(w.grad, 'w has a gradient');
  const g = (await w.grad!.read()) as Float32Array;
  // d/dw sum(0.5 w^2) = w, accumulated over 3 backward passes.
  assert.ok(Math.abs(g[10]! - 3 * (10 / 64)) < 1e-6, `accumulated grad ${g[10]}`);
  w.dispose();
  await gpu.sync();
  assert.is(gpu.pool.snapshot().liveBytes, live0);
});

test('no-grad mode and frozen inputs record nothing / compute nothing', async () => {
  const gpu = await getGpu();
  const w = tensor([1, 2, 3]).param();
  const x = tensor([4, 5, 6]);
  clearTape();
  const y = noGrad(() => ew.mul(w, x));
  assert.is(tapeLength(), 0);
  y.dispose();
  const z = ew.mul(w, x);
  assert.is(tapeLength(), 1);
  const before = gpu.counters.dispatches;
  z.backward({ gradient: tensor([1, 1, 1]) });
  // One kernel: dW = g * x. No kernel for the frozen x.
  assert.is(gpu.counters.dispatches - before, 1);
  assert.equal([...(await w.grad!.read())], [4, 5, 6]);
  z.dispose();
  w.dispose();
  x.dispose();
});

test('a WGSL compile error names the kernel and the line', async () => {
  const gpu = await getGpu();
  try {
    await gpu.compile('bad-kernel-test', () => ({
      label: 'deliberately broken',
      code: '@compute @workgroup_size(1) fn main() { let x: f32 = undefined_thing; }',
      bindings: [],
    }));
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.instance(e, GpuError);
    assert.match((e as Error).message, /deliberately broken/);
  }
});

test('limits are checked before encoding', async () => {
  const gpu = await createGpu({ limitOverrides: { maxStorageBufferBindingSize: 1024 } });
  assert.is(gpu.limits.maxStorageBufferBindingSize, 1024);
  const a = zeros([1000], 'f32', gpu);
  const k = gpu.kernel('limit-test', () => ({
    label: 'limit test',
    code: '@group(0) @binding(0) var<storage, read_write> o: array<f32>;\n@compute @workgroup_size(1) fn main() { o[0] = 1.0; }',
    bindings: ['rw'],
  }));
  const before = gpu.counters.dispatches;
  assert.throws(
    () => gpu.dispatch({ kernel: k, buffers: [a.buffer], workgroups: [1], label: 'whole-buffer op' }),
    /whole-buffer op: binding 0 is \d+ bytes, over this device's maxStorageBufferBindingSize 1024/,
  );
  // Same-shape maps are bound in windows; broadcasting a windowed tensor is refused up front.
  const b = zeros([1], 'f32', gpu);
  assert.throws(() => ew.add(a, b), /not supported/);
  assert.is(gpu.counters.dispatches, before);
  const e = ew.exp(a);
  assert.ok(gpu.counters.dispatches > before, 'windowed map ran');
  assert.ok(((await e.read()) as Float32Array).every((v) => v === 1));
  e.dispose();
  b.dispose();
  assert.throws(() => gpu.grid(70000 * 70000), /exceed/);
  assert.throws(() => empty([gpu.limits.maxBufferSize], 'f32', gpu), /over this device's maxBufferSize/);
  a.dispose();
  gpu.destroy();
});

test('disposed tensors and bad shapes are clear errors', async () => {
  const t = tensor([1, 2, 3]);
  t.dispose();
  const err = await t.read().then(() => null, (e: Error) => e);
  assert.match(err?.message ?? '', /read: tensor#\d+ f32\[3\] was disposed/);
  assert.throws(() => tensor([1, 2, 3], [2, 2]), /3 values do not fill shape \[2,2\]/);
  assert.throws(() => empty([2, -1]), /invalid shape \[2,-1\]/);
  const i = tensor(Int32Array.of(1, 2));
  assert.throws(() => (i.requiresGrad = true), /i32 tensor cannot require grad/);
  i.dispose();
});

test('outputs are bit-identical run to run', async () => {
  const x = tensor(Float32Array.from({ length: 4097 }, (_, i) => Math.sin(i) * 3));
  const a = (await ew.gelu(x).read()) as Float32Array;
  const b = (await ew.gelu(x).read()) as Float32Array;
  assert.equal(new Uint32Array(a.buffer), new Uint32Array(b.buffer));
  x.dispose();
});

test('the device reports adapter facts read from the device, not assumed', async () => {
  const gpu = await getGpu();
  assert.ok(['llvmpipe', 'lavapipe', 'swiftshader', 'gpu'].includes(gpu.kind));
  assert.ok(gpu.limits.maxStorageBufferBindingSize >= 128 * 1024 * 1024, 'adapter limits were requested');
  assert.ok(gpu.limits.maxComputeInvocationsPerWorkgroup >= 256, 'adapter limits were requested');
});

test('handles saved for backward survive nested scopes', async () => {
  const w = tensor([1, 2, 3]).param();
  const y = tidy(() => tidy(() => tidy(() => ew.mul(w, tensor([4, 5, 6])))));
  y.backward({ gradient: tensor([1, 1, 1]) });
  assert.equal([...(await w.grad!.read())], [4, 5, 6]);
  y.dispose();
  w.dispose();
});

test.run();
