// Windowed binding: the same ops on a second device whose maxStorageBufferBindingSize is lowered to
// 64 KiB (offset alignment 256), on tensors over 64 KiB, must give bit-identical results to the
// default device, where they bind whole; and must actually have dispatched per window.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as sh from '../../src/ops/shape.js';
import * as ix from '../../src/ops/index-ops.js';
import * as ew from '../../src/ops/elementwise.js';
import { full } from '../../src/ops/fill.js';
import { createGpu, getGpu, type Gpu } from '../../src/gpu/index.js';
import { tensor, tidy, type Tensor } from '../../src/tensor/tensor.js';
import { clearTape } from '../../src/autograd/tape.js';
import * as ref from '../ref/core.js';
import { randArray, rng, relErr } from '../helpers/parity.js';
import { setCopyVariant, type CopyVariant } from '../../src/ops/copy.js';

const LIMIT = 1 << 16;
let small: Gpu;
let big: Gpu;

const f32 = (n: number, seed: number) => Float32Array.from(randArray(n, seed));
const ints = (n: number, hi: number, seed: number) => {
  const r = rng(seed);
  return Int32Array.from({ length: n }, () => Math.floor(r() * hi));
};

type Host = Float32Array | Int32Array;
type Input = { data: Host; shape: number[]; grad?: boolean };

/**
 * Runs `fn` on both devices with the same inputs and a seed gradient; returns the outputs and input
 * gradients from each, and checks that the small device dispatched more (it windowed).
 */
async function onBoth(inputs: Input[], fn: (...xs: Tensor[]) => Tensor, what: string, kernels = true): Promise<Host[]> {
  const results: Host[][] = [];
  const counts: number[] = [];
  for (const gpu of [big, small]) {
    const d0 = gpu.counters.dispatches;
    const live0 = gpu.pool.snapshot().liveBytes;
    const ts = inputs.map((i) => {
      const t = tensor(i.data, i.shape, i.data instanceof Int32Array ? 'i32' : 'f32', gpu);
      if (i.grad ?? !(i.data instanceof Int32Array)) t.requiresGrad = true;
      return t;
    });
    const y = tidy(() => fn(...ts));
    const out: Host[] = [(await y.read()) as Host];
    if (ts.some((t) => t.requiresGrad)) {
      const g = tensor(f32(y.size, 77), y.shape, 'f32', gpu);
      y.backward({ gradient: g });
      g.dispose();
      for (const t of ts) if (t.requiresGrad) out.push((await t.grad!.read()) as Host);
    }
    counts.push(gpu.counters.dispatches - d0);
    y.dispose();
    for (const t of ts) t.dispose();
    clearTape();
    await gpu.sync();
    assert.is(gpu.pool.snapshot().liveBytes, live0, `${what}: leaked device bytes`);
    results.push(out);
  }
  const [a, b] = results as [Host[], Host[]];
  assert.is(a.length, b.length);
  a.forEach((x, i) => {
    const same = x.length === b[i]!.length && Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(b[i]!.buffer, b[i]!.byteOffset, b[i]!.byteLength));
    assert.ok(same, `${what}: result ${i} differs between windowed and whole binding (rel err ${relErr(x, b[i]!)})`);
  });
  // Contiguous runs are buffer copies (no binding limit), so pure row slices/concats dispatch nothing.
  if (kernels) assert.ok(counts[1]! > counts[0]!, `${what}: windowed device dispatched ${counts[1]} vs ${counts[0]}: no windowing happened`);
  return a;
}

/** Registers a test once per data-movement kernel variant (auto takes vec4 kernels where allowed). */
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

test.before(async () => {
  big = await getGpu();
  small = await createGpu({ limitOverrides: { maxStorageBufferBindingSize: LIMIT, minStorageBufferOffsetAlignment: 256 } });
  assert.is(small.limits.maxStorageBufferBindingSize, LIMIT);
});

test.after(() => small.destroy());

both('vec4-eligible copies, windowed', async () => {
  const x = { data: f32(300 * 96, 21), shape: [300, 96] }; // 115 KB
  const [y] = await onBoth([x], (t) => sh.slice(t, 1, 4, 68), 'slice vec4');
  assert.is(relErr(y!, ref.slice(ref.R.from(x.data, x.shape), 1, 4, 68).data), 0);
  const p = { data: f32(3 * 128 * 68, 22), shape: [3, 128, 68] };
  const [z] = await onBoth([p], (t) => sh.permute(t, [1, 0, 2]), 'permute vec4');
  assert.is(relErr(z!, ref.permute(ref.R.from(p.data, p.shape), [1, 0, 2]).data), 0);
  const a = { data: f32(200 * 48, 23), shape: [200, 48] };
  const b = { data: f32(200 * 52, 24), shape: [200, 52] };
  await onBoth([a, b], (q, r) => sh.concat([q, r], 1), 'concat vec4');
  await onBoth([{ data: f32(2 * 3 * 64 * 64, 25), shape: [2, 3, 64, 64] }], (t) => sh.patchify(t, 16), 'patchify vec4');
});

both('slice (both axes) and its backward', async () => {
  const x = { data: f32(300 * 97, 1), shape: [300, 97] }; // 116 KB
  const [y] = await onBoth([x], (t) => sh.slice(t, 1, 5, 90), 'slice axis 1');
  assert.ok(relErr(y!, ref.slice(ref.R.from(x.data, x.shape), 1, 5, 90).data) === 0);
  await onBoth([x], (t) => sh.slice(t, 0, 17, 250), 'slice axis 0', false);
  await onBoth([x], (t) => sh.slice(t, 1, 96, 97), 'slice last column');
});

both('concat along both axes and its backward', async () => {
  const a = { data: f32(200 * 97, 2), shape: [200, 97] };
  const b = { data: f32(100 * 97, 3), shape: [100, 97] };
  await onBoth([a, b], (p, q) => sh.concat([p, q], 0), 'concat axis 0', false);
  const c = { data: f32(200 * 50, 4), shape: [200, 50] };
  const [y] = await onBoth([a, c], (p, q) => sh.concat([p, q], 1), 'concat axis 1');
  assert.is(relErr(y!, ref.concat([ref.R.from(a.data, a.shape), ref.R.from(c.data, c.shape)], 1).data), 0);
});

both('permute and patchify (non-monotone side bound window by window)', async () => {
  const x = { data: f32(3 * 131 * 67, 5), shape: [3, 131, 67] };
  const [y] = await onBoth([x], (t) => sh.permute(t, [2, 0, 1]), 'permute');
  assert.is(relErr(y!, ref.permute(ref.R.from(x.data, x.shape), [2, 0, 1]).data), 0);
  await onBoth([x], (t) => sh.transpose(t), 'transpose');
  await onBoth([{ data: f32(2 * 3 * 64 * 64, 6), shape: [2, 3, 64, 64] }], (t) => sh.patchify(t, 8), 'patchify');
});

both('indexSelect, embedding (table, output and dW windowed), gatherRows, scatterAdd', async () => {
  const x = { data: f32(600 * 40, 7), shape: [600, 40] };
  const idx = { data: ints(700, 600, 8), shape: [700] };
  const [y] = await onBoth([x, idx], (t, i) => ix.indexSelect(t, 0, i), 'indexSelect axis 0');
  assert.is(relErr(y!, ref.indexSelect(ref.R.from(x.data, x.shape), idx.data, 0).data), 0);
  await onBoth([x, { data: ints(90, 40, 9), shape: [90] }], (t, i) => ix.indexSelect(t, 1, i), 'indexSelect axis 1');
  // 132 KB tables, 700 ids with repeats across windows: output and its gradient are 92 KB, so the
  // scatter runs over dW windows x gradient windows with running sums. D=32 rows are whole vec4s.
  for (const D of [33, 32]) {
    const w = { data: f32(1000 * D, 10 + D), shape: [1000, D] };
    const ids = ints(700, 1000, 11).map((v, i) => (i % 3 === 0 ? 999 : i % 5 === 0 ? 0 : v));
    await onBoth([w, { data: ids, shape: [7, 100] }], ix.embedding, `embedding D=${D}`);
  }
  await onBoth([{ data: f32(40 * 77 * 16, 12), shape: [40, 77, 16] }, { data: ints(40, 77, 13), shape: [40] }], ix.gatherRows, 'gatherRows');
  await onBoth(
    [{ data: f32(500 * 40, 14), shape: [500, 40] }, { data: ints(450, 500, 15), shape: [450] }, { data: f32(450 * 40, 16), shape: [450, 40] }],
    (b, i, s) => ix.scatterAdd(b, 0, i, s),
    'scatterAdd',
  );
});

test('mapRaw (same-shape elementwise) and fill, windowed', async () => {
  const a = { data: f32(40000, 17), shape: [40000] };
  const b = { data: f32(40000, 18), shape: [40000] };
  await onBoth([a, b], ew.mul, 'mul');
  await onBoth([a], (t) => ew.exp(t), 'exp');
  // Gradient accumulation on the tape (add of two 160 KB gradients) is windowed too.
  await onBoth([a], (t) => ew.add(ew.square(t), sh.reshape(t, [40000])), 'x^2 + x');
  const f = full([40000], 3.5, small);
  const fv = await f.read();
  assert.ok(fv.every((v) => v === 3.5));
  f.dispose();
});

test('errors: broadcasting a windowed tensor; tensors from two devices', async () => {
  const x = tensor(f32(40000, 19), [400, 100], 'f32', small);
  const r = tensor(f32(100, 20), [100], 'f32', small);
  const before = small.counters.dispatches;
  assert.throws(() => ew.add(x, r), /add \[400,100\] \[100\]: broadcasting a tensor over this device's maxStorageBufferBindingSize 65536 is not supported/);
  const i = tensor(Int32Array.from([1]), [1], 'i32', big);
  assert.throws(() => ix.indexSelect(x, 0, i), /indexSelect: indices tensor#\d+ i32\[1\] are on another device than tensor#\d+ f32\[400,100\]/);
  assert.is(small.counters.dispatches, before);
  for (const t of [x, r, i]) t.dispose();
});

test.run();
